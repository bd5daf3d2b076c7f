"""Releasing, claiming, sending and recording one text, by the sending contract (docs/sending.md).

prepare -> claim (queued -> sending + quota, one transaction) -> attempt row -> ONE provider call
-> record. Failures are classified by the gateway; this module decides what each class means for
the message, the participant, the quota and the provider link.
"""

import datetime
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, models, transaction
from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from billing.services import quota_release, quota_reserve, quota_units_for
from messaging import piping, segments
from messaging.gateways import GatewayError, Reason, SendResult, backoff_delay, get_gateway
from messaging.models import Attempt, Message, MessageRule, OptOut
from messaging.scheduling import ScheduleSpec, SendWindow, occurrences_between, waiting_note, zone
from messaging.signals import audit
from projects.models import FieldMapping, Participant, Project, ProviderLink
from projects.redcap import RedcapError
from projects.services.links import provider_link_pause, redcap_client_for
from projects.services.participants import participant_optout_write_back_request

logger = logging.getLogger(__name__)
Status = Message.Status
# Texts that never reached the provider are retried with capped, jittered backoff (seconds)
# for SENDER_RETRY_MINUTES from their first try (docs/sending.md, "Retries").
RETRY_BASE = 1.0
RETRY_CAP = 60.0
RECONCILE_AFTER = datetime.timedelta(minutes=2)
RECONCILE_GIVE_UP = datetime.timedelta(minutes=30)
STUCK_SENDING_AFTER = datetime.timedelta(minutes=5)
STUCK_WHILE_SENDER_RUNS = datetime.timedelta(minutes=15)
REDCAP_RETRY = datetime.timedelta(minutes=2)
RECONCILE_BUDGET_SECONDS = 20.0
RESENT_NOTE = "The provider confirmed it never received this text; it goes out again (once)."
# What may be claimed and handed to the provider: a text whose project is active, whose provider
# link is running, and whose rule (none for an ad-hoc text) is neither paused nor archived. The
# claim's conditional update checks it, and so does the update that writes the attempt rows just
# before the calls: a pause stops every text not yet handed to the provider, even those the
# sender already holds in memory (prepared, or claimed ahead of their turn).
RELEASABLE = Q(project__status=Project.Status.ACTIVE, project__provider_link__is_paused=False) & ~Q(
    rule__status__in=[MessageRule.Status.PAUSED, MessageRule.Status.ARCHIVED]
)


@dataclass
class Prepared:
    """A message ready to claim: rendered text and its cost."""

    message: Message
    body: str
    count: segments.SegmentCount
    units: int


