"""Releasing a text (docs/sending.md): what it needs from REDCap (ReleaseData), whether it may go
now, and its rendered body and cost (prepare). Nothing here is claimed or sent."""

import datetime
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Count

from billing.services import quota_units_for
from messaging import piping, segments
from messaging.eligibility import untextable_reason
from messaging.models import Message, MessageRule, OptOut
from messaging.scheduling import (
    ANSWERS_AT_ONCE,
    ScheduleSpec,
    SendWindow,
    occurrences_between,
    waiting_note,
    zone,
)
from messaging.services import conversations
from messaging.services.waits import defer, skip
from projects.models import FieldMapping, Project
from projects.redcap import RedcapError
from projects.services.links import redcap_client_for

logger = logging.getLogger(__name__)
Status = Message.Status
REDCAP_RETRY = datetime.timedelta(minutes=2)
SURVEY_WAIT = datetime.timedelta(minutes=30)  # re-checked sooner: a finished survey frees them


@dataclass
class Prepared:
    """A message ready to claim: rendered text and its cost."""

    message: Message
    body: str
    count: segments.SegmentCount
    units: int
    # When what it pipes (and its survey's completion) was read from REDCap, on the sender's
    # clock (time.monotonic): the sender reads it again when the text would leave more than
    # SENDER_READ_AHEAD_SECONDS later (docs/sending.md, "Reading REDCap ahead").
    read_at: float = 0.0
    # When the provider accepted it (the sender records accepted texts together, a moment later).
    accepted_at: datetime.datetime | None = None


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
        self.planned_at = time.monotonic()  # when its texts were read from the queue
        self.read_at: float | None = None  # time.monotonic() when the fetch began
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
        if untextable_reason(participant) is not None:
            return  # skipped before anything is asked (minimum necessary)
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
    def connect(self, *, token: str | None = None) -> None:
        """The REDCap client (the token comes from the database unless given: call this on
        the DB thread)."""
        if self.client is not None or self.error is not None:
            return
        try:
            self.client = redcap_client_for(self.project, token=token)
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
        self.read_at = time.monotonic()  # REDCap's answers are at least this fresh
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
        .exclude(kind__in=conversations.SURVEY_KINDS)  # a text survey's questions are not sends
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
    surveying: set | None = None,
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
        skip(message, "The participant opted out (texted STOP).")
        return None
    reason = untextable_reason(participant)
    if reason is not None:
        skip(message, reason)
        return None
    tz = zone(participant.time_zone or project.time_zone)
    window = SendWindow.for_project(project)
    # A text survey open with the number: other texts wait until it ends (`surveying`: the
    # batch's numbers with one open; docs/redcap.md "Text surveys").
    if conversations.waits_for_survey(message, surveying):
        defer(message, now + SURVEY_WAIT, conversations.WAIT_NOTE)
        return None
    # A HELP reply, or a text survey's next question, answers a text the participant has just
    # sent: it ignores the sending hours.
    if message.kind not in ANSWERS_AT_ONCE and not window.allows(now, tz):
        opening = window.next_opening(now, tz)
        defer(message, opening, waiting_note(opening, tz))
        return None
    if message.kind in conversations.SURVEY_KINDS:
        # A text of an open conversation: written when it was queued (no piping, no limits).
        count = segments.count(message.adhoc_body)
        units = quota_units_for(messages=1, segments=count.segments)
        return Prepared(message=message, body=message.adhoc_body, count=count, units=units)
    if rule is not None:
        if rule.max_sends and sent_counts.get((participant.pk, rule.pk), 0) >= rule.max_sends:
            skip(message, f"Already texted {_times(rule.max_sends)} by this message.")
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
                skip(message, f"The date in REDCap ({rule.date_field}) changed.")
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
                if rule.stop_when_complete and (
                    str(survey.get("response_status", "")) == "2"
                    or conversations.completed_by_text(participant=participant, rule=rule)
                ):
                    skip(message, "The participant already completed the survey.")
                    return None
                survey_link = survey.get("survey_link", "")
                if "survey-link" in used and not survey_link:
                    skip(message, "REDCap has no survey link for this record.")
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
                skip(message, "The record is gone from REDCap.")
                return None
            values = piping.record_values(participant.record_id, row, mapping)
    except RedcapError as exc:
        # Fail safe: without what REDCap holds now (completion, links, piped values), do not
        # text; try again shortly.
        defer(message, now + REDCAP_RETRY, f"REDCap could not be reached: {exc}")
        return None
    survey_tail = ""
    if rule is not None and rule.kind == MessageRule.Kind.TEXT_SURVEY:
        try:
            survey_tail = conversations.conversation_begin(message=message, now=now)
        except (RedcapError, ValidationError) as exc:
            words = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
            defer(message, now + REDCAP_RETRY, f"REDCap could not be reached: {words}")
            return None
        if survey_tail is None:
            return None
    context = piping.PipingContext(
        values=values, survey_link=survey_link, survey_queue_link=queue_link
    )
    body = piping.render(body_template, context)
    if survey_tail:
        body = f"{body}\n\n{survey_tail}" if body.strip() else survey_tail
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
