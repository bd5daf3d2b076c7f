"""REDCap's Data Entry Trigger (docs/redcap.md, "The Data Entry Trigger"): the address an owner
pastes into REDCap, the posts it receives, and the read of each saved record that follows.

A post is a hint. It says "record R of project P was saved" and is not signed; StudyText checks
the project id against the address's project, then reads record R from REDCap with the
project's token and updates its participant as the participant sync does
(`sync.record_sync`). Posted values are never stored or used: only which record to read, and
the instrument, event and repeat instance handed on as hints.

Coalescing (docs/redcap.md, "Coalescing"): one RecordRefresh row per project and record. The
first post creates it, due DET_QUIET_SECONDS later; each later post moves it to
DET_QUIET_SECONDS after itself, never past DET_MAX_WAIT_SECONDS after the first. One drain loop
(`refresh_drain`, a django-q2 task; one at a time, by a lease in the cache) claims the due rows
and hands each to a task of its own (`record_refresh_execute`), which reads the record, sends
`projects.signals.record_saved` once, and deletes the row, or sets it waiting again when more
saves came during the read. The 15-minute participant sync stays the safety net: a post
refused, lost or failed is caught up there.
"""

from __future__ import annotations

import datetime
import logging
import re
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Min
from django.urls import reverse
from django.utils import timezone
from django_q.tasks import async_task

from projects.access import project_role_require
from projects.models import (
    DataEntryTrigger,
    FieldMapping,
    Membership,
    Participant,
    Project,
    RecordRefresh,
    RedcapLink,
)
from projects.redcap import RedcapError
from projects.services import sync
from projects.signals import audit, record_saved

logger = logging.getLogger(__name__)
Waiting, Reading = RecordRefresh.Status.WAITING, RecordRefresh.Status.READING

LEASE_KEY = "projects:det-drain"
LEASE_SECONDS = 15  # renewed at every turn of the loop; a dead drain's lease lapses this soon
DRAIN_SECONDS = 40  # a drain hands over to a fresh task well before q2's timeout (60 s)
NAP_SECONDS = 0.25  # the longest a drain sleeps between two looks at the waiting rows
CLAIM_BATCH = 50
LOST_READ = 180  # seconds: a row still "reading" after this lost its task (its worker died)
RETRY_SECONDS = 5  # one more try after a failed read; after that the 15-minute sync reads it
MAX_ATTEMPTS = 2
MAX_SAVES = 20  # distinct (instrument, event, instance) hints kept per waiting row

# REDCap's unique names of instruments and events: lower-case letters, digits and underscores.
NAME = re.compile(r"[a-z][a-z0-9_]{0,99}")
INSTANCE = re.compile(r"[1-9][0-9]{0,5}")
RECORD_MAX = 100  # Participant.record_id
ACCEPTED_STATUSES = (Project.Status.ACTIVE, Project.Status.PAUSED)  # as the 15-minute sync


# --- The address ---------------------------------------------------------------------------
def _assert_owner(project: Project, actor) -> None:
    project_role_require(
        user=actor,
        project=project,
        min_role=Membership.Role.OWNER,
        doing="change its Data Entry Trigger",
    )


def _new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits, as the provider webhooks' paths


def det_address(trigger: DataEntryTrigger) -> str:
    """The address to paste into REDCap. It holds the secret: show it to owners only."""
    return settings.SITE_URL + reverse("redcap-det", args=[trigger.secret])


def data_entry_trigger_enable(*, project: Project, actor) -> DataEntryTrigger:
    """Give the project a Data Entry Trigger address (or return the one it has)."""
    _assert_owner(project, actor)
    with transaction.atomic():
        trigger, created = DataEntryTrigger.objects.get_or_create(
            project=project, defaults={"secret": _new_secret(), "created_by": actor}
        )
        if created:
            audit.send(
                sender=DataEntryTrigger,
                actor=actor,
                action="data_entry_trigger.created",
                obj=project,
                message="A REDCap Data Entry Trigger address was created.",
            )
    return trigger


