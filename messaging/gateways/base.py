"""The Gateway contract that every SMS provider module implements.

A gateway makes ONE attempt per call and classifies the outcome; retrying, pacing and
reconciliation are the sender's job (docs/sending.md, "5. One call, and failure classes").
Every failure is a `GatewayError` whose `reason` tells the sender what to do:

| reason          | permanent | the provider...                     | the sender should           |
|-----------------|-----------|-------------------------------------|-----------------------------|
| UNREACHABLE     | no        | was never reached (DNS, connect,    | retry with backoff          |
|                 |           | TLS, pool timeout)                  |                             |
| RATE_LIMITED    | no        | refused it unprocessed (429, 20429) | retry after `retry_after`   |
| QUEUE_FULL      | no        | refused it: sender queue full       | back this sender off, retry |
|                 |           | (21611, 30001)                      | later and slower            |
| AMBIGUOUS       | no        | may have accepted it (read timeout, | mark `unknown`; reconcile   |
|                 |           | 5xx, dropped connection after the   | with `find_sent`; never     |
|                 |           | request went out, unreadable 2xx)   | resend blindly              |
| INVALID_NUMBER  | yes       | says the number cannot get SMS      | fail; flag the number       |
| OPTED_OUT       | yes       | says the recipient unsubscribed     | fail; opt the participant   |
|                 |           | (21610)                             | out                         |
| BAD_CREDENTIALS | yes       | refuses the link's configuration:   | fail; pause the link and    |
|                 |           | credentials, suspended account,     | alert the owner             |
|                 |           | sender not usable                   |                             |
| REJECTED        | yes       | refused this message for another    | fail with the message       |
|                 |           | reason (e.g. body too long)         |                             |

For read-only calls (`check_credentials`, `fetch_status`, `find_sent`, `poll_inbound`) every
non-permanent reason, AMBIGUOUS included, simply means "try again later".

Error messages are meant for a study coordinator: they never contain a secret or a full phone
number (`scrub`). Crash reports neither: the provider calls (`send`, `check_credentials`,
`fetch_status`, `find_sent`, `poll_inbound`, `_request`) are marked `sensitive_variables()`, so
Django's error reports show no value of their frames or of any frame below them (httpx's).
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import httpx
from django.conf import settings
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

logger = logging.getLogger(__name__)

# Connect and read are separate on purpose: a connect timeout means the request never left
# (UNREACHABLE, safe to retry); a read timeout means it may have been accepted (AMBIGUOUS).
TIMEOUT = httpx.Timeout(connect=5.0, read=15.0, write=10.0, pool=5.0)
USER_AGENT = "StudyText"


class Reason(StrEnum):
    UNREACHABLE = "unreachable"
    RATE_LIMITED = "rate_limited"
    QUEUE_FULL = "queue_full"
    AMBIGUOUS = "ambiguous"
    INVALID_NUMBER = "invalid_number"
    OPTED_OUT = "opted_out"
    BAD_CREDENTIALS = "bad_credentials"
    REJECTED = "rejected"

    @property
    def permanent(self) -> bool:
        return self in PERMANENT_REASONS

    @property
    def safe_to_retry(self) -> bool:
        """True when the provider certainly did not accept the message."""
        return self in SAFE_TO_RETRY


PERMANENT_REASONS = frozenset(
    {Reason.INVALID_NUMBER, Reason.OPTED_OUT, Reason.BAD_CREDENTIALS, Reason.REJECTED}
)
SAFE_TO_RETRY = frozenset({Reason.UNREACHABLE, Reason.RATE_LIMITED, Reason.QUEUE_FULL})


class GatewayError(Exception):
    """A provider call failed. `reason` says how; `permanent` follows from it by default.

    `retry_after` is the provider's requested wait in seconds (Retry-After), `code` the
    provider's own error code (Twilio 21211, Mosio ErrorCode) and `status_code` the HTTP status.
    """

    def __init__(
        self,
        message: str,
        *,
        permanent: bool | None = None,
        reason: Reason | None = None,
        retry_after: float | None = None,
        code: int | str | None = None,
        status_code: int | None = None,
    ) -> None:
        if reason is None:
            reason = Reason.REJECTED if permanent else Reason.AMBIGUOUS
        super().__init__(message)
        self.message = message
        self.reason = Reason(reason)
        self.permanent = self.reason.permanent if permanent is None else permanent
        self.retry_after = retry_after
        self.code = code
        self.status_code = status_code

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple:
        # Keep the classification when pickled (q2 stores a failed task's exception).
        return (_rebuild_error, (self.message, self.__dict__))

    def __repr__(self) -> str:
        return (
            f"GatewayError({self.message!r}, reason={self.reason.value}, "
            f"permanent={self.permanent}, code={self.code!r}, status_code={self.status_code!r}, "
            f"retry_after={self.retry_after!r})"
        )


def _rebuild_error(message: str, state: dict[str, Any]) -> GatewayError:
    error = GatewayError(message)
    error.__dict__.update(state)
    return error


@dataclass(frozen=True)
class SendResult:
    provider_message_id: str
    status: str  # the provider's word for it: "queued", "accepted", "sent"...
    segments: int | None = None  # when the provider reports it (Twilio num_segments)


@dataclass(frozen=True)
class InboundSms:
    provider_message_id: str
    from_number: str  # E.164 when the provider gives enough to build it
    body: str
    to_number: str = ""
    received_at: datetime | None = None


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery receipt (Twilio status callback)."""

    provider_message_id: str
    status: str
    error_code: int | None = None
    reason: Reason | None = None  # the classification of error_code, when there is one


