"""Participant sync: pull only the mapped fields from REDCap, in batches; upsert Participants."""

import datetime
import zoneinfo
from collections.abc import Iterable

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from projects import crypto
from projects.models import FieldMapping, Participant, Project, SyncRun
from projects.redcap import RedcapClient, RedcapError
from projects.selectors import project_field_mapping, project_redcap_link
from projects.services.consent import consent_changes_flush, consent_changes_note
from projects.services.links import redcap_client_for
from projects.services.participants import (
    checkbox_column,
    optout_write_backs_for_project,
    participant_optout_write_back,
    redcap_marks_opted_out,
)
from projects.signals import audit, participants_synced

Issue = Participant.Issue
STALE_AFTER = datetime.timedelta(minutes=30)
TIME_ZONES = zoneinfo.available_timezones()


def sync_batch_size() -> int:
    return settings.PARTICIPANT_SYNC_BATCH_SIZE


def sync_run_active(*, project: Project) -> SyncRun | None:
    cutoff = timezone.now() - STALE_AFTER
    return (
        SyncRun.objects.filter(
            project=project,
            status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING],
            created_at__gte=cutoff,
        )
        .order_by("-created_at")
        .first()
    )


def sync_run_start(
    *, project: Project, actor=None, not_before: datetime.datetime | None = None
) -> SyncRun:
    """Queue a sync (or return the one already running). The work happens in django-q2.

    `actor` is the person who pressed "Sync now"; a scheduled sync (the 15-minute schedule, the
    demo's first sync) has none, and its page says "Scheduled sync".

    With `not_before`, the run is handed to django-q2's scheduler for that time instead of its
    queue: the demo seed queues the first sync of the sandbox project this way, because the web
    server that serves the sandbox starts after the seed (and after the task cluster).
    """
    if project_redcap_link(project=project) is None:
        raise ValidationError("Link the project's REDCap API token before syncing participants.")
    if project_field_mapping(project=project) is None:
        raise ValidationError("Map the phone and consent fields before syncing participants.")
    with transaction.atomic():
        Project.objects.select_for_update(no_key=True).get(pk=project.pk)  # one starter at a time
        running = sync_run_active(project=project)
        if running is not None:
            return running
        # A run left queued or running past STALE_AFTER lost its worker (q2 kills a task after
        # its timeout): say so, rather than show it as running forever.
        SyncRun.objects.filter(
            project=project, status__in=[SyncRun.Status.QUEUED, SyncRun.Status.RUNNING]
        ).update(
            status=SyncRun.Status.FAILED,
            finished_at=timezone.now(),
            error="This sync stopped before it finished (its background worker was stopped).",
        )
        run = SyncRun.objects.create(project=project, requested_by=actor)
        if not_before is None:
            transaction.on_commit(
                lambda: async_task(
                    "projects.tasks.participant_sync",
                    run.pk,
                    task_name=f"participant-sync-{run.pk}",
                )
            )
        else:
            Schedule.objects.create(
                name=f"participant-sync-{run.pk}",
                func="projects.tasks.participant_sync",
                args=str(run.pk),
                schedule_type=Schedule.ONCE,
                repeats=-1,  # a ONCE schedule with negative repeats deletes itself after running
                next_run=not_before,
            )
    return run


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _value(row: dict, field: str) -> str:
    return str(row.get(field, "") or "").strip()


def _consented(row: dict, mapping: FieldMapping) -> bool:
    column = checkbox_column(mapping.consent_field, mapping.consent_value)
    if column in row:  # a checkbox exports one 0/1 column per code
        return str(row[column]) == "1"
    return _value(row, mapping.consent_field) == mapping.consent_value


def _participant_values(row: dict, mapping: FieldMapping, withdrawn: bool) -> dict:
    """The stored form of one REDCap record: only the mapped fields, phone encrypted. A record
    that cannot be texted keeps its record id, flags and reason only: no number, name or dates
    (minimum necessary; the next sync fills them in once REDCap has what was missing)."""
    values = _usable_values(row, mapping, withdrawn)
    if values["issue"]:
        values.update(first_name="", dates={}, phone_e164="")
    return values


