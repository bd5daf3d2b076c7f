"""E-mail notices about replies, for the members who ask for them (the project's Members page).

- A flagged reply (a possible opt-out; a number that matches no participant) is e-mailed at
  once to members with `notify_flags`; an unknown number's flag to such owners only, as the
  inbox shows it to owners only.
- Once a day, members with `notify_digest` whose inbox holds something get one e-mail with the
  count (`reply_digest_send`, the `messaging-reply-digest` schedule).

The e-mails carry a link to the inbox and counts, never a reply's text or a phone number. Their
subjects start with the site's prefix (billing.mail).
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from billing import mail
from messaging import selectors
from messaging.models import Reply
from projects.models import Membership

DIGEST_EVERY = datetime.timedelta(hours=20)  # a daily schedule that runs a little early or late


def _inbox_url(project_id: int) -> str:
    return settings.SITE_URL + reverse("inbox", args=[project_id])


def flag_notice_send(*, reply_id: int) -> int:
    """E-mail a flagged reply's notice to the members who asked; returns how many got it."""
    reply = Reply.objects.select_related("project").filter(pk=reply_id).exclude(flag="").first()
    if reply is None:
        return 0
    members = Membership.objects.filter(
        project_id=reply.project_id, notify_flags=True, user__is_active=True
    )
    if reply.participant_id is None:
        members = members.filter(role=Membership.Role.OWNER)
    recipients = sorted(set(members.values_list("user__email", flat=True)))
    project = reply.project
    mail.send(
        f"A reply to review in {project.title}",
        f"A reply in {project.title} was flagged: {reply.get_flag_display().lower()}.\n\n"
        "Open the inbox to read it, mark it reviewed or opt the participant out:\n"
        f"{_inbox_url(project.pk)}\n\n"
        "You get this because you asked for notices of flagged replies on the project's "
        "Members page.\n",
        recipients,
    )
    return len(recipients)


def reply_digest_send(*, now: datetime.datetime | None = None) -> int:
    """Once a day: each member who asked, whose inbox holds replies, gets their count."""
    now = now or timezone.now()
    sent = 0
    members = (
        Membership.objects.filter(notify_digest=True, user__is_active=True)
        .exclude(digest_sent_at__gt=now - DIGEST_EVERY)
        .select_related("project", "user")
    )
    for membership in members:
        count = selectors.inbox_count(project=membership.project, role=membership.role)
        if not count:
            continue
        project = membership.project
        mail.send(
            f"{count} repl{'y' if count == 1 else 'ies'} waiting in {project.title}",
            f"{count} repl{'y waits' if count == 1 else 'ies wait'} unread or flagged in the "
            f"inbox of {project.title}:\n{_inbox_url(project.pk)}\n\n"
            "You get this daily digest because you asked for it on the project's Members "
            "page.\n",
            [membership.user.email],
        )
        Membership.objects.filter(pk=membership.pk).update(digest_sent_at=now)
        sent += 1
    return sent