class ReleaseData:
    """What one project's texts need from REDCap at release, asked once per batch.

    Planned from the batch's messages (`add`), connected on the sender's own thread (`connect`
    reads the token: the database), then fetched (`fetch`: HTTP only, no database), so the
    sender loop can fetch on a helper thread while it keeps pacing the other links:

    - one participant list per (instrument, event) the texts need: survey links, and completion
      for "stop when complete";
    - one record export (`records`) of the batch's records whose texts pipe participant fields,
      with only the fields they pipe (first name, mapped dates), in the mapped event: the text
      says what REDCap holds when it goes out, never the synced copy;
    - a survey-queue link per record the participant list did not give one for.

    Nothing is asked when no text needs it (a body without piping costs no REDCap call). A
    failure is remembered for the batch (a REDCap that is down is asked once, not once per
    text); the accessors raise it, and `prepare` defers each text it concerns. An accessor
    asked about something the plan did not hold fetches it there and then.
    """

    def __init__(self, project: Project, mapping: FieldMapping | None, messages=()) -> None:
        self.project = project
        self.mapping = mapping
        self.client = None
        self.error: RedcapError | None = None  # no client: the token is not linked
        self.surveys_wanted: set[tuple[str, str]] = set()
        self.queue_links_wanted: dict[str, tuple[str, str]] = {}
        self.record_ids: list[str] = []
        self.fields: list[str] = []
        self._surveys: dict[tuple[str, str], dict[str, dict] | RedcapError] = {}
        self._records: dict[str, dict] | RedcapError | None = None
        self._queue_links: dict[str, str | RedcapError] = {}
        self.fetched = False
        for message in messages:
            self.add(message)

    @classmethod
    def for_batch(
        cls, messages: list[Message], mappings: dict[int, FieldMapping | None]
    ) -> dict[int, "ReleaseData"]:
        """One per project of the batch, planned from its messages."""
        by_project: dict[int, ReleaseData] = {}
        for message in messages:
            data = by_project.get(message.project_id)
            if data is None:
                data = by_project[message.project_id] = cls(
                    message.project, mappings.get(message.project_id)
                )
            data.add(message)
        return by_project

    # --- the plan ------------------------------------------------------------------------------
    def add(self, message: Message) -> None:
        participant = message.participant
        if not (participant.in_redcap and participant.consented and participant.phone_encrypted):
            return  # skipped before anything is asked (minimum necessary)
        if participant.withdrawn or participant.redcap_opted_out:
            return
        if participant.issue or participant.number_invalid:
            return
        rule = message.rule
        body = rule.body if rule is not None else message.adhoc_body
        used = set(piping.tokens(body))
        record = participant.record_id
        if rule is not None and rule.instrument:
            if rule.stop_when_complete or used & piping.SURVEY_TOKENS:
                self.surveys_wanted.add((rule.instrument, rule.event))
            if "survey-queue-link" in used:
                self.queue_links_wanted.setdefault(record, (rule.instrument, rule.event))
        fields = piping.record_fields(body, self.mapping)
        if fields:
            if record not in self.record_ids:
                self.record_ids.append(record)
            self.fields += [f for f in fields if f not in self.fields]

    @property
    def needed(self) -> bool:
        return bool(self.surveys_wanted or self.record_ids)

    # --- asking REDCap -------------------------------------------------------------------------
    def connect(self) -> None:
        """The REDCap client (the token comes from the database: call this on the DB thread)."""
        if self.client is not None or self.error is not None:
            return
        try:
            self.client = redcap_client_for(self.project)
        except ValidationError as exc:  # no token linked
            self.error = RedcapError(" ".join(exc.messages))
        except RedcapError as exc:  # e.g. an API URL that is no longer allowed
            self.error = exc
        except Exception:  # noqa: BLE001 - a bug here must not stop the sender loop
            logger.exception("No REDCap client for project %s.", self.project.pk)
            self.error = RedcapError("StudyText could not read the project's REDCap link.")

    def fetch(self) -> None:
        """Everything planned, from REDCap (HTTP only: safe on any thread after `connect`)."""
        if self.fetched:
            return
        for key in sorted(self.surveys_wanted):
            if key not in self._surveys:
                self._surveys[key] = self._ask(self._survey_list, *key)
        if self.record_ids and self._records is None:
            self._records = self._ask(self._export, self.record_ids, self.fields)
        failed = None
        for record, key in self.queue_links_wanted.items():
            survey = self._surveys.get(key)
            if isinstance(survey, RedcapError):
                continue  # the text is deferred anyway
            if survey and survey.get(record, {}).get("survey_queue_link"):
                continue
            # Once REDCap fails, it is not asked again for every other record.
            self._queue_links[record] = failed or self._ask(self._queue_link, record)
            if isinstance(self._queue_links[record], RedcapError):
                failed = self._queue_links[record]
        self.fetched = True

    def failure(self) -> RedcapError | None:
        """The first REDCap failure of the fetch, if any (REDCap down, slow, refusing)."""
        answers = [
            self.error,
            *self._surveys.values(),
            self._records,
            *self._queue_links.values(),
        ]
        return next((a for a in answers if isinstance(a, RedcapError)), None)

    def _ask(self, call, *args):
        if self.error is not None:
            return self.error
        if self.client is None:
            raise RuntimeError("ReleaseData.connect() must run before fetch().")
        try:
            return call(*args)
        except RedcapError as exc:
            return exc

    def _survey_list(self, instrument: str, event: str) -> dict[str, dict]:
        rows = self.client.participant_list(instrument=instrument, event=event or None)
        return {str(r.get("record", "")): r for r in rows}

    def _export(self, record_ids: list[str], fields: list[str]) -> dict[str, dict]:
        events = [self.mapping.event] if self.mapping is not None and self.mapping.event else None
        rows = self.client.records(records=record_ids, fields=fields, events=events)
        found: dict[str, dict] = {}
        for row in rows:
            if row.get("redcap_repeat_instrument"):
                continue  # the mapped fields live on the record's first, non-repeating row
            # REDCap always exports the record-id field, and first: no data dictionary needed
            # to know its name.
            found.setdefault(str(next(iter(row.values()), "")), row)
        return found

    def _queue_link(self, record: str) -> str:
        return self.client.survey_queue_link(record=record)

    def _ensure(self) -> None:
        if not self.fetched:
            self.connect()
            self.fetch()

    # --- what prepare reads (raise RedcapError when REDCap failed) -----------------------------
    def survey(self, instrument: str, event: str) -> dict[str, dict]:
        self._ensure()
        key = (instrument, event)
        if key not in self._surveys:  # not planned: ask now
            self.surveys_wanted.add(key)
            self._surveys[key] = self._ask(self._survey_list, *key)
        return _answer(self._surveys[key])

    def survey_queue_link(self, record: str, instrument: str, event: str) -> str:
        link = self.survey(instrument, event).get(record, {}).get("survey_queue_link", "")
        if link:
            return link
        if record not in self._queue_links:
            self._queue_links[record] = self._ask(self._queue_link, record)
        return _answer(self._queue_links[record])

    def record(self, record_id: str, fields: list[str]) -> dict | None:
        """The record's row as REDCap exports it now, or None when REDCap has no such record."""
        self._ensure()
        if record_id not in self.record_ids or not set(fields) <= set(self.fields):
            # Not planned: ask for this record alone.
            found = _answer(self._ask(self._export, [record_id], fields))
            return found.get(record_id)
        return _answer(self._records).get(record_id)


def _answer(value):
    if isinstance(value, RedcapError):
        raise value
    return value


def _skip(message: Message, reason: str) -> None:
    Message.objects.filter(pk=message.pk, status=Status.QUEUED).update(
        status=Status.SKIPPED, error=reason, updated_at=timezone.now()
    )


def defer(message: Message, until: datetime.datetime, note: str = "") -> None:
    Message.objects.filter(pk=message.pk, status=Status.QUEUED).update(
        not_before=until, error=note, updated_at=timezone.now()
    )