def _usable_values(row: dict, mapping: FieldMapping, withdrawn: bool) -> dict:
    consented = _consented(row, mapping)
    raw_phone = _value(row, mapping.phone_field)
    raw_tz = _value(row, mapping.time_zone_field) if mapping.time_zone_field else ""
    values = {
        "consented": consented,
        "withdrawn": withdrawn,
        "redcap_opted_out": redcap_marks_opted_out(row, mapping),
        "first_name": _value(row, mapping.first_name_field)[:100]
        if mapping.first_name_field
        else "",
        "time_zone": raw_tz if raw_tz in TIME_ZONES else "",
        "dates": {f: _value(row, f) for f in mapping.date_fields if _value(row, f)},
        "issue": Issue.NONE,
        "issue_detail": "",
        "phone_e164": "",
    }
    if not raw_phone:
        values.update(issue=Issue.NO_PHONE)
        return values
    try:
        number = phonenumbers.parse(raw_phone, mapping.phone_region or "US")
        valid = phonenumbers.is_valid_number(number)
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        values.update(
            issue=Issue.INVALID_PHONE, issue_detail="The number is not a valid phone number."
        )
        return values
    if not consented:
        values.update(issue=Issue.NO_CONSENT)  # the number is not kept without consent
        return values
    if raw_tz and raw_tz not in TIME_ZONES:
        values.update(
            issue=Issue.UNKNOWN_TIME_ZONE,
            issue_detail=f"“{raw_tz[:60]}” is not a time-zone name such as America/Chicago.",
        )
        return values
    values["phone_e164"] = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return values


def _apply(participant: Participant, values: dict, now) -> bool:
    """Copy values onto the participant; return True when anything changed."""
    changed = False
    consent_changes_note(participant, values)  # the consent timeline (projects/services/consent.py)
    phone = values.pop("phone_e164")
    fp = crypto.fingerprint(phone, purpose="phone") if phone else ""
    if fp != participant.phone_fingerprint:
        participant.phone_fingerprint = fp
        participant.phone_encrypted = crypto.encrypt(phone) if phone else ""
        participant.phone_last4 = phone[-4:] if phone else ""
        participant.number_invalid = False
        changed = True
    for attr, value in values.items():
        if getattr(participant, attr) != value:
            setattr(participant, attr, value)
            changed = True
    if not participant.in_redcap:
        participant.in_redcap = True
        changed = True
    participant.synced_at = now
    return changed


UPDATE_FIELDS = [
    "phone_encrypted",
    "phone_fingerprint",
    "phone_last4",
    "number_invalid",
    "consented",
    "withdrawn",
    "redcap_opted_out",
    "first_name",
    "time_zone",
    "dates",
    "issue",
    "issue_detail",
    "in_redcap",
    "synced_at",
    "updated_at",
]


def sync_run_execute(*, run_id: int) -> SyncRun | None:
    """Run a queued sync. A duplicate task finds the run already claimed and does nothing."""
    now = timezone.now()
    claimed = SyncRun.objects.filter(pk=run_id, status=SyncRun.Status.QUEUED).update(
        status=SyncRun.Status.RUNNING, started_at=now
    )
    if not claimed:
        return None
    run = SyncRun.objects.select_related("project", "project__redcap_instance").get(pk=run_id)
    project = run.project
    try:
        _sync(run, project)
    except (RedcapError, ValidationError) as exc:
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        _fail(run, project, message)
    except Exception:
        # Not left "running" for half an hour: the page says it failed; q2 records the error.
        _fail(
            run,
            project,
            "The sync stopped on an unexpected error. Try again; if it fails again, tell the "
            "server administrators.",
        )
        raise
    run.refresh_from_db()
    return run


def _fail(run: SyncRun, project: Project, message: str) -> None:
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.FAILED, finished_at=timezone.now(), error=message
    )
    audit.send(
        sender=SyncRun,
        actor=None,
        action="participant_sync.failed",
        obj=project,
        message=message,
    )


def _sync(run: SyncRun, project: Project) -> None:
    mapping = FieldMapping.objects.get(project=project)
    client = redcap_client_for(project)
    optout_write_backs_for_project(project=project, client=client)  # so this sync reads them
    events = [mapping.event] if mapping.event else None
    id_field = client.record_id_field()
    ids = client.record_ids(events=events)
    withdrawn_logic = mapping.withdrawn_logic.strip()
    withdrawn = (
        set(client.record_ids(events=events, filter_logic=withdrawn_logic))
        if withdrawn_logic
        else set()
    )
    SyncRun.objects.filter(pk=run.pk).update(total=len(ids))
    existing = {p.record_id: p for p in Participant.objects.filter(project=project)}
    fields = [id_field, *[f for f in mapping.redcap_fields if f != id_field]]
    created = updated = skipped = processed = 0
    batches = client.iter_record_batches(
        records=ids, fields=fields, events=events, batch_size=sync_batch_size()
    )
    for rows in batches:
        now = timezone.now()
        seen: set[str] = set()
        to_create, to_update = [], []
        for row in rows:
            record_id = str(row.get(id_field, ""))
            if row.get("redcap_repeat_instrument") or record_id in seen:
                continue  # the mapped fields live on the record's first, non-repeating row
            seen.add(record_id)
            values = _participant_values(row, mapping, record_id in withdrawn)
            if values["issue"]:
                skipped += 1
            participant = existing.get(record_id)
            if participant is None:
                participant = Participant(project=project, record_id=record_id)
                _apply(participant, values, now)
                to_create.append(participant)
            elif _apply(participant, values, now):
                participant.updated_at = now
                to_update.append(participant)
        with transaction.atomic():
            Participant.objects.bulk_create(to_create)
            Participant.objects.bulk_update(to_update, UPDATE_FIELDS)
            consent_changes_flush([*to_create, *to_update], how="Read by the sync.")
        created += len(to_create)
        updated += len(to_update)
        processed = min(processed + sync_batch_size(), len(ids))
        SyncRun.objects.filter(pk=run.pk).update(
            processed=processed,
            created_count=created,
            updated_count=updated,
            skipped_count=skipped,
        )
    # Records gone from REDCap are marked, never deleted (their texts and opt-outs stay).
    present = set(ids)
    gone_pks = [p.pk for rid, p in existing.items() if p.in_redcap and rid not in present]
    gone = 0
    for start in range(0, len(gone_pks), 500):  # bounded IN lists (SQLite's variable limit)
        gone += Participant.objects.filter(pk__in=gone_pks[start : start + 500]).update(
            in_redcap=False, updated_at=timezone.now()
        )
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.SUCCEEDED, finished_at=timezone.now(), gone_count=gone
    )
    participants_synced.send_robust(sender=SyncRun, project_id=project.pk)
    audit.send(
        sender=SyncRun,
        actor=run.requested_by,
        action="participant_sync.finished",
        obj=project,
        message=f"Synced {len(ids)} records: {created} new, {updated} changed, "
        f"{skipped} not usable, {gone} gone from REDCap.",
    )


