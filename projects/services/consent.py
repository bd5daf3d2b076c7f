"""The consent timeline's lines (projects.models.ConsentEvent; the participant page).

`consent_event_record` is called by whatever changes a participant's consent or opt-out:
messaging's opt-outs (STOP, the provider's 21610, staff) and START, and the sync and the DET's
re-read when REDCap's consent or opt-out field changes. It writes one line; it never decides.
"""

from __future__ import annotations

from django.utils import timezone

from projects.models import ConsentEvent, Participant

Kind = ConsentEvent.Kind
Source = ConsentEvent.Source


def consent_event_record(
    *,
    project_id: int,
    kind: str,
    source: str,
    participant: Participant | None = None,
    fingerprint: str = "",
    detail: str = "",
    actor=None,
    at=None,
) -> ConsentEvent:
    return ConsentEvent.objects.create(
        project_id=project_id,
        participant=participant,
        phone_fingerprint=fingerprint or (participant.phone_fingerprint if participant else ""),
        kind=kind,
        source=source,
        detail=(detail or "")[:200],
        actor=actor,
        at=at or timezone.now(),
    )


def consent_changes_note(participant: Participant, values: dict) -> None:
    """Before a sync copies REDCap's values onto a participant: note what changes the consent
    or the opt-out field, for `consent_changes_flush` once the participant is saved."""
    new = participant.pk is None
    notes = []
    consented = values.get("consented")
    if consented is not None and (new or consented != participant.consented):
        source = Source.SYNC if new else Source.REDCAP_CONSENT
        if consented or not new:
            notes.append((Kind.CONSENTED if consented else Kind.CONSENT_WITHDRAWN, source))
    opted_out = values.get("redcap_opted_out")
    if opted_out is not None and opted_out != participant.redcap_opted_out:
        notes.append((Kind.OPTED_OUT if opted_out else Kind.OPTED_IN, Source.REDCAP_OPTOUT))
    participant._consent_notes = notes


def consent_changes_flush(participants, *, how: str) -> int:
    """Write the noted lines of saved participants; `how` says what read REDCap."""
    rows = []
    now = timezone.now()
    for participant in participants:
        for kind, source in getattr(participant, "_consent_notes", ()):
            rows.append(
                ConsentEvent(
                    project_id=participant.project_id,
                    participant=participant,
                    phone_fingerprint=participant.phone_fingerprint,
                    kind=kind,
                    source=source,
                    detail=how,
                    at=now,
                )
            )
        participant._consent_notes = []
    ConsentEvent.objects.bulk_create(rows)
    return len(rows)
