"""When a rule's texts fall due, in each participant's local time (DST-correct), and sending hours.

Pure functions: no database, no clock of their own. Local wall-clock times are converted with
zoneinfo, so "10:00 every Monday" stays 10:00 local on both sides of a DST change. A local time
that does not exist (the spring-forward gap) moves forward by the gap; one that happens twice
(the fall-back hour) takes its first occurrence.
"""

import datetime
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass

UTC = datetime.UTC


def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def local_to_utc(day: datetime.date, at: datetime.time, tz: zoneinfo.ZoneInfo) -> datetime.datetime:
    """The UTC instant of a local wall-clock time on a local date."""
    # fold=0 (PEP 495): a time in the spring gap takes the offset from before the change, so it
    # lands after the gap (02:30 -> 03:30); a repeated autumn time takes its first occurrence.
    return datetime.datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(UTC)


@dataclass(frozen=True)
class Occurrence:
    key: str  # stable: part of the message's dedup key
    due_at: datetime.datetime  # UTC


@dataclass(frozen=True)
class ScheduleSpec:
    """The schedule part of a MessageRule, as plain values."""

    kind: str  # once | recurring | relative | manual
    send_time: datetime.time
    once_date: datetime.date | None = None
    recur_days: tuple[int, ...] = ()
    start_date: datetime.date | None = None
    until_date: datetime.date | None = None
    max_occurrences: int | None = None
    date_field: str = ""
    offset_days: int = 0
    # "relative" in hours or minutes: an exact time after the date-time (days keep send_time);
    # "invitation": reminders every `repeat_every_days`, `repeat_count` times after an anchor.
    offset: int = 0
    offset_unit: str = "days"
    repeat_every_days: int = 0
    repeat_count: int = 0

    @classmethod
    def from_rule(cls, rule) -> "ScheduleSpec":
        trigger = getattr(rule, "trigger", "") or rule.schedule
        return cls(
            kind=trigger if trigger in SCHEDULED_KINDS else rule.schedule,
            offset=getattr(rule, "offset", rule.offset_days),
            offset_unit=getattr(rule, "offset_unit", "days") or "days",
            repeat_every_days=getattr(rule, "repeat_every_days", None) or 0,
            repeat_count=getattr(rule, "repeat_count", None) or 0,
            send_time=rule.send_time,
            once_date=rule.once_date,
            recur_days=tuple(rule.recur_days or ()),
            start_date=rule.start_date,
            until_date=rule.until_date,
            max_occurrences=rule.max_occurrences,
            date_field=rule.date_field,
            offset_days=rule.offset_days,
        )


# The triggers the dispatcher materialises from the calendar (the others react to REDCap).
SCHEDULED_KINDS = ("once", "recurring", "relative", "invitation")
UNIT_SECONDS = {"hours": 3600, "minutes": 60}


def _base_moment(raw: str, tz: zoneinfo.ZoneInfo) -> datetime.datetime | None:
    """A REDCap date ("2026-03-08", local midnight) or date-time ("2026-03-08 14:30") as UTC."""
    raw = (raw or "").strip()
    try:
        if len(raw) > 10:
            local = datetime.datetime.fromisoformat(raw[:16].replace("T", " "))
        else:
            local = datetime.datetime.combine(datetime.date.fromisoformat(raw), datetime.time())
    except ValueError:
        return None
    return local_to_utc(local.date(), local.time(), tz)


def _exact_occurrences(
    spec: "ScheduleSpec", tz: zoneinfo.ZoneInfo, dates: dict[str, str], anchor
) -> list[Occurrence]:
    """The occurrences of the triggers that fall at an exact moment rather than at send_time."""
    if spec.kind == "relative":
        raw = dates.get(spec.date_field, "")
        base = _base_moment(raw, tz)
        if base is None:
            return []
        due = base + datetime.timedelta(seconds=spec.offset * UNIT_SECONDS[spec.offset_unit])
        key = f"{spec.date_field}{spec.offset:+d}{spec.offset_unit[0]}:{raw[:16]}"
        return [Occurrence(key=key, due_at=due)]
    if spec.kind == "invitation" and anchor is not None:
        # Every N days after the invitation at the invitation's local time of day (so a DST
        # change in between keeps the wall-clock time, as the participant saw it).
        local = anchor.astimezone(tz)
        out = []
        for i in range(1, spec.repeat_count + 1):
            day = local.date() + datetime.timedelta(days=i * spec.repeat_every_days)
            due = local_to_utc(day, local.time().replace(tzinfo=None), tz)
            out.append(Occurrence(key=f"inv{anchor:%Y%m%d%H%M%S}+{i}", due_at=due))
        return out
    return []


