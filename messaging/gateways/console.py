"""Development fake: logs each text (masked number, length, segments) instead of sending it."""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar

from messaging import segments

from .base import Gateway, SendResult, mask_phone

logger = logging.getLogger(__name__)


class ConsoleGateway(Gateway):
    slug = "console"
    label = "Console (development)"
    is_fake: ClassVar[bool] = True

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        message_id = f"CON-{uuid.uuid4().hex}"
        count = segments.count(body)
        # The body itself is never logged: it may carry a participant's name or survey link.
        logger.info(
            "SMS to %s (masked): %d characters, %d segment(s) %s [%s]",
            mask_phone(to),
            len(body),
            count.segments,
            count.encoding,
            message_id,
        )
        return SendResult(provider_message_id=message_id, status="sent", segments=count.segments)

    def check_credentials(self) -> str:
        return "Console gateway: texts are written to the log, nothing is sent."
