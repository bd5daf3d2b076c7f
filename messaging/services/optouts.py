"""Opt-outs: the suppression list (docs/compliance.md, "Consent and the suppression list").

`opt_out_record` puts a number on it, whoever asked: the participant (STOP), the provider (an
unsubscribed number) or study staff. Staff also opt participants out and in by hand: a
participant who asked by phone, in clinic or by e-mail to stop (or to resume) texts.

- Opt-out: the number goes on the project's suppression list with source "staff" and the
  reason given, queued and held texts are cancelled and REDCap is told (`opt_out_record`).
- Opt-in: staff may lift only an opt-out that staff set. A STOP the participant texted (or the
  provider's own unsubscribe) is lifted only by the participant texting START: the provider
  keeps blocking the number until then, and the participant's word is what the rules ask for.
  An opt-out marked in REDCap's opt-out field is changed in REDCap.
Both need a reason, kept on the opt-out row and in the audit log.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from messaging.models import Message, OptOut
from messaging.signals import audit
from projects.access import EDITOR, project_role_require
from projects.models import ConsentEvent, Participant
from projects.services.consent import consent_event_record
from projects.services.participants import participant_optout_write_back_request

REASON_MAX = 200
# The consent timeline's source for each kind of opt-out (projects.models.ConsentEvent).
TIMELINE_SOURCE = {
    OptOut.Source.KEYWORD: ConsentEvent.Source.KEYWORD,
    OptOut.Source.PROVIDER: ConsentEvent.Source.PROVIDER,
    OptOut.Source.STAFF: ConsentEvent.Source.STAFF,
}
TIMELINE_DETAIL = {
    OptOut.Source.KEYWORD: "Texted a stop word.",
    OptOut.Source.PROVIDER: "The provider refused a text: the number unsubscribed (21610).",
}


def opt_out_record(
    *, participant: Participant, source: str, detail: str = "", actor=None
) -> OptOut | None:
    """Add the participant's number to the suppression list and cancel their queued texts.
    `actor`: the staff member who did it (None when the participant or provider did)."""
    if not participant.phone_fingerprint:
        return None
    with transaction.atomic():
        opt_out, created = OptOut.objects.get_or_create(
            project_id=participant.project_id,
            phone_fingerprint=participant.phone_fingerprint,
            revoked_at=None,
            defaults={"participant": participant, "source": source, "detail": detail},
        )
        if created:
            consent_event_record(
                project_id=participant.project_id,
                participant=participant,
                kind=ConsentEvent.Kind.OPTED_OUT,
                source=TIMELINE_SOURCE[source],
                detail=detail if actor else TIMELINE_DETAIL.get(source, ""),
                actor=actor,
            )
            participant_optout_write_back_request(participant_id=participant.pk)
            Message.objects.filter(
                participant__project_id=participant.project_id,
                participant__phone_fingerprint=participant.phone_fingerprint,
                status__in=[Message.Status.QUEUED, Message.Status.HELD],
            ).update(
                status=Message.Status.CANCELLED,
                error="Cancelled: the participant opted out.",
                updated_at=timezone.now(),
            )
            audit.send(
                sender=OptOut,
                actor=actor,
                action="participant.opted_out",
                obj=participant,
                message=f"Record {participant.record_id} opted out: "
                f"{opt_out.get_source_display()}" + (f" ({detail})." if actor else "."),
            )
    return opt_out


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            {
                "reason": "Say why, for the audit log (for example: “asked by "
                "phone on March 4 to stop texts”)."
            }
        )
    if len(reason) > REASON_MAX:
        raise ValidationError({"reason": f"Keep the reason under {REASON_MAX} characters."})
    return reason


def _active(participant: Participant) -> OptOut | None:
    return OptOut.objects.filter(
        project_id=participant.project_id,
        phone_fingerprint=participant.phone_fingerprint,
        revoked_at__isnull=True,
    ).first()


def participant_opt_out(*, participant: Participant, actor, reason: str) -> OptOut:
    """Study staff stop texts to a participant. Editors and owners only."""
    project_role_require(
        user=actor, project=participant.project, min_role=EDITOR, doing="opt participants out or in"
    )
    reason = _reason(reason)
    if not participant.phone_fingerprint:
        raise ValidationError(
            f"Record {participant.record_id} has no phone number, so no text can reach it."
        )
    active = _active(participant)
    if active is not None:
        raise ValidationError(
            f"Record {participant.record_id} is already opted out "
            f"({active.get_source_display().lower()})."
        )
    opt_out = opt_out_record(
        participant=participant, source=OptOut.Source.STAFF, detail=reason, actor=actor
    )
    assert opt_out is not None
    return opt_out


def participant_opt_in(*, participant: Participant, actor, reason: str) -> OptOut:
    """Study staff lift an opt-out that staff set. Returns the revoked opt-out."""
    project_role_require(
        user=actor, project=participant.project, min_role=EDITOR, doing="opt participants out or in"
    )
    reason = _reason(reason)
    active = _active(participant) if participant.phone_fingerprint else None
    if active is None:
        if participant.redcap_opted_out:
            raise ValidationError(
                f"Record {participant.record_id} is opted out in REDCap's opt-out field; "
                "change it there (the next sync reads it)."
            )
        raise ValidationError(f"Record {participant.record_id} is not opted out.")
    if active.source != OptOut.Source.STAFF:
        raise ValidationError(
            f"Record {participant.record_id} opted out themselves "
            f"({active.get_source_display().lower()}). Only the participant can undo that, by "
            "texting START; the provider blocks texts to the number until then."
        )
    with transaction.atomic():
        revoked = OptOut.objects.filter(pk=active.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not revoked:
            raise ValidationError(f"Record {participant.record_id} was opted in meanwhile.")
        participant_optout_write_back_request(participant_id=participant.pk, opted_out=False)
        consent_event_record(
            project_id=participant.project_id,
            participant=participant,
            kind=ConsentEvent.Kind.OPTED_IN,
            source=ConsentEvent.Source.STAFF,
            detail=reason,
            actor=actor,
        )
        audit.send(
            sender=OptOut,
            actor=actor,
            action="participant.opted_in",
            obj=participant,
            message=f"Record {participant.record_id} opted back in by study staff: {reason}",
        )
    active.refresh_from_db()
    return active
