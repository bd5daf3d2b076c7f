"""A queued text held back or skipped, with a note for the team: the one pair of functions the
sender's checks (release.prepare) and the text surveys (conversations) both use. Only a text
still queued changes (one already claimed for sending is left alone)."""

import datetime

from django.utils import timezone

from messaging.models import Message


def defer(message: Message, until: datetime.datetime, note: str = "") -> None:
    Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
        not_before=until, error=note, updated_at=timezone.now()
    )


def skip(message: Message, reason: str) -> None:
    Message.objects.filter(pk=message.pk, status=Message.Status.QUEUED).update(
        status=Message.Status.SKIPPED, error=reason, updated_at=timezone.now()
    )