def sends_so_far(
    messages: list[Message], *, pending: Iterable[Message] = ()
) -> dict[tuple[int, int], int]:
    """Texts already sent per (participant, rule), for "stop after N sends" — one query.

    `pending`: texts prepared but still queued (the sender's backlog); they will go out, so they
    count too. `prepare` adds each text it lets through, so two texts of one rule for one
    participant in the same batch cannot both pass the limit."""
    pairs = [(m.participant_id, m.rule_id) for m in messages if m.rule_id and m.rule.max_sends]
    if not pairs:
        return {}
    rows = (
        Message.objects.filter(
            participant_id__in={p for p, _ in pairs},
            rule_id__in={r for _, r in pairs},
            status__in=[Status.SENDING, Status.UNKNOWN, Status.SENT, Status.DELIVERED],
        )
        .values("participant_id", "rule_id")
        .annotate(n=Count("id"))
    )
    counts = {(r["participant_id"], r["rule_id"]): r["n"] for r in rows}
    wanted = set(pairs)
    for message in pending:
        key = (message.participant_id, message.rule_id)
        if key in wanted:
            counts[key] = counts.get(key, 0) + 1
    return counts


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def suppressed_fingerprints(messages: list[Message]) -> set[tuple[int, str]]:
    fingerprints = {m.participant.phone_fingerprint for m in messages}
    return set(
        OptOut.objects.filter(
            project_id__in={m.project_id for m in messages},
            phone_fingerprint__in=fingerprints,
            revoked_at__isnull=True,
        ).values_list("project_id", "phone_fingerprint")
    )


def prepare(
    message: Message,
    *,
    now: datetime.datetime,
    redcap: ReleaseData,
    sent_counts: dict,
    suppressed: set,
) -> Prepared | None:
    """Check eligibility at release time and render the text. None: skipped or deferred.

    `redcap` is the ReleaseData of the message's project (its field mapping, and what REDCap
    holds now)."""
    project, participant, rule = message.project, message.participant, message.rule
    if project.status != Project.Status.ACTIVE:
        return None  # stays queued; a paused project releases nothing
    if rule is not None and rule.status in (MessageRule.Status.PAUSED, MessageRule.Status.ARCHIVED):
        return None
    if (project.pk, participant.phone_fingerprint) in suppressed:
        _skip(message, "The participant opted out (texted STOP).")
        return None
    if not participant.in_redcap:
        _skip(message, "The record is gone from REDCap.")
        return None
    if participant.withdrawn:
        _skip(message, "The participant has withdrawn.")
        return None
    if participant.redcap_opted_out:
        _skip(message, "The participant is marked as opted out in REDCap.")
        return None
    if not participant.consented:
        _skip(message, "The participant has not consented to texts.")
        return None
    if participant.issue or participant.number_invalid or not participant.phone_encrypted:
        _skip(message, "The participant has no usable phone number.")
        return None
    tz = zone(participant.time_zone or project.time_zone)
    window = SendWindow.for_project(project)
    # A HELP reply answers a text the participant has just sent: it ignores the sending hours.
    if message.kind != "help" and not window.allows(now, tz):
        opening = window.next_opening(now, tz)
        defer(message, opening, waiting_note(opening, tz))
        return None
    if rule is not None:
        if rule.max_sends and sent_counts.get((participant.pk, rule.pk), 0) >= rule.max_sends:
            _skip(message, f"Already texted {_times(rule.max_sends)} by this message.")
            return None
        if rule.schedule == MessageRule.Schedule.RELATIVE and message.send_id is None:
            spec = ScheduleSpec.from_rule(rule)
            still = occurrences_between(
                spec,
                tz=tz,
                start=message.due_at - datetime.timedelta(seconds=1),
                end=message.due_at,
                dates=participant.dates,
            )
            if not any(o.key == message.occurrence for o in still):
                _skip(message, f"The date in REDCap ({rule.date_field}) changed.")
                return None
    mapping = redcap.mapping
    body_template = rule.body if rule is not None else message.adhoc_body
    used = set(piping.tokens(body_template))
    values = {"record_id": participant.record_id}
    survey_link = queue_link = ""
    try:
        if rule is not None and rule.instrument:
            if rule.stop_when_complete or used & piping.SURVEY_TOKENS:
                survey = redcap.survey(rule.instrument, rule.event).get(participant.record_id, {})
                if rule.stop_when_complete and str(survey.get("response_status", "")) == "2":
                    _skip(message, "The participant already completed the survey.")
                    return None
                survey_link = survey.get("survey_link", "")
                if "survey-link" in used and not survey_link:
                    _skip(message, "REDCap has no survey link for this record.")
                    return None
            if "survey-queue-link" in used:
                queue_link = redcap.survey_queue_link(
                    participant.record_id, rule.instrument, rule.event
                )
        fields = piping.record_fields(body_template, mapping)
        if fields:
            # The piped values are what REDCap holds now; the synced copy is for the preview.
            row = redcap.record(participant.record_id, fields)
            if row is None:
                _skip(message, "The record is gone from REDCap.")
                return None
            values = piping.record_values(participant.record_id, row, mapping)
    except RedcapError as exc:
        # Fail safe: without what REDCap holds now (completion, links, piped values), do not
        # text; try again shortly.
        defer(message, now + REDCAP_RETRY, f"REDCap could not be reached: {exc}")
        return None
    context = piping.PipingContext(
        values=values, survey_link=survey_link, survey_queue_link=queue_link
    )
    body = piping.render(body_template, context)
    if len(body) > piping.MAX_BODY_CHARS:
        Message.objects.filter(pk=message.pk, status=Status.QUEUED).update(
            status=Status.FAILED,
            error=f"After piping the text has {len(body):,} characters; the limit is 1,600.",
            updated_at=now,
        )
        return None
    count = segments.count(body)
    if rule is not None and rule.max_sends:
        # This one goes out: a later text of the same batch for the same pair counts it.
        key = (participant.pk, rule.pk)
        sent_counts[key] = sent_counts.get(key, 0) + 1
    units = quota_units_for(messages=1, segments=count.segments)  # as billing counts them
    return Prepared(message=message, body=body, count=count, units=units)


