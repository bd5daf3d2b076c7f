"""Test fake, like Django's locmem e-mail backend: sent texts land in `outbox`.

    from messaging.gateways import locmem
    assert [m.to for m in locmem.outbox] == ["+15005550006"]
    locmem.fail_next(Reason.RATE_LIMITED, retry_after=2)   # the next send raises this

Call `reset()` between tests (tests/messaging/conftest.py does it automatically).
"""

from __future__ import annotations

import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

from messaging import segments

from .base import Gateway, GatewayError, InboundSms, Reason, SendResult


@dataclass
class SentSms:
    to: str
    body: str
    provider_message_id: str
    status_callback: str | None = None
    provider: str = ""  # the slug of the link it was sent for ("twilio"), when known
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    segments: int = 0


@dataclass
class _Failure:
    error: GatewayError
    accepted: bool  # AMBIGUOUS but the "provider" kept it, for reconciliation tests


outbox: list[SentSms] = []
inbox: list[InboundSms] = []  # what poll_inbound returns; tests append to it
statuses: dict[str, str] = {}  # provider_message_id -> status; tests may change it
_failures: deque[_Failure] = deque()
_lock = threading.Lock()


def fail_next(
    reason: Reason,
    message: str | None = None,
    *,
    times: int = 1,
    retry_after: float | None = None,
    code: int | str | None = None,
    accepted: bool = False,
) -> None:
    """Make the next `times` sends raise GatewayError(reason). With `accepted=True` (for
    AMBIGUOUS) the text is also put in the outbox, as a provider that timed out after
    accepting it would have done: find_sent then finds it."""
    for _ in range(times):
        error = GatewayError(
            message or f"Simulated failure: {reason.value}.",
            reason=reason,
            retry_after=retry_after,
            code=code,
        )
        _failures.append(_Failure(error, accepted))


def reset() -> None:
    with _lock:
        outbox.clear()
        inbox.clear()
        statuses.clear()
        _failures.clear()


class LocmemGateway(Gateway):
    slug = "locmem"
    label = "Local memory (tests)"
    is_fake: ClassVar[bool] = True
    supports_polling = True

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        with _lock:
            failure = _failures.popleft() if _failures else None
            if failure is None or failure.accepted:
                message = self._record(to=to, body=body, status_callback=status_callback)
        if failure is not None:
            raise failure.error
        return SendResult(message.provider_message_id, "queued", message.segments)

    def _record(self, *, to: str, body: str, status_callback: str | None) -> SentSms:
        message = SentSms(
            to=to,
            body=body,
            provider_message_id=f"LM-{uuid.uuid4().hex}",
            status_callback=status_callback,
            provider=getattr(self.link, "provider", "") or "",
            segments=segments.count(body).segments,
        )
        outbox.append(message)
        statuses[message.provider_message_id] = "queued"
        return message

    def check_credentials(self) -> str:
        return "Local memory gateway: texts are kept for tests."

    def fetch_status(self, *, provider_message_id: str) -> str | None:
        return statuses.get(provider_message_id)

    def find_sent(self, *, to: str, body: str, since: datetime) -> str | None:
        for message in reversed(outbox):
            if message.to == to and message.body == body and message.sent_at >= since:
                return message.provider_message_id
        return None

    def poll_inbound(self, *, since: datetime) -> list[InboundSms]:
        return [m for m in inbox if m.received_at is None or m.received_at >= since]


def sent_to(number: str) -> list[SentSms]:
    return [m for m in outbox if m.to == number]
