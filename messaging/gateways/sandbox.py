"""The in-portal phone simulator: nothing leaves the server.

For now it only issues an id (`SBX-<uuid>`); the messaging services show the texts on the
simulator from the Message rows themselves.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from messaging import segments

from .base import Gateway, SendResult

PREFIX = "SBX-"


class SandboxGateway(Gateway):
    slug = "sandbox"
    label = "Sandbox phone simulator"
    is_fake: ClassVar[bool] = True
    linkable = True
    identity_key = "project"  # its config is the project's id: one link per project

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        return SendResult(
            provider_message_id=f"{PREFIX}{uuid.uuid4()}",
            status="delivered",
            segments=segments.count(body).segments,
        )

    def check_credentials(self) -> str:
        return "Sandbox: texts appear on the portal's phone simulator; nothing is sent."

    def fetch_status(self, *, provider_message_id: str) -> str | None:
        return "delivered" if provider_message_id.startswith(PREFIX) else None
