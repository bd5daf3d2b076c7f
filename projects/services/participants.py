"""Opt-outs and REDCap: reading the mapped opt-out field, and writing STOP (and START) back to it.

An opt-out recorded in StudyText (a STOP text, a provider's "unsubscribed") is written to the
mapped opt-out field of the participant's REDCap record, so the study team sees it where it
works, and a START clears it again. The wish is first stored on the participant
(`optout_write_pending`, in the transaction that records the opt-out); a q2 task then writes it.
When REDCap is down, or the task is lost, the flag stays and the 15-minute sync writes it:
nothing is lost. Writing is idempotent: REDCap is read first, and only a value that differs is
imported, so a second call (or a retry racing the task) changes nothing.
"""

import logging
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django_q.tasks import async_task

from projects.models import FieldMapping, Participant, Project
from projects.redcap import RedcapClient, RedcapError
from projects.selectors import project_field_mapping
from projects.services.links import redcap_client_for
from projects.signals import audit

logger = logging.getLogger(__name__)

Pending = Participant.OptoutWrite
RETRY_BATCH = 200  # participants per project per retry run (one export and one import)
WRITE_PENDING = ~Q(optout_write_pending="")  # an opt-out change waits to be written to REDCap


def checkbox_column(field: str, code: str) -> str:
    """The export and import column of one checkbox option: REDCap lower-cases the code and
    writes a minus sign as an underscore (`optout___1`)."""
    return f"{field}___{code.strip().lower().replace('-', '_')}"


def redcap_marks_opted_out(row: dict, mapping: FieldMapping) -> bool:
    """Whether an exported REDCap row says the participant opted out (the mapped field holds
    the opted-out value; for a checkbox, its option is ticked)."""
    if not mapping.optout_field:
        return False
    column = checkbox_column(mapping.optout_field, mapping.optout_value)
    if column in row:  # a checkbox exports one 0/1 column per option
        return str(row[column]) == "1"
    return str(row.get(mapping.optout_field, "") or "").strip() == mapping.optout_value


def participant_optout_write_back_request(*, participant_id: int, opted_out: bool = True) -> None:
    """Remember that REDCap must learn of this opt-out (or, with `opted_out=False`, of the
    opt-in that revoked it), and queue the write for after the commit.

    Call it inside the transaction that records the opt-out: the flag commits with it, so if
    the task is lost the 15-minute sync still writes it. The latest wish wins (STOP then START
    while REDCap is down writes the opt-in only)."""
    wish = Pending.OPT_OUT if opted_out else Pending.OPT_IN
    Participant.objects.filter(pk=participant_id).update(optout_write_pending=wish)
    transaction.on_commit(
        lambda: async_task(
            "projects.tasks.optout_write_back",
            participant_id,
            task_name=f"optout-write-back-{participant_id}",
        )
    )


def participant_optout_write_back(*, participant_id: int) -> bool:
    """Write the participant's pending opt-out (or opt-in) to REDCap now.

    Returns True when nothing is left to write (written now, already in REDCap, nothing was
    pending, or no opt-out field is mapped: then it is only logged). Returns False when it stays
    pending because REDCap could not be reached or refused it: the 15-minute sync retries it.
    """
    participant = (
        Participant.objects.select_related("project", "project__redcap_instance")
        .filter(pk=participant_id)
        .first()
    )
    if participant is None or not participant.optout_write_pending:
        return True
    return _write(participant.project, [participant])


def optout_write_backs_retry() -> int:
    """The 15-minute schedule: write every pending opt-out, one export and one import per
    project. Returns how many are left pending (REDCap still unreachable)."""
    project_ids = set(
        Participant.objects.filter(WRITE_PENDING).values_list("project_id", flat=True).distinct()
    )
    left = 0
    for project in Project.objects.filter(pk__in=project_ids).select_related("redcap_instance"):
        batch = _pending_batch(project)
        if not _write(project, batch):
            left += len(batch)
    return left


def optout_write_backs_for_project(*, project: Project, client: RedcapClient) -> None:
    """Write a project's pending opt-outs before its sync reads REDCap (so it reads them)."""
    batch = _pending_batch(project)
    if batch:
        _write(project, batch, client=client)


