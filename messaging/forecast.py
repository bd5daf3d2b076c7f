"""The forward calendar (docs/sending.md, "The forward calendar"): who gets what and when over
the next days, for a project or one rule, before anything is queued.

A read (selectors.py re-exports it): it walks the same occurrences the dispatcher materialises
(`outbox.scheduled_rules`, `occurrences_between`, the same recipients and reminder anchors), adds
the texts already waiting in the outbox (follow-ups queued by a trigger, texts waiting for the
sending hours), and then applies what release would: the sending hours (the time shown is when
the text can go), the rule's "stop after N texts", and "stop once completed" (asked of REDCap once
per survey). Opted-out and untextable participants are never in it. Its queries do not grow with
the number of participants: one for the participants, one per rule for reminder anchors and sent
counts, one for the waiting texts.
"""

import datetime
from collections import Counter
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils import timezone

from billing.services import quota_units_for
from messaging import piping, segments
from messaging.models import Message, MessageRule
from messaging.scheduling import ScheduleSpec, SendWindow, occurrences_between, zone
from messaging.services.outbox import (
    RECEIVED,
    invitation_anchors,
    rule_recipients,
    scheduled_rules,
    textable_participants,
)
from messaging.services.rules import SAMPLE_LINK
from projects.models import Project
from projects.redcap import RedcapError
from projects.selectors import project_field_mapping

DAYS = 14
SENT_OR_GOING = [*RECEIVED, Message.Status.SENDING]


@dataclass
class Entry:
    rule_id: int
    rule_name: str
    participant_id: int
    record_id: str
    due_at: datetime.datetime  # when the trigger falls due (what the dispatcher queues)
    goes_at: datetime.datetime  # after the sending hours
    units: int
    skip: str = ""  # why release would skip it ("" : it goes)
    queued: bool = False  # already in the outbox


@dataclass
class Day:
    day: datetime.date
    texts: int = 0
    units: int = 0
    skipped: int = 0


@dataclass
class Calendar:
    start: datetime.datetime
    end: datetime.datetime
    entries: list[Entry] = field(default_factory=list)
    days: list[Day] = field(default_factory=list)
    remaining: int | None = None  # quota units the account has left this period
    notes: list[str] = field(default_factory=list)

    @property
    def texts(self) -> int:
        return sum(1 for e in self.entries if not e.skip)

    @property
    def units(self) -> int:
        return sum(e.units for e in self.entries if not e.skip)

    @property
    def skipped(self) -> int:
        return sum(1 for e in self.entries if e.skip)

    @property
    def over_quota(self) -> bool:
        return self.remaining is not None and self.units > self.remaining


def _units(body: str, values: dict[str, str]) -> int:
    text = piping.render(
        body,
        piping.PipingContext(values=values, survey_link=SAMPLE_LINK, survey_queue_link=SAMPLE_LINK),
    )
    return quota_units_for(messages=1, segments=segments.count(text).segments)


def _completed(rules: list[MessageRule], project: Project, notes: list[str]) -> dict:
    """Records that completed each (instrument, event) a "stop once completed" rule names."""
    wanted = {(r.instrument, r.event) for r in rules if r.stop_when_complete and r.instrument}
    done: dict[tuple[str, str], set[str]] = {}
    if not wanted:
        return done
    from projects.services.links import redcap_client_for

    try:
        client = redcap_client_for(project)
        for instrument, event in wanted:
            rows = client.participant_list(instrument=instrument, event=event or None)
            done[(instrument, event)] = {
                str(r.get("record")) for r in rows if str(r.get("response_status")) == "2"
            }
    except (RedcapError, ValidationError) as exc:
        notes.append(
            f"REDCap did not answer, so completed surveys are not taken off: {exc}".rstrip()
        )
    return done