HELD_NOTE = "Held: the account's monthly quota is used up. It goes out when credits arrive."


def claim_batch(batch: list[Prepared], *, provider: str) -> tuple[list[Prepared], list[Prepared]]:
    """queued -> sending for messages of ONE project, and their quota, in one transaction.

    Returns (claimed, held): claimed rows are `sending` with their units reserved; held rows did
    not fit the quota (held, never dropped; the batch is taken in order, so the first that does
    not fit and every later one wait). Rows another sender took, that were cancelled since they
    were read, or whose rule, project or provider link was paused since (RELEASABLE), are in
    neither list. Cost: a handful of queries whatever the batch size.
    """
    if not batch:
        return [], []
    project = batch[0].message.project
    if any(p.message.project_id != project.pk for p in batch):
        raise ValueError("claim_batch takes the messages of one project.")
    now = timezone.now()
    with transaction.atomic():
        # Lock the rows still queued, in id order, skipping rows another sender is claiming
        # right now (PostgreSQL: no waiting on each other, so no deadlock between two claimers
        # of overlapping batches; SQLite: the IMMEDIATE transaction already serialises writers).
        # Only rows still releasable: a rule, project or link paused since the batch was read
        # claims nothing (the rows stay queued, and no quota is reserved for them). Only the
        # messages are locked (`of`), not the project, link or rule rows joined to check that.
        free = set(
            Message.objects.select_for_update(of=("self",), no_key=True, skip_locked=True)
            .filter(RELEASABLE, pk__in=[p.message.pk for p in batch], status=Status.QUEUED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        batch = [p for p in batch if p.message.pk in free]
        if not batch:
            return [], []
        if quota_reserve(project=project, units=sum(p.units for p in batch)):
            fits = batch
        else:
            fits = []
            for prepared in batch:
                if not quota_reserve(project=project, units=prepared.units):
                    break
                fits.append(prepared)
        held = batch[len(fits) :]
        if fits:
            ids = [p.message.pk for p in fits]
            Message.objects.filter(pk__in=ids, status=Status.QUEUED).update(
                status=Status.SENDING,
                body=_per_row("id", {p.message.pk: p.body for p in fits}, models.TextField()),
                segments=_per_row(
                    "id", {p.message.pk: p.count.segments for p in fits}, models.IntegerField()
                ),
                encoding=_per_row(
                    "id", {p.message.pk: p.count.encoding for p in fits}, models.CharField()
                ),
                units=_per_row("id", {p.message.pk: p.units for p in fits}, models.IntegerField()),
                reserved_at=now,
                provider=provider,
                updated_at=now,
            )
        if held:
            Message.objects.filter(
                pk__in=[p.message.pk for p in held], status=Status.QUEUED
            ).update(status=Status.HELD, units=0, error=HELD_NOTE, updated_at=now)
    for prepared in fits:
        message = prepared.message
        message.status = Status.SENDING
        message.body = prepared.body
        message.segments = prepared.count.segments
        message.encoding = prepared.count.encoding
        message.units = prepared.units
        message.reserved_at = now
        message.provider = provider
        message.updated_at = now
    for prepared in held:
        prepared.message.status = Status.HELD
        prepared.message.units = 0
    return fits, held


def _per_row(key: str, values: dict[int, object], output_field) -> RawSQL:
    """`CASE <key> WHEN <id> THEN <value> ... END`: one value per row in a single UPDATE.

    Plain SQL that SQLite and PostgreSQL both read; ids and integers are written as integer
    literals (they are ours, never input), text goes as a parameter. Django's
    Case(When(pk=...)) says the same but costs ~0.5 ms per row to build, which the sender,
    recording hundreds of texts a second on one thread, cannot afford.
    """
    parts, params = [], []
    for pk, value in values.items():
        if isinstance(value, int):
            parts.append(f"WHEN {int(pk)} THEN {int(value)}")
        else:
            parts.append(f"WHEN {int(pk)} THEN %s")
            params.append(value)
    return RawSQL(  # noqa: S611 - text goes as parameters; ids and integers are int()
        f"CASE {connection.ops.quote_name(key)} {' '.join(parts)} END",
        params,
        output_field=output_field,
    )


def unclaim(batch: list[Prepared]) -> int:
    """Give back claimed messages that were never handed to the provider: sending -> queued,
    their quota released. (The sender stops with rows claimed ahead of their turn.)"""
    return _requeue_claimed([p.message for p in batch])


def _requeue_claimed(
    messages: list[Message],
    *,
    status: str = Status.QUEUED,
    error: str | None = None,
    until: dict[int, tuple[datetime.datetime, str]] | None = None,
) -> int:
    """sending -> queued (or `status`) for these rows under our claims, when no call was started
    for them, and their units released. Rows the sweep or another sender took since are left
    alone. `until`: per row, when it may go again and the note saying so."""
    by_project: dict[int, list[Message]] = {}
    for message in messages:
        by_project.setdefault(message.project_id, []).append(message)
    returned = 0
    now = timezone.now()
    for group in by_project.values():
        with transaction.atomic():
            ids = set(
                Message.objects.select_for_update(no_key=True)
                .filter(_claimed_by_us(group), status=Status.SENDING)
                .order_by("pk")
                .exclude(attempt_log__outcome=Attempt.Outcome.STARTED)
                .values_list("pk", flat=True)
            )
            if not ids:
                continue
            update = {"status": status, "units": 0, "updated_at": now}
            if error is not None:
                update["error"] = error
            if until:
                adapt = connection.ops.adapt_datetimefield_value
                update["not_before"] = _per_row(
                    "id", {pk: adapt(until[pk][0]) for pk in ids}, models.DateTimeField()
                )
                update["error"] = _per_row(
                    "id", {pk: until[pk][1] for pk in ids}, models.TextField()
                )
            Message.objects.filter(pk__in=ids).update(**update)
            mine = [m for m in group if m.pk in ids]
            for reserved_at, units in _units_by_reservation(mine).items():
                quota_release(project=mine[0].project, units=units, reserved_at=reserved_at)
            for message in mine:
                message.status = status
                message.units = 0
            returned += len(ids)
    return returned


def _claimed_by_us(messages: list[Message]) -> Q:
    """These rows under the claims we made (a claim stamps `reserved_at`): a row requeued and
    claimed again by another sender since has another stamp."""
    claims: dict = {}
    for message in messages:
        claims.setdefault(message.reserved_at, []).append(message.pk)
    mine = Q(pk__in=[])
    for reserved_at, ids in claims.items():
        mine |= Q(pk__in=ids, reserved_at=reserved_at)
    return mine


def _units_by_reservation(messages: list[Message]) -> dict:
    units: dict = {}
    for message in messages:
        units[message.reserved_at] = units.get(message.reserved_at, 0) + message.units
    return units


def status_callback_url(link: ProviderLink) -> str | None:
    if link.provider != ProviderLink.Provider.TWILIO:
        return None
    return settings.SITE_URL + reverse("twilio-status", args=[link.webhook_secret])


@dataclass
class Outcome:
    status: str
    reason: Reason | None = None
    retry_after: float | None = None


@sensitive_variables()
def deliver(message: Message, link: ProviderLink, gateway) -> Outcome | None:
    """The ONE provider call for a claimed message, recorded before and after; None when it is
    not called (its rule, project or link was paused since the claim: it went back to the
    queue; or the row is no longer ours). A crash report shows no value of this frame or any
    below it (the number, the provider's credentials)."""
    if not attempts_start([message]):
        return None
    try:
        result: SendResult = gateway.send(
            to=message.participant.phone,
            body=message.body,
            status_callback=status_callback_url(link),
        )
    except GatewayError as exc:
        return record_failure(message, exc, link)
    return record_success(message, result)


def attempts_start(
    messages: list[Message], *, now: datetime.datetime | None = None
) -> list[Message]:
    """THE LAST GATE (docs/sending.md): write the attempt rows of claimed messages about to be
    handed to the provider, and return the ones that may be called.

    One conditional UPDATE decides, at the moment of the call, from what the database holds
    then, nothing decided at fill or claim being trusted: the row is still `sending` under THIS
    claim (its `reserved_at`: not swept, not claimed by another sender since); its rule, project
    and provider link are not paused (RELEASABLE); its participant is not on the suppression list,
    still consents, has not withdrawn and has a usable number (TEXTABLE_NOW); and the sending
    hours, as they stand in the database, are open now in the participant's zone (the hours
    and zones the window was computed from must be unchanged: `_hours_unchanged`). Only the
    rows it moved get attempt rows, in the same transaction, so no call starts for a text after
    an opt-out, a withdrawal, a pause or the close of the hours has committed.

    What fails the gate is given back with its quota released: an opted-out, withdrawn or
    unconsented participant's text is cancelled; a text whose hours closed waits for their
    next opening; a paused one goes back to the queue. An attempt row still `started` later
    means the call may have happened: never again. Each returned message carries
    `window_closes_at` (UTC; None for HELP, which ignores the hours): the pool thread does not
    call after it (sender._call).
    """
    if not messages:
        return []
    now = now or timezone.now()
    mine = _claimed_by_us(messages)
    closed: dict[int, datetime.datetime] = {}  # pk -> next opening of the sending hours
    for message in messages:
        message.window_closes_at = None
        if message.kind == "help":
            continue  # a HELP answer ignores the hours (it answers the participant at once)
        window, tz = _window_of(message)
        if window.allows(now, tz):
            message.window_closes_at = window.closes_after(now, tz)
        else:
            closed[message.pk] = window.next_opening(now, tz)
    open_ones = [m for m in messages if m.pk not in closed]
    with transaction.atomic():
        moved = 0
        if open_ones:
            moved = (
                Message.objects.filter(mine, RELEASABLE, TEXTABLE_NOW, status=Status.SENDING)
                .filter(_hours_unchanged(open_ones))
                .update(updated_at=now)
            )
        if moved != len(messages):
            ids = set(
                Message.objects.filter(mine, status=Status.SENDING, updated_at=now).values_list(
                    "pk", flat=True
                )
            )
            refused = [m for m in messages if m.pk not in ids]
            messages = [m for m in messages if m.pk in ids]
            _gate_refused(refused, closed, now)
        Attempt.objects.bulk_create([Attempt(message=m, started_at=now) for m in messages])
    for message in messages:
        message.updated_at = now
    return messages


def attempts_not_called(messages: list[Message]) -> int:
    """The pool thread did not call these (the participant's sending hours closed before the
    text's turn): their attempt rows go (no call was made), and they wait for the next opening,
    their quota released."""
    if not messages:
        return 0
    now = timezone.now()
    until = {}
    for message in messages:
        window, tz = _window_of(message)
        # Still open for a last moment, maybe: the next opening after this close.
        closes = window.closes_after(now, tz) if window.allows(now, tz) else now
        opening = window.next_opening(closes, tz)
        until[message.pk] = (opening, waiting_note(opening, tz))
    with transaction.atomic():
        Attempt.objects.filter(
            message__in=Message.objects.filter(_claimed_by_us(messages), status=Status.SENDING),
            outcome=Attempt.Outcome.STARTED,
        ).delete()
        return _requeue_claimed(messages, until=until)


# The participant may be texted now: consent held, not withdrawn, not opted out in REDCap or on
# the suppression list (STOP), a usable number. The last gate re-checks it (attempts_start).
TEXTABLE_NOW = Q(
    participant__consented=True,
    participant__withdrawn=False,
    participant__redcap_opted_out=False,
    participant__in_redcap=True,
    participant__number_invalid=False,
    participant__issue="",
) & ~Exists(
    OptOut.objects.filter(
        project_id=OuterRef("project_id"),
        phone_fingerprint=OuterRef("participant__phone_fingerprint"),
        revoked_at__isnull=True,
    )
)


def _window_of(message: Message) -> tuple[SendWindow, object]:
    project, participant = message.project, message.participant
    return SendWindow.for_project(project), zone(participant.time_zone or project.time_zone)


def _hours_unchanged(messages: list[Message]) -> Q:
    """The sending hours and zones each message's window was judged by are still the ones in the
    database (an administrator may have narrowed them since the sender read the project)."""
    groups: dict[tuple, list[int]] = {}
    for message in messages:
        project, participant = message.project, message.participant
        key = (
            project.pk,
            project.send_window_start,
            project.send_window_end,
            tuple(project.send_days),
            project.time_zone,
            participant.time_zone,
        )
        groups.setdefault(key, []).append(message.pk)
    condition = Q(pk__in=[])
    for (_, start, end, days, project_zone, participant_zone), ids in groups.items():
        condition |= Q(
            pk__in=ids,
            project__send_window_start=start,
            project__send_window_end=end,
            project__send_days=list(days),
            project__time_zone=project_zone,
            participant__time_zone=participant_zone,
        )
    return condition


def _gate_refused(refused: list[Message], closed: dict, now: datetime.datetime) -> None:
    """Give back what the last gate refused (only rows still ours: not swept, not claimed
    again), with its quota: cancelled when the participant may no longer be texted, waiting
    for the next opening when the hours closed, queued again otherwise (paused, or the hours
    changed: prepared afresh)."""
    if not refused:
        return
    untextable = set(
        Message.objects.filter(pk__in=[m.pk for m in refused])
        .exclude(TEXTABLE_NOW)
        .values_list("pk", flat=True)
    )
    cancel = [m for m in refused if m.pk in untextable]
    waiting = [m for m in refused if m.pk not in untextable and m.pk in closed]
    requeue = [m for m in refused if m.pk not in untextable and m.pk not in closed]
    _requeue_claimed(
        cancel,
        status=Status.CANCELLED,
        error="Cancelled just before sending: the participant opted out, withdrew or can no "
        "longer be texted.",
    )
    for message in waiting:
        window, tz = _window_of(message)
        message.not_before = closed[message.pk]
        message.error = waiting_note(closed[message.pk], tz)
    _requeue_claimed(waiting, until={m.pk: (m.not_before, m.error) for m in waiting})
    _requeue_claimed(requeue)


def record_success(message: Message, result: SendResult) -> Outcome:
    record_successes([(message, result)])
    return Outcome(Status.SENT)


def record_successes(items: list[tuple[Message, SendResult]]) -> None:
    """The provider accepted these: sent, and their attempts completed (one transaction, two
    UPDATEs whatever the number). A row the sweep already marked `unknown` becomes `sent` too."""
    if not items:
        return
    now = timezone.now()
    ids = [message.pk for message, _ in items]
    sids = {m.pk: r.provider_message_id[:64] for m, r in items}
    provider_ids = _per_row("id", sids, models.CharField())
    attempt_ids = _per_row("message_id", sids, models.CharField())
    with transaction.atomic():
        Message.objects.filter(pk__in=ids, status__in=[Status.SENDING, Status.UNKNOWN]).update(
            status=Status.SENT,
            provider_message_id=provider_ids,
            sent_at=now,
            attempts=F("attempts") + 1,
            error="",
            error_code="",
            updated_at=now,
        )
        Attempt.objects.filter(message_id__in=ids, outcome=Attempt.Outcome.STARTED).update(
            outcome=Attempt.Outcome.ACCEPTED, finished_at=now, provider_message_id=attempt_ids
        )
    for message, result in items:
        message.status = Status.SENT
        message.provider_message_id = result.provider_message_id[:64]


def record_failure(message: Message, exc: GatewayError, link: ProviderLink) -> Outcome:
    """Record a refused or unanswered call by its class (docs/sending.md, 5.). The status moves
    first, by a conditional UPDATE; the quota and the participant are touched only if it moved,
    so a row the sweep took over meanwhile is never released twice."""
    now = timezone.now()
    reason = exc.reason
    code = str(exc.code or exc.status_code or "")[:32]
    attempts = message.attempts + 1
    update = {"attempts": attempts, "error": exc.message, "error_code": code, "updated_at": now}
    outcome = Attempt.Outcome.FAILED
    release = False
    gave_up = False
    if reason.safe_to_retry or reason == Reason.BAD_CREDENTIALS:
        # The provider never took it: give the quota back; it goes out later. A short blip (a
        # refused connection, 429s) never fails a text: it is retried with capped, jittered
        # backoff for SENDER_RETRY_MINUTES from its first try (docs/sending.md).
        release = True
        update["units"] = 0
        if reason == Reason.BAD_CREDENTIALS or now - _first_try(message, now) < retry_period():
            delay = backoff_delay(
                attempts, base=RETRY_BASE, cap=RETRY_CAP, retry_after=exc.retry_after
            )
            update.update(status=Status.QUEUED, not_before=now + datetime.timedelta(seconds=delay))
            outcome = Attempt.Outcome.RETRY
        else:
            gave_up = True
            minutes = settings.SENDER_RETRY_MINUTES
            update.update(
                status=Status.FAILED,
                error=f"The provider could not be reached for {minutes} minutes "
                f"({attempts} tries): {exc.message}",
            )
    elif reason == Reason.AMBIGUOUS:
        update["status"] = Status.UNKNOWN  # may have gone out: reconcile, never resend blindly
        outcome = Attempt.Outcome.AMBIGUOUS
    else:
        release = True
        update.update(status=Status.FAILED, units=0)
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=Status.SENDING).update(**update)
        Attempt.objects.filter(message_id=message.pk, outcome=Attempt.Outcome.STARTED).update(
            outcome=outcome, finished_at=now, error=exc.message[:1000], error_code=code
        )
        if moved and release:
            quota_release(
                project=message.project, units=message.units, reserved_at=message.reserved_at
            )
        if moved and reason == Reason.INVALID_NUMBER:
            Participant.objects.filter(pk=message.participant_id).update(number_invalid=True)
        elif moved and reason == Reason.OPTED_OUT:
            opt_out_record(
                participant=message.participant,
                source=OptOut.Source.PROVIDER,
                detail=f"{link.get_provider_display()} reported the number unsubscribed ({code}).",
            )
        if reason.safe_to_retry:
            ProviderLink.objects.filter(pk=link.pk, unreachable_since__isnull=True).update(
                unreachable_since=now
            )
        if moved and gave_up:
            # The owners are told once per outage (the first text that gives up).
            first = ProviderLink.objects.filter(pk=link.pk, owners_told_at__isnull=True).update(
                owners_told_at=now
            )
            if first:
                transaction.on_commit(lambda: _alert_owners_unreachable(link, exc.message))
        if reason == Reason.BAD_CREDENTIALS:
            running = ProviderLink.objects.filter(pk=link.pk, is_paused=False).exists()
            provider_link_pause(
                link=link,
                reason=f"{link.get_provider_display()} refused the credentials: {exc.message}",
            )
            if running:  # one e-mail, not one per text that was in flight
                transaction.on_commit(lambda: _alert_owners_bad_credentials(link, exc.message))
    if moved:
        message.status = update["status"]
        message.attempts = attempts
        if release:
            message.units = 0
    return Outcome(update["status"] if moved else message.status, reason, exc.retry_after)


def retry_period() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.SENDER_RETRY_MINUTES)