@dataclass(frozen=True)
class ConfigField:
    key: str
    label: str
    secret: bool = False
    required: bool = True
    help_text: str = ""


class Gateway:
    """One SMS provider account, built from a ProviderLink's decrypted config.

    `client` lets tests and benchmarks inject an httpx.Client (its timeouts then apply unless
    `timeout` is given); by default a per-process shared client with `TIMEOUT` is used.
    """

    slug: ClassVar[str] = ""
    label: ClassVar[str] = ""
    config_fields: ClassVar[tuple[ConfigField, ...]] = ()
    is_fake: ClassVar[bool] = False
    supports_polling: ClassVar[bool] = False  # poll_inbound works
    # The provider answers STOP/HELP itself by default, so StudyText sends no HELP text unless a
    # link says otherwise (ProviderLink.provider_answers_keywords; docs/compliance.md).
    answers_keywords: ClassVar[bool] = False
    # A project can pick it for its provider link (ProviderLink.provider's choices come from
    # these: messaging.gateways.provider_choices).
    linkable: ClassVar[bool] = False
    # The config value that may serve one project only (REDCap enforces one Mosio key per
    # project), and what to call it when a second project tries to link it.
    identity_key: ClassVar[str] = ""
    identity_label: ClassVar[str] = "sender"

    def __init__(
        self,
        config: dict[str, str],
        *,
        client: httpx.Client | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.config = dict(config)
        self._client = client
        self.timeout = timeout
        self.link: Any = None  # set by get_gateway(); fakes record it

    @property
    def client(self) -> httpx.Client:
        return self._client if self._client is not None else shared_client()

    @classmethod
    def secret_keys(cls) -> frozenset[str]:
        return frozenset(field.key for field in cls.config_fields if field.secret)

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> dict[str, str]:
        """Return the cleaned config (known keys only, stripped) or raise ValidationError.

        Subclasses add their own checks; errors are a dict of field key -> message, ready for
        `form.add_error(None, error)`.
        """
        cleaned: dict[str, str] = {}
        errors: dict[str, str] = {}
        for field in cls.config_fields:
            value = config.get(field.key)
            value = "" if value is None else str(value).strip()
            if not value and field.required:
                errors[field.key] = f"{field.label} is required."
            cleaned[field.key] = value
        if errors:
            raise ValidationError(errors)
        return cleaned

    # --- the contract ------------------------------------------------------------------------
    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        """Send one SMS to an E.164 number; raise GatewayError on any failure."""
        raise NotImplementedError

    def check_credentials(self) -> str:
        """Make one cheap authenticated call. Return a short description of the account;
        raise GatewayError (BAD_CREDENTIALS when the provider refuses the credentials)."""
        raise NotImplementedError

    def fetch_status(self, *, provider_message_id: str) -> str | None:
        """The provider's current delivery status, or None when it does not know the id."""
        return None

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        """Reconcile an AMBIGUOUS send: the id of a message to `to` with exactly `body` that the
        provider accepted at or after `since`, or None when there is none."""
        return None

    def poll_inbound(self, *, since: datetime) -> list[InboundSms]:
        """Inbound texts received at or after `since` (only when `supports_polling`)."""
        raise NotImplementedError(f"{self.label} delivers inbound texts by webhook.")

    # --- helpers for HTTP providers ----------------------------------------------------------
    # Every frame below holds the credentials (headers, auth) and the number (the form): a crash
    # report (Django's SafeExceptionReporterFilter) shows none of their values.
    base_url: str = ""  # the provider's configured API root; every request stays on its host

    @sensitive_variables()
    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP call, never following redirects; transport failures become GatewayError.

        The URL must be on the configured API host (scheme, host and port of `base_url`): a
        URL taken from a provider's answer (Twilio's next_page_uri) never sends our credentials
        anywhere else (docs/compliance.md, "Outbound calls")."""
        if self.base_url and _origin(url) != _origin(self.base_url):
            logger.warning("Refused a %s request off the configured API host.", self.label)
            raise GatewayError(
                f"Refused to send a request to {_origin(url)[1] or 'an unknown host'}: "
                f"{self.label} requests go only to the configured API host.",
                reason=Reason.REJECTED,
            )
        if self.timeout is not None:
            kwargs.setdefault("timeout", self.timeout)
        try:
            return self.client.request(method, url, follow_redirects=False, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, provider=self.label) from None

    def __repr__(self) -> str:
        shown = []
        for field in self.config_fields:
            value = self.config.get(field.key, "")
            shown.append(f"{field.key}={'<hidden>' if field.secret else value!r}")
        return "<" + " ".join([type(self).__name__, *shown]) + ">"


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return ("", "", None)
    return (parsed.scheme, parsed.host, parsed.port)


# --- classification helpers ---------------------------------------------------------------------
_NEVER_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)


def transport_error(exc: httpx.TransportError, *, provider: str) -> GatewayError:
    """Classify an httpx transport failure. Only failures before the request left are safe."""
    kind = type(exc).__name__
    if isinstance(exc, _NEVER_SENT):
        return GatewayError(
            f"Could not reach {provider} ({kind}); nothing was sent.", reason=Reason.UNREACHABLE
        )
    if isinstance(exc, httpx.LocalProtocolError):
        return GatewayError(
            f"The request to {provider} could not be built ({kind}).", reason=Reason.REJECTED
        )
    # Read/write timeouts, dropped connections, protocol errors: the request may have arrived.
    return GatewayError(
        f"No answer from {provider} after the request was sent ({kind}); "
        "the text may or may not have gone out.",
        reason=Reason.AMBIGUOUS,
    )


def reason_for_status(status: int) -> Reason:
    """What an HTTP status alone says about a refused call (docs/twilio.md, docs/mosio.md): the
    credentials refused (401, 403), slow down (429), a server error or timeout after the request
    arrived (5xx, 408: it may have been taken), or refused for another reason."""
    if status in (401, 403):
        return Reason.BAD_CREDENTIALS
    if status == 429:
        return Reason.RATE_LIMITED
    if status >= 500 or status == 408:
        return Reason.AMBIGUOUS
    return Reason.REJECTED


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_delay(
    attempt: int,
    *,
    base: float = 0.5,
    cap: float = 30.0,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number `attempt` (1 for the first retry).

    Exponential with full jitter: uniform(0, min(cap, base * 2**(attempt-1))), so concurrent
    senders spread out. A provider's Retry-After is a floor, honoured even above `cap`, plus a
    little jitter (up to `base`) so that every worker told "wait 2 s" does not return at once.
    """
    if attempt < 1:
        raise ValueError("attempt counts retries from 1.")
    rng = rng or random
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    if retry_after is not None and retry_after > 0:
        return retry_after + rng.uniform(0, min(base, ceiling))
    return rng.uniform(0, ceiling)