def data_entry_trigger_rotate(*, project: Project, actor) -> DataEntryTrigger:
    """A new address; the old one stops working at once (REDCap must be given the new one)."""
    _assert_owner(project, actor)
    with transaction.atomic():
        trigger = (
            DataEntryTrigger.objects.select_for_update(no_key=True).filter(project=project).first()
        )
        if trigger is None:
            raise ValidationError("This project has no Data Entry Trigger address to replace.")
        trigger.secret = _new_secret()
        trigger.rotated_at = timezone.now()
        trigger.save(update_fields=["secret", "rotated_at"])
        audit.send(
            sender=DataEntryTrigger,
            actor=actor,
            action="data_entry_trigger.rotated",
            obj=project,
            message="The REDCap Data Entry Trigger address was replaced; the old one no "
            "longer works.",
        )
    return trigger


def data_entry_trigger_disable(*, project: Project, actor) -> None:
    """Remove the address: REDCap's posts to it are refused (404) from now on."""
    _assert_owner(project, actor)
    with transaction.atomic():
        deleted, _ = DataEntryTrigger.objects.filter(project=project).delete()
        if deleted:
            audit.send(
                sender=DataEntryTrigger,
                actor=actor,
                action="data_entry_trigger.removed",
                obj=project,
                message="The REDCap Data Entry Trigger address was removed.",
            )


# --- A post --------------------------------------------------------------------------------
class DetPostError(ValueError):
    """A post that is not a Data Entry Trigger REDCap would send; the message says why."""


@dataclass(frozen=True)
class DetPost:
    """What a post names (nothing it says about values): a hint, checked before use."""

    project_id: int
    record: str
    instrument: str
    event: str
    repeat_instance: int | None

    @property
    def save(self) -> list:
        return [self.instrument, self.event, self.repeat_instance]


def _one(data: Mapping[str, Sequence[str]], name: str, *, required: bool = False) -> str:
    values = list(data.get(name, ()))
    if len(values) > 1:
        raise DetPostError(f"“{name}” is given {len(values)} times; REDCap sends it once.")
    value = values[0].strip() if values else ""
    if required and not value:
        raise DetPostError(f"“{name}” is missing: REDCap always sends it.")
    if "\ufffd" in value:
        raise DetPostError(f"“{name}” is not valid UTF-8 text.")
    return value


