"""Twilio Programmable Messaging over its REST API (httpx, no SDK).

Endpoints, relative to settings.TWILIO_API_BASE (".../2010-04-01/"), HTTP Basic sid:token:
  send              POST Accounts/{sid}/Messages.json  (To, Body, From|MessagingServiceSid,
                                                        StatusCallback)
  check_credentials GET  Accounts/{sid}.json, then, for a phone-number sender,
                    GET  Accounts/{sid}/IncomingPhoneNumbers.json?PhoneNumber=...
  fetch_status      GET  Accounts/{sid}/Messages/{message_sid}.json
  find_sent         GET  Accounts/{sid}/Messages.json?To=...[&From=...] (pages, newest first)

Error codes (docs/twilio.md, "Error codes and how we classify them") map to a Reason in
ERROR_REASONS; the HTTP status decides when there is no known code. Status callbacks carry the
same codes (`parse_status_callback`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlsplit, urlunsplit

import httpx
import phonenumbers
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
    StatusUpdate,
    mask_phone,
    parse_retry_after,
    reason_for_status,
    scrub,
)

logger = logging.getLogger(__name__)

CONFIG_ACCOUNT_SID = "account_sid"
CONFIG_AUTH_TOKEN = "auth_token"  # noqa: S105 (a config key, not a secret)
CONFIG_SENDER = "sender"

ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-f]{32}$")
AUTH_TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
MESSAGING_SERVICE_SID_RE = re.compile(r"^MG[0-9a-f]{32}$")
MESSAGE_SID_RE = re.compile(r"^(SM|MM)[0-9a-f]{32}$")
E164_RE = re.compile(r"^\+[1-9]\d{6,14}$")
SHORT_CODE_RE = re.compile(r"^\d{5,6}$")
DEFAULT_REGION = "US"

ERROR_REASONS: dict[int, Reason] = {
    20003: Reason.BAD_CREDENTIALS,  # authentication failed
    20005: Reason.BAD_CREDENTIALS,  # account not active
    20429: Reason.RATE_LIMITED,  # too many concurrent requests; not processed
    21211: Reason.INVALID_NUMBER,  # invalid 'To' number
    21212: Reason.BAD_CREDENTIALS,  # invalid 'From' number: the link's sender is wrong
    21408: Reason.REJECTED,  # region not enabled (geo permissions)
    21602: Reason.REJECTED,  # body required
    21606: Reason.BAD_CREDENTIALS,  # 'From' is not an SMS-capable number of this account
    21608: Reason.REJECTED,  # trial account: 'To' not verified
    21610: Reason.OPTED_OUT,  # recipient replied STOP
    21611: Reason.QUEUE_FULL,  # 'From' exceeded its queue
    21612: Reason.INVALID_NUMBER,  # 'To' not reachable via SMS
    21614: Reason.INVALID_NUMBER,  # 'To' not a mobile number
    21617: Reason.REJECTED,  # body over 1,600 characters
    21659: Reason.BAD_CREDENTIALS,  # 'From' not a Twilio number (or country mismatch)
    # Delivery errors, seen in status callbacks (and 30001 via a Messaging Service).
    30001: Reason.QUEUE_FULL,
    30002: Reason.BAD_CREDENTIALS,  # account suspended
    30003: Reason.REJECTED,  # handset off or out of coverage: not the number's fault
    30004: Reason.REJECTED,  # blocked by recipient or carrier
    30005: Reason.INVALID_NUMBER,  # unknown destination handset
    30006: Reason.INVALID_NUMBER,  # landline or unreachable carrier
    30007: Reason.REJECTED,  # carrier spam filter
    30008: Reason.REJECTED,  # unknown error
    30017: Reason.QUEUE_FULL,  # carrier congestion
    30022: Reason.QUEUE_FULL,  # 10DLC rate limit
    30023: Reason.QUEUE_FULL,  # 10DLC daily cap
    30027: Reason.QUEUE_FULL,  # T-Mobile daily limit
    30032: Reason.BAD_CREDENTIALS,  # toll-free number not verified
    63018: Reason.RATE_LIMITED,
}

# Reconciliation compares Twilio's date_created with our clock; allow for drift between them.
CLOCK_SKEW = timedelta(minutes=2)
FIND_SENT_PAGES = 3
FIND_SENT_PAGE_SIZE = 100


def reason_for_code(code: int | str | None) -> Reason | None:
    try:
        return ERROR_REASONS.get(int(code))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


class TwilioGateway(Gateway):
    slug = "twilio"
    label = "Twilio"
    answers_keywords = True  # Advanced Opt-Out may answer HELP (docs/compliance.md)
    linkable = True
    identity_key = "sender"
    identity_label = "Twilio sender"
    config_fields = (
        ConfigField(CONFIG_ACCOUNT_SID, "Account SID", help_text="Starts with AC."),
        ConfigField(CONFIG_AUTH_TOKEN, "Auth token", secret=True),
        ConfigField(
            CONFIG_SENDER,
            "Sender",
            help_text="A Twilio phone number in E.164 (+15551234567), a short code, or a "
            "Messaging Service SID (starts with MG).",
        ),
    )

    def __init__(self, config: dict[str, str], **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        base = settings.TWILIO_API_BASE
        self.base_url = base if base.endswith("/") else base + "/"
        self.account_sid = self.config.get(CONFIG_ACCOUNT_SID, "")
        self.sender = self.config.get(CONFIG_SENDER, "")
        self._auth = httpx.BasicAuth(self.account_sid, self.config.get(CONFIG_AUTH_TOKEN, ""))

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> dict[str, str]:
        cleaned = super().validate_config(config)
        errors: dict[str, str] = {}
        sid = cleaned[CONFIG_ACCOUNT_SID]
        if sid[:2].upper() == "AC":
            sid = "AC" + sid[2:].lower()
        if not ACCOUNT_SID_RE.match(sid):
            errors[CONFIG_ACCOUNT_SID] = (
                "A Twilio account SID is AC followed by 32 hexadecimal characters; copy it from "
                "the Twilio console's Account Info."
            )
        token = cleaned[CONFIG_AUTH_TOKEN].lower()
        if not AUTH_TOKEN_RE.match(token):
            errors[CONFIG_AUTH_TOKEN] = (
                "A Twilio auth token is 32 hexadecimal characters; copy it from the Twilio "
                "console's Account Info."
            )
        sender = normalise_sender(cleaned[CONFIG_SENDER])
        if sender is None:
            errors[CONFIG_SENDER] = (
                "Enter the sender as a phone number in international format (+15551234567), a "
                "5- or 6-digit short code, or a Messaging Service SID (MG followed by 32 "
                "hexadecimal characters)."
            )
        if errors:
            raise ValidationError(errors)
        return {CONFIG_ACCOUNT_SID: sid, CONFIG_AUTH_TOKEN: token, CONFIG_SENDER: sender}

    # --- the contract ------------------------------------------------------------------------
    @sensitive_variables()
    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        if not E164_RE.match(to or ""):
            raise GatewayError(
                f"{mask_phone(to)} is not a phone number in international format.",
                reason=Reason.INVALID_NUMBER,
            )
        if not body:
            raise GatewayError("The text is empty.", reason=Reason.REJECTED)
        data = {"To": to, "Body": body}
        if MESSAGING_SERVICE_SID_RE.match(self.sender):
            data["MessagingServiceSid"] = self.sender
        else:
            data["From"] = self.sender
        if status_callback:
            data["StatusCallback"] = status_callback
        response = self._request("POST", self._url("Messages.json"), data=data, auth=self._auth)
        self._raise_for_status(response, sending=True)
        payload = self._json(response, sending=True)
        sid = payload.get("sid")
        if not isinstance(sid, str) or not sid:
            raise GatewayError(
                "Twilio answered without a message id; the text may or may not have gone out.",
                reason=Reason.AMBIGUOUS,
                status_code=response.status_code,
            )
        segments = payload.get("num_segments")
        result = SendResult(
            provider_message_id=sid,
            status=str(payload.get("status") or "queued"),
            segments=int(segments) if str(segments).isdigit() else None,
        )
        logger.debug("Twilio accepted %s to %s (%s)", sid, mask_phone(to), result.status)
        return result

    @sensitive_variables()
    def check_credentials(self) -> str:
        response = self._request("GET", self._url("", account=True), auth=self._auth)
        self._raise_for_status(response, sending=False)
        account = self._json(response, sending=False)
        status = str(account.get("status") or "unknown")
        name = str(account.get("friendly_name") or self.account_sid)
        kind = str(account.get("type") or "")
        if status != "active":
            raise GatewayError(
                f"The Twilio account {name!r} is {status}; it cannot send texts.",
                reason=Reason.BAD_CREDENTIALS,
                status_code=response.status_code,
            )
        if E164_RE.match(self.sender):
            response = self._request(
                "GET",
                self._url("IncomingPhoneNumbers.json"),
                params={"PhoneNumber": self.sender},
                auth=self._auth,
            )
            self._raise_for_status(response, sending=False)
            if not self._json(response, sending=False).get("incoming_phone_numbers"):
                raise GatewayError(
                    f"The sender {mask_phone(self.sender)} is not a phone number of the Twilio "
                    f"account {name!r}.",
                    reason=Reason.BAD_CREDENTIALS,
                )
        description = f"{name} ({kind.lower() + ' account, ' if kind else ''}{status})"
        if kind.lower() == "trial":
            description += "; a trial account only texts verified numbers"
        return description

    @sensitive_variables()
    def fetch_status(self, *, provider_message_id: str) -> str | None:
        if not MESSAGE_SID_RE.match(provider_message_id or ""):
            return None
        response = self._request(
            "GET", self._url(f"Messages/{provider_message_id}.json"), auth=self._auth
        )
        if response.status_code == 404:
            return None
        self._raise_for_status(response, sending=False)
        status = self._json(response, sending=False).get("status")
        return str(status) if status else None

    @sensitive_variables()
    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        # Not filtered by DateSent: a message still queued at Twilio (a long code releases one
        # segment a second) has no date_sent yet, and missing it here would mean a duplicate.
        first_page: dict[str, Any] = {"To": to, "PageSize": FIND_SENT_PAGE_SIZE}
        if E164_RE.match(self.sender):
            first_page["From"] = self.sender
        params: dict[str, Any] | None = first_page
        earliest = since - CLOCK_SKEW
        url: str | None = self._url("Messages.json")
        for _ in range(FIND_SENT_PAGES):
            if url is None:
                break
            response = self._request("GET", url, params=params, auth=self._auth)
            self._raise_for_status(response, sending=False)
            page = self._json(response, sending=False)
            for message in page.get("messages") or []:
                created = _parse_twilio_date(message.get("date_created"))
                if (
                    message.get("to") == to
                    and message.get("body") == body
                    and str(message.get("direction", "outbound")).startswith("outbound")
                    and created is not None
                    and created >= earliest
                ):
                    return str(message.get("sid"))
            next_page = page.get("next_page_uri")
            url = urljoin(self.base_url, next_page) if next_page else None
            params = None  # the next page's URI carries the query (params={} would erase it)
        return None

    # --- helpers -----------------------------------------------------------------------------
    def _url(self, path: str, *, account: bool = False) -> str:
        sid = quote(self.account_sid, safe="")
        if account:
            return f"{self.base_url}Accounts/{sid}.json"
        return f"{self.base_url}Accounts/{sid}/{path}"

    def _json(self, response: httpx.Response, *, sending: bool) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise GatewayError(
                "Twilio's answer could not be read"
                + ("; the text may or may not have gone out." if sending else "."),
                reason=Reason.AMBIGUOUS,
                status_code=response.status_code,
            )
        return payload

    def _raise_for_status(self, response: httpx.Response, *, sending: bool) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        code: int | None = None
        detail = ""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            raw = payload.get("code")
            code = int(raw) if str(raw).isdigit() else None
            detail = scrub(str(payload.get("message") or ""))
        reason = reason_for_code(code) or reason_for_status(status)
        raise GatewayError(
            _describe(reason, status=status, code=code, detail=detail, sending=sending),
            reason=reason,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            code=code,
            status_code=status,
        )


def _describe(reason: Reason, *, status: int, code: int | None, detail: str, sending: bool) -> str:
    ref = f"HTTP {status}" + (f", error {code}" if code else "")
    if reason is Reason.BAD_CREDENTIALS and code in (None, 20003):
        return (
            f"Twilio did not accept the account SID and auth token ({ref}). Check them on the "
            "provider settings page."
        )
    if reason is Reason.RATE_LIMITED:
        return f"Twilio asked us to slow down ({ref}); the text was not sent."
    if reason is Reason.AMBIGUOUS:
        tail = " The text may or may not have gone out." if sending else ""
        return f"Twilio had a server error ({ref}).{tail}"
    if 300 <= status < 400:
        return f"Twilio answered with a redirect ({ref}); check TWILIO_API_BASE."
    return f"Twilio refused the request: {detail or 'no reason given'} ({ref})."


def normalise_sender(value: str) -> str | None:
    """E.164 number, short code or MG... Messaging Service SID; None when it is none of them."""
    value = (value or "").strip()
    if value[:2].upper() == "MG":
        candidate = "MG" + value[2:].lower()
        return candidate if MESSAGING_SERVICE_SID_RE.match(candidate) else None
    compact = re.sub(r"[\s().-]", "", value)
    if SHORT_CODE_RE.match(compact):
        return compact
    try:
        # A number without a country code is read as a US number, as Twilio's console shows it.
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164 if E164_RE.match(e164) else None


def _parse_twilio_date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None


# --- webhooks -----------------------------------------------------------------------------------
def parse_inbound(params: Mapping[str, Any]) -> InboundSms:
    """An inbound SMS webhook (form post) as an InboundSms. Check the signature first."""
    return InboundSms(
        provider_message_id=str(params.get("MessageSid") or params.get("SmsSid") or ""),
        from_number=str(params.get("From") or ""),
        to_number=str(params.get("To") or ""),
        body=str(params.get("Body") or ""),
    )


def parse_status_callback(params: Mapping[str, Any]) -> StatusUpdate:
    """A status callback (form post) as a StatusUpdate. Check the signature first."""
    raw = params.get("ErrorCode")
    code = int(raw) if raw not in (None, "") and str(raw).isdigit() else None
    return StatusUpdate(
        provider_message_id=str(params.get("MessageSid") or params.get("SmsSid") or ""),
        status=str(params.get("MessageStatus") or params.get("SmsStatus") or ""),
        error_code=code,
        reason=reason_for_code(code),
    )


def _values(params: Any, name: str) -> list[str]:
    for getter in ("getall", "getlist"):  # MultiDict, Django QueryDict
        if hasattr(params, getter):
            return [str(v) for v in getattr(params, getter)(name)]
    value = params[name]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def compute_signature(url: str, params: Any, auth_token: str) -> str:
    """base64(HMAC-SHA1(auth_token, url + each name+value, names and values sorted, deduped))."""
    signed = url
    for name in sorted(set(params or {})):
        for value in sorted(set(_values(params, name))):
            signed += name + value
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _with_port(url: str) -> str:
    parts = urlsplit(url)
    if parts.port:
        return url
    port = 443 if parts.scheme == "https" else 80
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{port}"))


def _without_port(url: str) -> str:
    parts = urlsplit(url)
    if not parts.port:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    host = hostport.rsplit(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}" if userinfo else host))


def validate_twilio_signature(
    url: str, params: Any, signature: str | None, auth_token: str
) -> bool:
    """Check X-Twilio-Signature as twilio-python's RequestValidator does (docs/twilio.md,
    "Webhook signatures").

    `url` is the public URL Twilio requested, query string included. `params` is the form
    (a dict, a Django QueryDict or a MultiDict); for a JSON body pass the raw body (str or
    bytes): its SHA-256 must then match the URL's bodySHA256 and only the URL is signed.
    The signature may be computed with the port removed or the default port added.
    """
    if not signature or not auth_token:
        return False
    body_ok = True
    if isinstance(params, str | bytes):
        raw = params.encode() if isinstance(params, str) else params
        expected = parse_qs(urlsplit(url).query).get("bodySHA256", [""])[0]
        body_ok = bool(expected) and hmac.compare_digest(hashlib.sha256(raw).hexdigest(), expected)
        params = {}
    signature_bytes = signature.encode()
    matches = [
        hmac.compare_digest(
            compute_signature(variant, params, auth_token).encode(), signature_bytes
        )
        for variant in (_with_port(url), _without_port(url))
    ]
    return body_ok and any(matches)