_PHONE_LIKE = re.compile(r"\+?\d(?:[\s().-]{0,2}\d){7,}")


def mask_phone(number: str) -> str:
    """'+14155550143' -> '+1…0143': enough to tell numbers apart in a log, no more."""
    number = (number or "").strip()
    if len(number) <= 6:
        return "…" + number[-2:]
    return f"{number[:2]}…{number[-4:]}"


def scrub(text: str, *, limit: int = 300) -> str:
    """Mask phone numbers in a provider's message (Twilio echoes the To number) and cap it."""
    cleaned = _PHONE_LIKE.sub(lambda m: mask_phone(re.sub(r"[^\d+]", "", m.group())), text or "")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


# --- the shared HTTP client ---------------------------------------------------------------------
_shared: tuple[int, httpx.Client] | None = None
_shared_lock = threading.Lock()


def client_limits() -> httpx.Limits:
    """Room for a connection per sender thread (and a few for webhooks' and pages' calls), all
    of them kept alive. Keeping fewer alive than may be open is unsafe with httpcore 1.0.9:
    its pool compares the keep-alive limit with *every* open connection, so past that limit it
    closes each connection that looks idle, including one it has just handed to another
    thread's request. That request then reads from a closed socket (EBADF) or hangs until its
    read timeout: an ambiguous send (encode/httpcore#1110; docs/sending.md, "The HTTP client").
    With the two limits equal and above the sender's threads, the pool never closes a
    connection to make room."""
    connections = max(50, settings.SENDER_THREADS + 8)
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)


def new_client(**kwargs: Any) -> httpx.Client:
    options: dict[str, Any] = {
        "timeout": TIMEOUT,
        "follow_redirects": False,
        "limits": client_limits(),
        "headers": {"User-Agent": USER_AGENT},
    }
    options.update(kwargs)
    return httpx.Client(**options)


def shared_client() -> httpx.Client:
    """One pooled client per process (q2 workers fork, so a parent's pool is never reused)."""
    global _shared
    pid = os.getpid()
    with _shared_lock:
        if _shared is None or _shared[0] != pid:
            _shared = (pid, new_client())
        return _shared[1]