def forward_calendar(
    *,
    project: Project,
    rule: MessageRule | None = None,
    now: datetime.datetime | None = None,
    days: int = DAYS,
    check_redcap: bool = True,
) -> Calendar:
    now = now or timezone.now()
    end = now + datetime.timedelta(days=days)
    cal = Calendar(start=now, end=end)
    rules = list(scheduled_rules().filter(project=project))
    if rule is not None:
        rules = [r for r in rules if r.pk == rule.pk]
    mapping = project_field_mapping(project=project)
    window = SendWindow.for_project(project)
    people = list(
        textable_participants(project=project).only(
            "pk", "record_id", "time_zone", "dates", "first_name", "phone_fingerprint"
        )
    )
    by_pk = {p.pk: p for p in people}
    completed = _completed(rules, project, cal.notes) if check_redcap else {}
    for r in rules:
        r.project = project
        spec = ScheduleSpec.from_rule(r)
        start = max(r.materialized_through or now, now)
        who = people
        if r.recipients != MessageRule.Recipients.ALL:
            if r.recipients == MessageRule.Recipients.FILTER and not check_redcap:
                continue
            try:
                allowed = set(rule_recipients(rule=r).values_list("pk", flat=True))
            except ValidationError as exc:
                cal.notes.append(f"“{r.name}”: {' '.join(exc.messages)}")
                continue
            who = [p for p in people if p.pk in allowed]
        anchors = invitation_anchors(rule=r) if spec.kind == "invitation" else {}
        if spec.kind == "invitation":
            who = [p for p in who if p.pk in anchors]
        sent = Counter()
        if r.max_sends:
            sent.update(
                {
                    row["participant_id"]: row["n"]
                    for row in Message.objects.filter(rule=r, status__in=SENT_OR_GOING)
                    .values("participant_id")
                    .annotate(n=Count("id"))
                }
            )
        done = completed.get((r.instrument, r.event), set())
        for p in who:
            tz = zone(p.time_zone or project.time_zone)
            values = piping.participant_values(p, mapping)
            for occ in occurrences_between(
                spec, tz=tz, start=start, end=end, dates=p.dates, anchor=anchors.get(p.pk)
            ):
                cal.entries.append(_entry(r, p, occ.due_at, window, tz, values, sent, done))
    _waiting(cal, project, rule, by_pk, mapping, window, end)
    cal.entries.sort(key=lambda e: (e.goes_at, e.record_id, e.rule_name))
    _by_day(cal, project, now, days)
    from billing.selectors import account_usage

    period = account_usage(account=project.account, now=now).period
    cal.remaining = max(period.included + period.credits - period.used, 0)
    return cal


def _entry(r, p, due, window, tz, values, sent, done, *, queued=False) -> Entry:
    goes = window.next_opening(due, tz) if window.days else due
    skip = ""
    if r.stop_when_complete and p.record_id in done:
        skip = "completed the survey"
    elif r.max_sends:
        if sent[p.pk] >= r.max_sends:
            skip = f"already texted {r.max_sends} times"
        else:
            sent[p.pk] += 1
    return Entry(
        rule_id=r.pk,
        rule_name=r.name,
        participant_id=p.pk,
        record_id=p.record_id,
        due_at=due,
        goes_at=goes,
        units=_units(r.body, values),
        skip=skip,
        queued=queued,
    )


def _waiting(cal, project, rule, by_pk, mapping, window, end) -> None:
    """Texts of rules already in the outbox that go in the window: a follow-up queued by its
    trigger, a text waiting for the sending hours."""
    waiting = Message.objects.filter(
        project=project,
        status__in=[Message.Status.QUEUED, Message.Status.HELD],
        rule__isnull=False,
        not_before__lte=end,
        participant_id__in=list(by_pk),
    ).select_related("rule")
    if rule is not None:
        waiting = waiting.filter(rule=rule)
    for m in waiting:
        p = by_pk[m.participant_id]
        tz = zone(p.time_zone or project.time_zone)
        values = piping.participant_values(p, mapping)
        entry = _entry(
            m.rule, p, max(m.not_before, cal.start), window, tz, values, Counter(), set()
        )
        entry.queued = True
        cal.entries.append(entry)


def _by_day(cal: Calendar, project: Project, now, days: int) -> None:
    tz = zone(project.time_zone)
    first = now.astimezone(tz).date()
    table: dict[datetime.date, Day] = {}
    for e in cal.entries:
        day = e.goes_at.astimezone(tz).date()
        row = table.setdefault(day, Day(day=day))
        if e.skip:
            row.skipped += 1
        else:
            row.texts += 1
            row.units += e.units
    cal.days = [
        table.get(first + datetime.timedelta(days=i)) or Day(day=first + datetime.timedelta(days=i))
        for i in range(days + 1)
    ]
