"""The team's inbox: replies read, flags reviewed, answers sent (docs/compliance.md, "The inbox").

Every reply arrives unread; some arrive flagged (a possible opt-out, a number that matches no
participant). Editors and owners clear them:

- mark a reply read (or all of them at once): it leaves the inbox; nothing else changes;
- review a flag, with an optional note: audited, the reply leaves the inbox;
- opt the participant out from a flagged reply, with a reason: the staff opt-out
  (`optouts.participant_opt_out`: source "staff", queued texts cancelled, REDCap told), and the
  flag is reviewed with that reason;
- answer a reply: an ad-hoc text (`outbox.adhoc_send`: sending hours, quota and opt-out apply),
  and the reply is marked read.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from messaging.models import Message, OptOut, Reply
from messaging.services.optouts import participant_opt_out
from messaging.services.outbox import adhoc_send
from messaging.signals import audit
from projects.access import EDITOR, project_role_require

NOTE_MAX = 200


def reply_mark_read(*, reply: Reply, actor) -> bool:
    project_role_require(user=actor, project=reply.project, min_role=EDITOR, doing="clear replies")
    return bool(
        Reply.objects.filter(pk=reply.pk, read_at__isnull=True).update(read_at=timezone.now())
    )


def replies_mark_all_read(*, project, actor) -> int:
    """Every unread reply of the project is read (open flags stay until reviewed)."""
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="clear replies")
    return Reply.objects.filter(project=project, read_at__isnull=True).update(
        read_at=timezone.now()
    )


def _flag_words(reply: Reply) -> str:
    who = (
        f"record {reply.participant.record_id}"
        if reply.participant_id
        else f"a number ending {reply.phone_last4 or '(none)'}"
    )
    return f"{reply.get_flag_display()} (reply from {who})"


def reply_review(*, reply: Reply, actor, note: str = "") -> Reply:
    """An editor has looked at a flagged reply; the note (optional) goes in the audit log."""
    project_role_require(
        user=actor, project=reply.project, min_role=EDITOR, doing="review flagged replies"
    )
    note = (note or "").strip()
    if len(note) > NOTE_MAX:
        raise ValidationError({"note": f"Keep the note under {NOTE_MAX} characters."})
    if not reply.flag:
        raise ValidationError("This reply is not flagged.")
    with transaction.atomic():
        now = timezone.now()
        done = Reply.objects.filter(pk=reply.pk, reviewed_at__isnull=True).update(
            reviewed_at=now, reviewed_by=actor, review_note=note, read_at=now
        )
        if not done:
            raise ValidationError("Someone reviewed this reply meanwhile.")
        audit.send(
            sender=Reply,
            actor=actor,
            action="reply.reviewed",
            obj=reply.project,
            message=f"Reviewed: {_flag_words(reply)}." + (f" Note: {note}" if note else ""),
        )
    reply.refresh_from_db()
    return reply


def reply_opt_out(*, reply: Reply, actor, reason: str) -> OptOut:
    """Opt the participant out from a reply (a possible opt-out): staff opt-out with a reason,
    and the flag is reviewed."""
    project_role_require(
        user=actor, project=reply.project, min_role=EDITOR, doing="opt participants out or in"
    )
    if reply.participant is None:
        raise ValidationError(
            "This number matches no participant; a STOP from it is already honoured, and "
            "nothing is texted to it."
        )
    with transaction.atomic():
        opt_out = participant_opt_out(participant=reply.participant, actor=actor, reason=reason)
        now = timezone.now()
        Reply.objects.filter(pk=reply.pk).update(
            reviewed_at=now,
            reviewed_by=actor,
            review_note=f"Opted out: {opt_out.detail}"[:NOTE_MAX],
            read_at=now,
        )
    return opt_out


def reply_answer(*, reply: Reply, body: str, actor) -> Message:
    """Answer a reply with a text to its participant (the ad-hoc text's rules); it is read."""
    project_role_require(user=actor, project=reply.project, min_role=EDITOR, doing="send texts")
    if reply.participant is None:
        raise ValidationError("This number matches no participant: StudyText cannot text it.")
    message = adhoc_send(participant=reply.participant, body=body, actor=actor)
    Reply.objects.filter(pk=reply.pk, read_at__isnull=True).update(read_at=timezone.now())
    return message


def participant_replies_answered(*, participant, actor) -> int:
    """A text to a participant from their page answers their unread replies: they are read."""
    project_role_require(
        user=actor, project=participant.project, min_role=EDITOR, doing="clear replies"
    )
    return Reply.objects.filter(participant=participant, read_at__isnull=True).update(
        read_at=timezone.now()
    )