def _local_dates(spec: ScheduleSpec, dates: dict[str, str]) -> Iterator[datetime.date]:
    """The local dates on which the schedule fires, in order (may be unbounded)."""
    if spec.kind == "once":
        if spec.once_date:
            yield spec.once_date
    elif spec.kind == "relative":
        raw = dates.get(spec.date_field, "")
        try:
            base = datetime.date.fromisoformat(raw[:10])
        except ValueError:
            return
        yield base + datetime.timedelta(days=spec.offset_days)
    elif spec.kind == "recurring" and spec.start_date:
        days = set(spec.recur_days) or set(range(7))
        day, count = spec.start_date, 0
        while spec.until_date is None or day <= spec.until_date:
            if day.weekday() in days:
                yield day
                count += 1
                if spec.max_occurrences and count >= spec.max_occurrences:
                    return
            day += datetime.timedelta(days=1)


def occurrences_between(
    spec: ScheduleSpec,
    *,
    tz: zoneinfo.ZoneInfo,
    start: datetime.datetime,
    end: datetime.datetime,
    dates: dict[str, str] | None = None,
    anchor: datetime.datetime | None = None,
) -> list[Occurrence]:
    """Occurrences with start < due_at <= end (UTC), for one participant. `anchor`: for
    reminders, when that participant's invitation went out."""
    if spec.kind == "invitation" or (spec.kind == "relative" and spec.offset_unit != "days"):
        return [
            o for o in _exact_occurrences(spec, tz, dates or {}, anchor) if start < o.due_at <= end
        ]
    out = []
    # Local dates are at most a day away from UTC dates: stop a day after `end`.
    last_day = (end.astimezone(tz) + datetime.timedelta(days=1)).date()
    for day in _local_dates(spec, dates or {}):
        if day > last_day:
            break
        due = local_to_utc(day, spec.send_time, tz)
        if start < due <= end:
            key = day.isoformat()
            if spec.kind == "relative":
                key = f"{spec.date_field}{spec.offset_days:+d}:{day.isoformat()}"
            out.append(Occurrence(key=key, due_at=due))
    return out


def first_occurrence(
    spec: ScheduleSpec, *, tz: zoneinfo.ZoneInfo, dates: dict[str, str] | None = None
) -> datetime.datetime | None:
    if spec.kind == "invitation" or (spec.kind == "relative" and spec.offset_unit != "days"):
        found = _exact_occurrences(spec, tz, dates or {}, None)
        return found[0].due_at if found else None
    for day in _local_dates(spec, dates or {}):
        return local_to_utc(day, spec.send_time, tz)
    return None


# Texts that answer what a participant has just texted: not held by the sending hours (a HELP
# reply; a text survey's next question, once the participant is answering).
ANSWERS_AT_ONCE = ("help", "survey")


# --- Sending hours ------------------------------------------------------------------------
@dataclass(frozen=True)
class SendWindow:
    """A project's sending hours: texts go out only from `start` to `end` (local wall-clock
    time of the participant) on `days` (0 = Monday). See docs/compliance.md."""

    start: datetime.time
    end: datetime.time
    days: frozenset[int]

    @classmethod
    def for_project(cls, project) -> "SendWindow":
        return cls(project.send_window_start, project.send_window_end, frozenset(project.send_days))

    def allows(self, when: datetime.datetime, tz: zoneinfo.ZoneInfo) -> bool:
        local = when.astimezone(tz)
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_opening(self, when: datetime.datetime, tz: zoneinfo.ZoneInfo) -> datetime.datetime:
        """`when` itself if the window is open, else the next moment it opens (UTC)."""
        if self.allows(when, tz):
            return when
        local = when.astimezone(tz)
        for offset in range(0, 8):
            day = local.date() + datetime.timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opening = local_to_utc(day, self.start, tz)
            if opening > when:
                return opening
        raise ValueError("The send window has no open day.")

    def closes_after(self, when: datetime.datetime, tz: zoneinfo.ZoneInfo) -> datetime.datetime:
        """The moment (UTC) the window that is open at `when` closes. Only for an open window."""
        local = when.astimezone(tz)
        return local_to_utc(local.date(), self.end, tz)


def local_words(moment: datetime.datetime, tz: zoneinfo.ZoneInfo) -> str:
    """'Mon 9:00 a.m.': a moment as a participant reads it on their own clock."""
    local = moment.astimezone(tz)
    hour = local.hour % 12 or 12
    half = "a.m." if local.hour < 12 else "p.m."
    return f"{local:%a} {hour}:{local:%M} {half}"


def waiting_note(opening: datetime.datetime, tz: zoneinfo.ZoneInfo) -> str:
    """What the log, the overview and the participant's page say of a text waiting for the
    sending hours to open."""
    return f"{WAITING_PREFIX} {local_words(opening, tz)} participant time (sending hours)."


WAITING_PREFIX = "Waits until"