def det_post_parse(data: Mapping[str, Sequence[str]]) -> DetPost:
    """Read the fields StudyText uses from a post's form fields (each a list of values).
    Raises DetPostError with a message naming the field. Other fields (`username`,
    `<instrument>_complete`, `redcap_url`, `project_url`, data access group) are ignored: the
    values that matter are read from REDCap, and the URLs are never called."""
    project_id = _one(data, "project_id", required=True)
    if not project_id.isascii() or not project_id.isdigit() or len(project_id) > 9:
        raise DetPostError("“project_id” must be REDCap's project id, a whole number.")
    record = _one(data, "record", required=True)
    if len(record) > RECORD_MAX:
        raise DetPostError(f"“record” is longer than {RECORD_MAX} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in record):
        raise DetPostError("“record” holds control characters.")
    instrument = _one(data, "instrument", required=True)
    if not NAME.fullmatch(instrument):
        raise DetPostError(
            "“instrument” must be an instrument's unique name (lower-case letters, digits "
            "and underscores)."
        )
    event = _one(data, "redcap_event_name")
    if event and not NAME.fullmatch(event):
        raise DetPostError("“redcap_event_name” must be an event's unique name.")
    instance = _one(data, "redcap_repeat_instance")
    if instance and not INSTANCE.fullmatch(instance):
        raise DetPostError("“redcap_repeat_instance” must be a whole number from 1.")
    repeat_instrument = _one(data, "redcap_repeat_instrument")
    if repeat_instrument and not NAME.fullmatch(repeat_instrument):
        raise DetPostError("“redcap_repeat_instrument” must be an instrument's unique name.")
    return DetPost(
        project_id=int(project_id),
        record=record,
        instrument=instrument,
        event=event,
        repeat_instance=int(instance) if instance else None,
    )


def det_refusal(project: Project) -> str | None:
    """Why the project's records are not read on a post now (None: they are)."""
    if project.status not in ACCEPTED_STATUSES:
        return (
            f"This StudyText project is {project.get_status_display().lower()}: its records are "
            "not read."
        )
    if not RedcapLink.objects.filter(project=project).exists():
        return "This StudyText project has no REDCap API token linked, so it cannot read records."
    if not FieldMapping.objects.filter(project=project).exists():
        return "This StudyText project's REDCap fields are not mapped yet."
    return None


def det_post_accept(*, trigger: DataEntryTrigger, post: DetPost) -> RecordRefresh:
    """Note that the post's record must be read again (folding it into a waiting read of the
    same record), and make sure a drain runs. Cheap: no REDCap call, a few queries."""
    now = timezone.now()
    quiet = datetime.timedelta(seconds=settings.DET_QUIET_SECONDS)
    longest = datetime.timedelta(seconds=settings.DET_MAX_WAIT_SECONDS)
    project = trigger.project
    created = False
    with transaction.atomic():
        row = (
            RecordRefresh.objects.select_for_update(no_key=True)
            .filter(project=project, record_id=post.record)
            .first()
        )
        if row is None:
            try:
                with transaction.atomic():
                    row = RecordRefresh.objects.create(
                        project=project,
                        record_id=post.record,
                        due_at=now + quiet,
                        first_post_at=now,
                        last_post_at=now,
                        saves=[post.save],
                    )
                created = True
            except IntegrityError:  # another post of the same record got there first
                row = RecordRefresh.objects.select_for_update(no_key=True).get(
                    project=project, record_id=post.record
                )
        if not created:
            first = row.first_post_at or now
            row.first_post_at = first
            row.due_at = min(now + quiet, first + longest)
            row.last_post_at = now
            row.posts += 1
            if post.save not in row.saves and len(row.saves) < MAX_SAVES:
                row.saves = [*row.saves, post.save]
            elif post.save in row.saves:  # the latest save last: the signal names it
                row.saves = [s for s in row.saves if s != post.save] + [post.save]
            row.save(update_fields=["first_post_at", "due_at", "last_post_at", "posts", "saves"])
        # One write a minute at most, not one a post: the page shows "last post received".
        DataEntryTrigger.objects.filter(pk=trigger.pk).exclude(
            last_post_at__gt=now - datetime.timedelta(seconds=60)
        ).update(last_post_at=now)
        transaction.on_commit(refresh_drain_kick)
    return row


# --- The drain -----------------------------------------------------------------------------
def refresh_drain_kick() -> None:
    """Start a drain unless one runs (it will see the new row)."""
    if cache.get(LEASE_KEY) is None:
        async_task("projects.tasks.record_refresh_drain", task_name="record-refresh-drain")


def refresh_drain_kick_if_waiting() -> None:
    """For the 15-minute schedule: rows whose drain or read was lost are not left behind."""
    if RecordRefresh.objects.exists():
        refresh_drain_kick()


def _release(token: str) -> None:
    if cache.get(LEASE_KEY) == token:
        cache.delete(LEASE_KEY)


def _requeue_lost_reads(now) -> None:
    lost = RecordRefresh.objects.filter(
        status=Reading, claimed_at__lt=now - datetime.timedelta(seconds=LOST_READ)
    )
    for row in lost:
        merged = [*row.reading_saves, *[s for s in row.saves if s not in row.reading_saves]]
        RecordRefresh.objects.filter(pk=row.pk, status=Reading, claimed_at=row.claimed_at).update(
            status=Waiting, due_at=now, saves=merged, reading_saves=[], claimed_at=None
        )


def _claim_due(now) -> list[int]:
    due = RecordRefresh.objects.filter(status=Waiting, due_at__lte=now).order_by("due_at")
    claimed = []
    for pk in due.values_list("pk", flat=True)[:CLAIM_BATCH]:
        if RecordRefresh.objects.filter(pk=pk, status=Waiting, due_at__lte=now).update(
            status=Reading,
            claimed_at=now,
            reading_saves=F("saves"),
            saves=[],
            first_post_at=None,
        ):
            claimed.append(pk)
    return claimed


def refresh_drain(*, sleep=time.sleep) -> int:
    """Hand every due row to its own read task, sleeping until the next is due, until no row
    waits (or DRAIN_SECONDS have passed: then a fresh drain task takes over). One drain at a
    time; a second one returns at once. Returns how many reads it handed out."""
    token = uuid.uuid4().hex
    if not cache.add(LEASE_KEY, token, timeout=LEASE_SECONDS):
        return 0
    handed = 0
    deadline = time.monotonic() + DRAIN_SECONDS
    try:
        _requeue_lost_reads(timezone.now())
        while True:
            now = timezone.now()
            for pk in _claim_due(now):
                async_task("projects.tasks.record_refresh", pk, task_name=f"record-refresh-{pk}")
                handed += 1
            next_due = RecordRefresh.objects.filter(status=Waiting).aggregate(d=Min("due_at"))["d"]
            if next_due is None:
                _release(token)
                # A post that saw the lease just before it was released started no drain: look
                # once more, and carry on if its row is there (and no other drain took it).
                if not RecordRefresh.objects.filter(status=Waiting).exists():
                    return handed
                if not cache.add(LEASE_KEY, token, timeout=LEASE_SECONDS):
                    return handed
                continue
            if time.monotonic() >= deadline:
                break
            wait = (next_due - timezone.now()).total_seconds()
            sleep(min(max(wait, 0.01), NAP_SECONDS))
            cache.touch(LEASE_KEY, LEASE_SECONDS)
    finally:
        _release(token)
    refresh_drain_kick()  # rows still wait: a fresh task carries on
    return handed


# --- One read ------------------------------------------------------------------------------
def record_refresh_execute(*, refresh_id: int) -> Participant | None:
    """Read the claimed row's record from REDCap, update its participant, send `record_saved`
    (after the commit), and finish the row. A duplicate task finds it no longer claimed."""
    row = (
        RecordRefresh.objects.select_related("project", "project__redcap_instance")
        .filter(pk=refresh_id, status=Reading)
        .first()
    )
    if row is None:
        return None
    project = row.project
    if det_refusal(project) is not None:  # unlinked, unmapped or archived since the post
        RecordRefresh.objects.filter(pk=row.pk).delete()
        return None
    try:
        participant = sync.record_sync(project=project, record_id=row.record_id)
    except (RedcapError, ValidationError) as exc:
        message = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        _read_failed(row, message)
        return None
    now = timezone.now()
    saves = [tuple(s) for s in row.reading_saves]
    with transaction.atomic():
        current = RecordRefresh.objects.select_for_update(no_key=True).filter(pk=row.pk).first()
        if current is not None and current.saves:
            # Saved again while this read ran: read again once those saves settle.
            current.status = Waiting
            current.reading_saves = []
            current.claimed_at = None
            current.attempts = 0
            current.save(update_fields=["status", "reading_saves", "claimed_at", "attempts"])
        elif current is not None:
            current.delete()
        DataEntryTrigger.objects.filter(project=project).update(last_read_at=now, last_error="")
        if participant is not None:
            ids = (project.pk, participant.pk, row.record_id)
            transaction.on_commit(lambda: _announce(*ids, saves))
    return participant


def _announce(project_id: int, participant_id: int, record_id: str, saves: list[tuple]) -> None:
    instrument, event, repeat_instance = saves[-1] if saves else ("", "", None)
    results = record_saved.send_robust(
        sender=Participant,
        project_id=project_id,
        participant_id=participant_id,
        record_id=record_id,
        instrument=instrument,
        event=event,
        repeat_instance=repeat_instance,
        saves=tuple(saves),
    )
    for receiver, result in results:
        if isinstance(result, Exception):
            logger.error(
                "A receiver of record_saved (%s) failed for project %s.",
                getattr(receiver, "__qualname__", receiver),
                project_id,
                exc_info=result,
            )


def _read_failed(row: RecordRefresh, message: str) -> None:
    now = timezone.now()
    logger.warning(
        "Project %s: a record saved in REDCap could not be read (%s).", row.project_id, message
    )
    with transaction.atomic():
        current = RecordRefresh.objects.select_for_update(no_key=True).filter(pk=row.pk).first()
        if current is not None:
            attempts = current.attempts + 1
            merged = [
                *current.reading_saves,
                *[s for s in current.saves if s not in current.reading_saves],
            ]
            if attempts >= MAX_ATTEMPTS:
                current.delete()  # the 15-minute sync reads it
            else:
                RecordRefresh.objects.filter(pk=current.pk).update(
                    status=Waiting,
                    attempts=attempts,
                    due_at=max(current.due_at, now + datetime.timedelta(seconds=RETRY_SECONDS)),
                    saves=merged,
                    reading_saves=[],
                    claimed_at=None,
                )
        DataEntryTrigger.objects.filter(project_id=row.project_id).update(
            last_error=message[:1000], last_error_at=now
        )