def _pending_batch(project: Project) -> list[Participant]:
    """The project's first RETRY_BATCH participants whose opt-out change waits for REDCap."""
    return list(
        Participant.objects.filter(WRITE_PENDING, project=project).order_by("pk")[:RETRY_BATCH]
    )


def _clear(participants: Iterable[Participant], **also) -> None:
    """Clear each participant's flag unless a newer wish replaced it meanwhile."""
    for participant in participants:
        Participant.objects.filter(
            pk=participant.pk, optout_write_pending=participant.optout_write_pending
        ).update(optout_write_pending="", **also)


def _write(
    project: Project, participants: list[Participant], *, client: RedcapClient | None = None
) -> bool:
    records = ", ".join(p.record_id for p in participants)
    mapping = project_field_mapping(project=project)
    if mapping is None or not mapping.optout_field:
        logger.info(
            "Project %s maps no opt-out field: the opt-out change of record(s) %s stays in "
            "StudyText and is not written to REDCap.",
            project.pk,
            records,
        )
        _clear(participants)
        return True
    field, event = mapping.optout_field, mapping.event
    try:
        client = client or redcap_client_for(project)
        id_field = client.record_id_field()
        rows = client.records(
            records=[p.record_id for p in participants],
            fields=[id_field, field],
            events=[event] if event else None,
        )
    except (RedcapError, ValidationError) as exc:
        _log_pending(project, records, exc)
        return False
    in_redcap: dict[str, dict] = {}
    for row in rows:
        if not row.get("redcap_repeat_instrument"):
            in_redcap.setdefault(str(row.get(id_field, "")), row)
    checkbox = checkbox_column(field, mapping.optout_value)
    imports, written, gone, already = [], [], [], []
    for participant in participants:
        row = in_redcap.get(participant.record_id)
        wants_out = participant.optout_write_pending == Pending.OPT_OUT
        if row is None:
            # Never create a record by importing one: the record is gone (or not in the event).
            logger.warning(
                "Project %s: record %s is not in REDCap%s; its opt-out change was not written.",
                project.pk,
                participant.record_id,
                f" (event {event})" if event else "",
            )
            gone.append(participant)
            continue
        if redcap_marks_opted_out(row, mapping) == wants_out:
            already.append(participant)  # REDCap already says so: nothing to write
            continue
        if checkbox in row:
            value = "1" if wants_out else "0"
            column = checkbox
        else:
            value = mapping.optout_value if wants_out else ""  # an opt-in empties the field
            column = field
        data = {id_field: participant.record_id, column: value}
        if event:
            data["redcap_event_name"] = event
        imports.append(data)
        written.append((participant, column, value))
    if imports:
        try:
            # "overwrite" so that an opt-in can empty the field; each row holds only that field.
            client.import_records(imports, overwrite=True)
        except RedcapError as exc:
            _log_pending(project, records, exc)
            return False
    with transaction.atomic():
        for participant, column, value in written:
            wants_out = participant.optout_write_pending == Pending.OPT_OUT
            _clear([participant], redcap_opted_out=wants_out)
            where = f" in event {event}" if event else ""
            audit.send(
                sender=Participant,
                actor=None,
                action="participant.optout_written_to_redcap"
                if wants_out
                else "participant.optin_written_to_redcap",
                obj=participant,
                message=(
                    f"Record {participant.record_id}: "
                    + ("opt-out" if wants_out else "opt-in (opt-out cleared)")
                    + f" written to REDCap, {column} = “{value}”{where}."
                ),
            )
        for participant in already:
            out = participant.optout_write_pending == Pending.OPT_OUT
            _clear([participant], redcap_opted_out=out)
        _clear(gone)
    return True


def _log_pending(project: Project, records: str, exc: Exception) -> None:
    message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    logger.warning(
        "Project %s: the opt-out change of record(s) %s could not be written to REDCap (%s); "
        "it stays pending and the 15-minute sync tries again.",
        project.pk,
        records,
        message,
    )
