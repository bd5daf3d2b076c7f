"""Mosio, through its general REST endpoints (`send_single_sms`, `text_history`).

Mosio publishes no API reference, so EVERY assumption about its API lives in this module; a
correction from Mosio should be a change here and nowhere else. The assumptions are numbered
M1, M2, ... in docs/mosio.md, with their sources; the comments below cite those numbers.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    reason_for_status,
    scrub,
)

logger = logging.getLogger(__name__)

CONFIG_API_KEY = "api_key"

SEND_PATH = "send_single_sms"  # M3
HISTORY_PATH = "text_history"  # M7
HISTORY_LIMIT = 200  # M10
MOSIO_TIMEZONE = UTC  # M8, M9
CLOCK_SKEW = timedelta(minutes=2)  # M13
NANP_RE = re.compile(r"^\+1\d{10}$")
# M27: the names an outgoing history item's delivery status might carry, and what they mean.
HISTORY_STATUS_FIELDS = ("Status", "DeliveryStatus")
HISTORY_STATUSES = {
    "delivered": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "sent": "sent",
}
API_KEY_RE = re.compile(r"^\S{8,200}$")  # M17

# M15: checked in order against the lower-cased ErrorMessage.
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
    """M3, M4: '+14155550143' -> '14155550143'; None for numbers outside +1."""
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


@dataclass
class HistoryPage:
    """What one `text_history` call found (MosioGateway.poll_history)."""

    count: int = 0
    inbound: list[InboundSms] = field(default_factory=list)
    # ((TransactionId, Id) as given, status): the send's id may differ from the history's (M13)
    receipts: list[tuple[tuple[str, ...], str]] = field(default_factory=list)
    without_status: int = 0  # outgoing items with no status (M12: the usual case)
    newest: datetime | None = None
    skipped: list[str] = field(default_factory=list)


class MosioGateway(Gateway):
    slug = "mosio"
    label = "Mosio"
    linkable = True
    identity_key = "api_key"
    identity_label = "Mosio API key"
    config_fields = (
        ConfigField(
            CONFIG_API_KEY,
            "API key",
            secret=True,
            help_text="From Mosio's dashboard: Account Overview, or Quicklinks > RCD Dashboard.",
        ),
    )
    supports_polling = True
    answers_keywords = True  # M25

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
        # Mosio takes no status callback (M12); status_callback is accepted and ignored.
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
        self._history(limit=1)  # M11
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

    @sensitive_variables()
    def poll_history(self, *, since: datetime) -> HistoryPage:
        """One page of `text_history` since `since` (M7, M9, M27), sorted out: the inbound texts,
        the outgoing items' statuses, the newest `Date` seen and what was skipped (reasons only:
        never a phone or a body). A page Mosio sends malformed raises GatewayError."""
        items = self._history(since=since)
        page = HistoryPage(count=len(items))
        for item in items:
            when = _parse_date(item.get("Date"))
            if when is not None and (page.newest is None or when > page.newest):
                page.newest = when
            direction = str(item.get("Direction", "")).strip().lower()
            if direction == "in":
                phone = from_mosio_phone(item.get("Phone"))
                body = item.get("Body")
                page.inbound.append(
                    InboundSms(
                        provider_message_id=str(item.get("Id") or "")[:64],
                        from_number=phone,
                        body="" if body is None else str(body),
                        received_at=when,
                    )
                )
                if not phone:
                    page.skipped.append("an inbound item without a phone number")
            elif direction == "out":
                status = next(
                    (item.get(name) for name in HISTORY_STATUS_FIELDS if item.get(name)), None
                )
                mapped = HISTORY_STATUSES.get(str(status or "").strip().lower())
                ids = tuple(
                    str(item[name])[:64]
                    for name in ("TransactionId", "Id")
                    if item.get(name) not in (None, "")
                )
                if mapped and ids:
                    page.receipts.append((ids, mapped))
                elif status is None:
                    page.without_status += 1
            else:
                page.skipped.append("an item without a direction")
        return page

    # --- helpers -----------------------------------------------------------------------------
    def _history(self, *, since: datetime | None = None, limit: int = HISTORY_LIMIT) -> list[dict]:
        params: dict[str, Any] = {"Limit": limit}
        if since is not None:
            params["Since"] = _format_since(since)
        # M7: a GET with no body carries no Content-Type; only the key and Accept are sent.
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
        by_status = reason_for_status(status)
        if by_status == Reason.BAD_CREDENTIALS:
            raise GatewayError(
                f"Mosio did not accept the API key (HTTP {status}). Check it on the provider "
                "settings page.",
                reason=by_status,
                status_code=status,
            )
        if by_status == Reason.RATE_LIMITED:
            raise GatewayError(
                "Mosio asked us to slow down (HTTP 429); the text was not sent.",
                reason=by_status,
                retry_after=retry_after,
                status_code=status,
            )
        if by_status == Reason.AMBIGUOUS:
            raise GatewayError(
                f"Mosio had a server error (HTTP {status}).{maybe}",
                reason=by_status,
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
    """M23: the posted ApiKey must equal the link's key, compared in constant time."""
    if not provided or not api_key:
        return False
    return hmac.compare_digest(provided.encode(), api_key.encode())


def parse_inbound(params: Mapping[str, Any]) -> InboundSms:
    """M22: an inbound webhook form as an InboundSms. Call verify_inbound_key first."""
    body = next((params.get(name) for name in ("Body", "Message", "Text") if params.get(name)), "")
    return InboundSms(
        provider_message_id=str(params.get("MessageId") or params.get("Id") or "")[:64],
        from_number=from_mosio_phone(params.get("From")),
        body=str(body),
    )