def record_sync(
    *, project: Project, record_id: str, client: RedcapClient | None = None
) -> Participant | None:
    """Read one record's mapped fields from REDCap and update (or create) its participant exactly
    as a full sync would (the same fields, rules and values; used on a Data Entry Trigger).

    Returns the participant, or None when REDCap has no such record in the mapped event: a
    participant that had one is then marked gone from REDCap, as the sync marks it. REDCap calls:
    one export of the record, a second one filtered by the withdrawn logic when the mapping has
    some, and first the participant's pending opt-out write when there is one (as the sync
    writes them first, so that this read sees them). Raises RedcapError or ValidationError."""
    mapping = FieldMapping.objects.get(project=project)
    client = client or redcap_client_for(project)
    pending = Participant.objects.filter(project=project, record_id=record_id).exclude(
        optout_write_pending=""
    )
    for participant_id in pending.values_list("pk", flat=True):
        participant_optout_write_back(participant_id=participant_id)
    events = [mapping.event] if mapping.event else None
    rows = client.records(records=[record_id], fields=mapping.redcap_fields, events=events)
    # REDCap puts the record-id field first in every row, whatever `fields` asked for; the
    # mapped fields live on the record's first, non-repeating row (as in the sync).
    row = next(
        (
            r
            for r in rows
            if not r.get("redcap_repeat_instrument")
            and str(next(iter(r.values()), "")) == record_id
        ),
        None,
    )
    withdrawn = False
    withdrawn_logic = mapping.withdrawn_logic.strip()
    if row is not None and withdrawn_logic:
        withdrawn = bool(
            client.records(
                records=[record_id],
                fields=[mapping.phone_field],
                events=events,
                filter_logic=withdrawn_logic,
            )
        )
    now = timezone.now()
    with transaction.atomic():
        participant = (
            Participant.objects.select_for_update(no_key=True)
            .filter(project=project, record_id=record_id)
            .first()
        )
        if row is None:
            if participant is not None and participant.in_redcap:
                participant.in_redcap = False
                participant.save(update_fields=["in_redcap", "updated_at"])
            return None
        values = _participant_values(row, mapping, withdrawn)
        if participant is None:
            participant = Participant(project=project, record_id=record_id)
            _apply(participant, values, now)
            try:
                with transaction.atomic():
                    participant.save()
                    consent_changes_flush([participant], how="Read after a save in REDCap.")
                return participant
            except IntegrityError:  # a full sync created it meanwhile: update that one
                participant = Participant.objects.select_for_update(no_key=True).get(
                    project=project, record_id=record_id
                )
                values = _participant_values(row, mapping, withdrawn)
        if _apply(participant, values, now):
            participant.updated_at = now
            participant.save(update_fields=UPDATE_FIELDS)
            consent_changes_flush([participant], how="Read after a save in REDCap.")
    return participant


def sync_all_due() -> int:
    """The 15-minute schedule: queue a sync for every linked, mapped, active or paused project.

    Paused projects are kept in sync so that, on resuming, their texts go only to participants
    who are still eligible (consent, withdrawal and opt-outs as REDCap holds them now).
    """
    projects = Project.objects.filter(
        status__in=[Project.Status.ACTIVE, Project.Status.PAUSED],
        redcap_link__isnull=False,
        field_mapping__isnull=False,
    )
    count = 0
    for project in projects:
        if sync_run_active(project=project) is None:
            sync_run_start(project=project)
            count += 1
    return count