def _first_try(message: Message, now: datetime.datetime) -> datetime.datetime:
    """When this text was first handed to the provider (its first attempt row)."""
    first = (
        Attempt.objects.filter(message_id=message.pk)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return first or now


def provider_link_reachable(*, link_id: int) -> None:
    """The provider answered again: the link no longer shows "unreachable, retrying", and the
    owners will be told of the next outage."""
    ProviderLink.objects.filter(pk=link_id, unreachable_since__isnull=False).update(
        unreachable_since=None, owners_told_at=None
    )


def _alert_owners_unreachable(link: ProviderLink, detail: str) -> None:
    from django.core.mail import send_mail

    from projects.emails import project_owners_emails

    recipients = project_owners_emails(link.project)
    if recipients:
        minutes = settings.SENDER_RETRY_MINUTES
        send_mail(
            f"[StudyText] Texts could not reach {link.get_provider_display()}",
            f"For {minutes} minutes StudyText could not reach {link.get_provider_display()} for "
            f"{link.project.title}, so texts that waited that long are marked failed; the others "
            f"go on retrying. Nothing was sent twice.\n\n{detail}\n\nThe message log lists "
            f"the failed texts; send them again once the provider answers:\n"
            f"{settings.SITE_URL}{reverse('message-log', args=[link.project_id])}?status=failed\n",
            None,
            recipients,
        )


def _alert_owners_bad_credentials(link: ProviderLink, detail: str) -> None:
    from billing import mail
    from projects.emails import project_owners_emails

    recipients = project_owners_emails(link.project)
    if recipients:
        mail.send(
            f"Texting paused for {link.project.title}",
            f"{link.get_provider_display()} refused the project's credentials, so StudyText paused "
            f"its texts. Nothing is lost: queued texts wait.\n\n{detail}\n\nReplace the "
            f"credentials on the project's set-up page, then resume sending:\n"
            f"{settings.SITE_URL}{reverse('project-provider', args=[link.project_id])}\n",
            recipients,
        )


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
            participant_optout_write_back_request(participant_id=participant.pk)
            Message.objects.filter(
                participant__project_id=participant.project_id,
                participant__phone_fingerprint=participant.phone_fingerprint,
                status__in=[Status.QUEUED, Status.HELD],
            ).update(
                status=Status.CANCELLED,
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


# --- The sweep: nothing is ever stranded -------------------------------------------------
def sweep(*, now=None, lease_alive: bool = False) -> dict[str, int]:
    """Reconcile rows a dead sender left behind, and unknown rows with the provider."""
    now = now or timezone.now()
    counts = {"requeued": 0, "unknown": 0, "reconciled": 0, "resent": 0, "unconfirmed": 0}
    # While a sender runs (a long send keeps the lease nearly all the time), only rows stranded
    # for much longer than any live sender holds one: a live loop calls a claimed row within
    # seconds, and a call ends within the gateway's timeouts.
    stale = now - (STUCK_SENDING_AFTER if not lease_alive else STUCK_WHILE_SENDER_RUNS)
    stuck = Message.objects.filter(status=Status.SENDING, updated_at__lt=stale).select_related(
        "project", "project__account"
    )
    for message in stuck:
        # Every UPDATE below re-checks that the row is still sending and still stale, so a
        # row a new sender claimed (or recorded) since it was read here is left alone.
        still_stuck = Message.objects.filter(
            pk=message.pk, status=Status.SENDING, updated_at__lt=stale
        )
        with transaction.atomic():
            called = Attempt.objects.filter(
                message=message, outcome=Attempt.Outcome.STARTED
            ).exists()
            if called:
                # The provider call may have happened: never call again; ask the provider.
                n = still_stuck.update(
                    status=Status.UNKNOWN,
                    error="The sender stopped during the provider call; "
                    "checking with the provider.",
                    updated_at=now,
                )
                counts["unknown"] += n
            else:
                n = still_stuck.update(status=Status.QUEUED, units=0, updated_at=now)
                if n:
                    quota_release(
                        project=message.project,
                        units=message.units,
                        reserved_at=message.reserved_at,
                    )
                counts["requeued"] += n
    unknown = Message.objects.filter(
        status=Status.UNKNOWN, updated_at__lt=now - RECONCILE_AFTER
    ).select_related("project", "project__account", "participant", "project__provider_link")
    # Each reconciliation asks the provider; stop in time for the dispatcher's task timeout
    # (a provider that is down answers every question slowly). The rest wait for the next sweep.
    budget = time.monotonic() + RECONCILE_BUDGET_SECONDS
    for message in unknown.order_by("updated_at")[:200]:
        if time.monotonic() > budget:
            break
        result = reconcile(message, now=now)
        if result:
            counts[result] += 1
    return counts


def reconcile(message: Message, *, now) -> str | None:
    """Ask the provider whether an unconfirmed text went out. Never resends."""
    link = ProviderLink.objects.filter(project_id=message.project_id).first()
    if link is None:
        return None
    first_try = (
        Attempt.objects.filter(message=message)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
        or message.created_at
    )
    try:
        found = get_gateway(link).find_sent(
            to=message.to_phone,  # a test went to a staff member's phone
            body=message.body,
            since=first_try - datetime.timedelta(minutes=1),
        )
    except GatewayError:
        return None  # the provider cannot answer now; ask again next sweep
    with transaction.atomic():
        if found:
            Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(
                status=Status.SENT,
                provider_message_id=found[:64],
                sent_at=first_try,
                error="",
                updated_at=now,
            )
            return "reconciled"
        if now - message.updated_at < RECONCILE_GIVE_UP:
            return None  # the provider may still be catching up; ask again next sweep
        # The provider's listing can be trusted now, and it has no such text: it never got it.
        # It goes back to the queue by itself, once (a second unconfirmed call fails it).
        reached = Attempt.objects.filter(message=message).exclude(
            outcome__in=[Attempt.Outcome.RETRY, Attempt.Outcome.FAILED]
        )
        # A test text is never sent again (it was pressed by hand; docs/sending.md, Test texts).
        if not message.is_test and reached.count() <= 1:
            n = Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(
                status=Status.QUEUED,
                not_before=now,
                error=RESENT_NOTE,
                units=0,
                updated_at=now,
            )
            if n:
                quota_release(
                    project=message.project, units=message.units, reserved_at=message.reserved_at
                )
            return "resent"
        n = Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(
            status=Status.FAILED,
            error="The provider has no record of this text, sent again once and still "
            "unconfirmed. StudyText does not send it a third time (to avoid a duplicate); send "
            "it again by hand if needed.",
            units=0,
            updated_at=now,
        )
        if n:
            quota_release(
                project=message.project, units=message.units, reserved_at=message.reserved_at
            )
        return "unconfirmed"


# --- Delivery receipts ----------------------------------------------------------------------
RECEIPT_STATUS = {
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "sent": Status.SENT,
}
RANK = {
    Status.QUEUED: 0,
    Status.HELD: 0,
    Status.SENDING: 1,
    Status.UNKNOWN: 2,
    Status.SENT: 3,
    Status.DELIVERED: 4,
    Status.UNDELIVERED: 4,
    Status.FAILED: 4,
}


def receipt_apply(
    *, link: ProviderLink, provider_message_id: str, provider_status: str, reason=None, code=None
) -> bool:
    """Move a message forward on a delivery receipt. Duplicates and late receipts do nothing."""
    target = RECEIPT_STATUS.get(provider_status)
    if target is None:
        return False
    message = (
        Message.objects.filter(project_id=link.project_id, provider_message_id=provider_message_id)
        .select_related("participant")
        .first()
    )
    if message is None or RANK.get(message.status, 9) >= RANK[target]:
        return False
    update = {"status": target, "updated_at": timezone.now()}
    if target == Status.DELIVERED:
        update["delivered_at"] = timezone.now()
    if target in (Status.UNDELIVERED, Status.FAILED) and code:
        update.update(error_code=str(code)[:32], error=f"The carrier reported error {code}.")
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=message.status).update(**update)
        if moved and message.is_test:
            pass  # a test's number is a staff member's: no participant to flag
        elif moved and reason == Reason.INVALID_NUMBER:
            Participant.objects.filter(pk=message.participant_id).update(number_invalid=True)
        elif moved and reason == Reason.OPTED_OUT:
            opt_out_record(participant=message.participant, source=OptOut.Source.PROVIDER)
    return bool(moved)
