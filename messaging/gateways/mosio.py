"""Mosio, through the general REST endpoints of mosio-api.md section C.

Mosio publishes no API reference, so EVERY assumption about its API lives in this module; a
correction from Mosio should be a change here and nowhere else.

Assumptions (sources: mosio-api.md; "UF" = the University of Florida client it cites):
 A1. Base URL is settings.MOSIO_API_BASE (default https://api.mosio.com/api/); endpoint names
     below are relative to it.
 A2. Authentication is the header `X-ApiKey: <key>` (UF). REDCap's own Mosio endpoints
     (redcap_send_sms, Basic auth) are not used.
 A3. `POST send_single_sms`, form body `Phone=1XXXXXXXXXX` (11 digits, no "+") and
     `Message=<text>`. Mosio therefore serves US/Canada (+1) numbers only; any other number is
     refused here as INVALID_NUMBER without a call.
 A4. The send answer is JSON `{"Success": true, "ErrorCode": 0, "ErrorMessage": "",
     "TransactionId": ...}`; success means Success is true (or "1"/"true", as REDCap's endpoints
     answer) and ErrorCode is 0 or absent. TransactionId is the provider message id.
 A5. `GET text_history?Since=<datetime>&Limit=<n>` with NO Content-Type header (Mosio rejects
     form-encoded GETs). `Since` is sent as ISO 8601 in UTC without offset
     (`2025-01-31T14:05:00`). The answer is `{"Success": true, "Contacts": [{"Id", "Phone",
     "Body", "Date", "Direction": "in"|"out"}]}`; a Date without an offset is read as
     MOSIO_TIMEZONE (UTC, unconfirmed).
 A6. check_credentials calls `text_history?Limit=1`: authenticated, read-only and cheap. Not
     `redcap_verification` (it registers REDCap's callback URL at Mosio: a side effect that
     would redirect a REDCap project's inbound texts) and not `ping` (not known to check the key).
 A7. No delivery-status endpoint is known: fetch_status returns None. find_sent looks in
     text_history for an outgoing text to that phone with that body; the history's Id is
     assumed to identify the message (it may not equal the send's TransactionId).
 A8. Mosio's ErrorCode values are undocumented. Failures are classified by HTTP status (401/403
     bad credentials, 429 rate limited, 5xx/408 ambiguous) and, for Success=false answers, by
     words in ErrorMessage (ERROR_MESSAGE_REASONS); anything else is a permanent REJECTED,
     because Success=false says plainly that nothing was sent.
 A9. An API key is at least 8 characters without spaces (its real format is unknown).
 A10. Inbound webhook (REDCap's shape, if Mosio points one at us): a form post with `From`,
     `ApiKey`, `MosioAccountId` and the text in `Body` (or `Message` or `Text`: the field name
     was not visible). The ApiKey is the whole authenticator: compare it in constant time.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from .base import (
    ConfigField,
    Gateway,
    GatewayError,
    InboundSms,
    Reason,
    SendResult,
    mask_phone,
    parse_retry_after,
    scrub,
)

logger = logging.getLogger(__name__)

CONFIG_API_KEY = "api_key"

SEND_PATH = "send_single_sms"  # A3
HISTORY_PATH = "text_history"  # A5
HISTORY_LIMIT = 200
MOSIO_TIMEZONE = UTC  # A5
CLOCK_SKEW = timedelta(minutes=2)
NANP_RE = re.compile(r"^\+1\d{10}$")
API_KEY_RE = re.compile(r"^\S{8,200}$")  # A9

# A8: checked in order against the lower-cased ErrorMessage.
ERROR_MESSAGE_REASONS: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (re.compile(r"opt(ed)?[ -]?out|unsubscrib|stopped|\bstop\b"), Reason.OPTED_OUT),
    (re.compile(r"api ?key|unauthori[sz]ed|not authori[sz]ed|credential"), Reason.BAD_CREDENTIALS),
    (re.compile(r"rate limit|too many"), Reason.RATE_LIMITED),
    (
        re.compile(r"(invalid|not (a )?valid|unknown).*(phone|number|mobile)|landline|not sms"),
        Reason.INVALID_NUMBER,
    ),
)


def to_mosio_phone(e164: str) -> str | None:
    """A3: '+14155550143' -> '14155550143'; None for numbers outside +1."""
    return e164[1:] if NANP_RE.match(e164 or "") else None


def from_mosio_phone(value: Any) -> str:
    digits = re.sub(r"\D", "", str(value or ""))
    if len(digits) == 10:
        digits = "1" + digits
    return "+" + digits if digits else ""


def _truthy(value: Any) -> bool:
    return value is True or str(value).strip().lower() in ("1", "true", "yes")


def _parse_date(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=MOSIO_TIMEZONE)


def _format_since(since: datetime) -> str:
    if since.tzinfo is not None:
        since = since.astimezone(MOSIO_TIMEZONE).replace(tzinfo=None)
    return since.replace(microsecond=0).isoformat()


class MosioGateway(Gateway):
    slug = "mosio"
    label = "Mosio"
    config_fields = (
        ConfigField(
            CONFIG_API_KEY,
            "API key",
            secret=True,
            help_text="From Mosio's dashboard: Account Overview, or Quicklinks > RCD Dashboard.",
        ),
    )
    supports_polling = True

    def __init__(self, config: dict[str, str], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        base = settings.MOSIO_API_BASE
        self.base_url = base if base.endswith("/") else base + "/"
        self._headers = {
            "X-ApiKey": self.config.get(CONFIG_API_KEY, ""),
            "Accept": "application/json",
        }

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> dict[str, str]:
        cleaned = super().validate_config(config)
        if not API_KEY_RE.match(cleaned[CONFIG_API_KEY]):
            raise ValidationError(
                {
                    CONFIG_API_KEY: "A Mosio API key is at least 8 characters with no spaces; "
                    "copy it from Mosio's Account Overview."
                }
            )
        return cleaned

    # --- the contract ------------------------------------------------------------------------
    @sensitive_variables()
    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        # Mosio takes no status callback (A7); status_callback is accepted and ignored.
        phone = to_mosio_phone(to)
        if phone is None:
            raise GatewayError(
                f"Mosio texts US and Canadian numbers only; {mask_phone(to)} is not one.",
                reason=Reason.INVALID_NUMBER,
            )
        if not body:
            raise GatewayError("The text is empty.", reason=Reason.REJECTED)
        response = self._request(
            "POST",
            self.base_url + SEND_PATH,
            data={"Phone": phone, "Message": body},
            headers=self._headers,
        )
        payload = self._payload(response, sending=True)
        transaction = payload.get("TransactionId")
        if transaction in (None, ""):
            raise GatewayError(
                "Mosio answered without a transaction id; the text may or may not have gone out.",
                reason=Reason.AMBIGUOUS,
                status_code=response.status_code,
            )
        logger.debug("Mosio accepted %s to %s", transaction, mask_phone(to))
        return SendResult(provider_message_id=str(transaction), status="accepted")

    @sensitive_variables()
    def check_credentials(self) -> str:
        self._history(limit=1)  # A6
        return "Mosio accepted the API key (text history is readable)."

    @sensitive_variables()
    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        phone = to_mosio_phone(to)
        if phone is None:
            return None
        # Look a little earlier than `since`: Mosio's clock and ours may differ.
        for item in self._history(since=since - CLOCK_SKEW):
            if (
                str(item.get("Direction", "")).lower() == "out"
                and from_mosio_phone(item.get("Phone")) == to
                and item.get("Body") == body
            ):
                return str(item.get("Id"))
        return None

    @sensitive_variables()
    def poll_inbound(self, *, since: datetime) -> list[InboundSms]:
        inbound = []
        for item in self._history(since=since):
            if str(item.get("Direction", "")).lower() != "in":
                continue
            inbound.append(
                InboundSms(
                    provider_message_id=str(item.get("Id") or ""),
                    from_number=from_mosio_phone(item.get("Phone")),
                    body=str(item.get("Body") or ""),
                    received_at=_parse_date(item.get("Date")),
                )
            )
        return inbound

    # --- helpers -----------------------------------------------------------------------------
    def _history(self, *, since: datetime | None = None, limit: int = HISTORY_LIMIT) -> list[dict]:
        params: dict[str, Any] = {"Limit": limit}
        if since is not None:
            params["Since"] = _format_since(since)
        # A5: a GET with no body carries no Content-Type; only the key and Accept are sent.
        response = self._request(
            "GET", self.base_url + HISTORY_PATH, params=params, headers=self._headers
        )
        payload = self._payload(response, sending=False)
        contacts = payload.get("Contacts") or []
        return [item for item in contacts if isinstance(item, dict)]

    def _payload(self, response: httpx.Response, *, sending: bool) -> dict[str, Any]:
        status = response.status_code
        maybe = " The text may or may not have gone out." if sending else ""
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status in (401, 403):
            raise GatewayError(
                f"Mosio did not accept the API key (HTTP {status}). Check it on the provider "
                "settings page.",
                reason=Reason.BAD_CREDENTIALS,
                status_code=status,
            )
        if status == 429:
            raise GatewayError(
                "Mosio asked us to slow down (HTTP 429); the text was not sent.",
                reason=Reason.RATE_LIMITED,
                retry_after=retry_after,
                status_code=status,
            )
        if status >= 500 or status == 408:
            raise GatewayError(
                f"Mosio had a server error (HTTP {status}).{maybe}",
                reason=Reason.AMBIGUOUS,
                status_code=status,
            )
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if 200 <= status < 300 and not isinstance(payload, dict):
            raise GatewayError(
                f"Mosio's answer could not be read.{maybe}",
                reason=Reason.AMBIGUOUS if sending else Reason.REJECTED,
                status_code=status,
            )
        payload = payload if isinstance(payload, dict) else {}
        code = payload.get("ErrorCode")
        ok = 200 <= status < 300 and _truthy(payload.get("Success")) and code in (None, 0, "0", "")
        if ok:
            return payload
        detail = scrub(str(payload.get("ErrorMessage") or ""))
        reason = Reason.REJECTED
        for pattern, candidate in ERROR_MESSAGE_REASONS:
            if pattern.search(detail.lower()):
                reason = candidate
                break
        if 300 <= status < 400:
            message = f"Mosio answered with a redirect (HTTP {status}); check MOSIO_API_BASE."
        else:
            ref = f"HTTP {status}" + (f", error {code}" if code not in (None, "") else "")
            message = f"Mosio refused the request: {detail or 'no reason given'} ({ref})."
        raise GatewayError(
            message, reason=reason, retry_after=retry_after, code=code, status_code=status
        )


# --- inbound ------------------------------------------------------------------------------------
def verify_inbound_key(provided: str | None, api_key: str) -> bool:
    """A10: the posted ApiKey must equal the link's key, compared in constant time."""
    if not provided or not api_key:
        return False
    return hmac.compare_digest(provided.encode(), api_key.encode())


def parse_inbound(params: Mapping[str, Any]) -> InboundSms:
    """A10: an inbound webhook form as an InboundSms. Call verify_inbound_key first."""
    body = next((params.get(name) for name in ("Body", "Message", "Text") if params.get(name)), "")
    return InboundSms(
        provider_message_id=str(params.get("MessageId") or params.get("Id") or ""),
        from_number=from_mosio_phone(params.get("From")),
        body=str(body),
    )
