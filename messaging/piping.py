"""REDCap-style piping in message bodies: [first_name], [survey-link], [survey-queue-link]...

Only mapped fields can be piped (minimum necessary): the first-name field (as [first_name] or by
its REDCap name) and the mapped date fields. Survey links come from REDCap at release time.

Dates read as a participant would read them, not as REDCap exports them (2026-10-28):

    2026-10-28             ->  Wed, Oct 28          (this year)
    2027-01-05             ->  Tue, Jan 5, 2027     (another year: the year is added)
    2026-10-28 14:30[:00]  ->  Wed, Oct 28 at 2:30 PM

English names fixed here (not the server's locale), plain GSM-7 characters only, so a date never
turns a text into UCS-2; the longest form ("Wed, Oct 28, 2027 at 12:30 PM", 29 characters) stays
within the 30 characters the rule check allows a piped value. "This year" is the site's local
date when the text is rendered: at release for a send, at preview time for the preview, which
uses this same renderer, so its segment count is the one the participant gets. A value that is
not a REDCap date is piped as it is.
"""

import datetime
import re
from dataclasses import dataclass

from django.utils import timezone

TOKEN_RE = re.compile(r"\[([A-Za-z0-9_\-:]+)\]")
SURVEY_TOKENS = {"survey-link", "survey-queue-link"}
MAX_BODY_CHARS = 1600


@dataclass(frozen=True)
class PipingContext:
    """The values one participant's text may use."""

    values: dict[str, str]
    survey_link: str = ""
    survey_queue_link: str = ""


def tokens(body: str) -> list[str]:
    return TOKEN_RE.findall(body)


def allowed_tokens(mapping) -> set[str]:
    """The piping names a project's mapping allows."""
    names = set(SURVEY_TOKENS)
    if mapping is not None:
        if mapping.first_name_field:
            names |= {"first_name", mapping.first_name_field}
        names |= set(mapping.date_fields)
        names.add("record_id")
    return names


def unknown_tokens(body: str, mapping) -> list[str]:
    allowed = allowed_tokens(mapping)
    return sorted({t for t in tokens(body) if t not in allowed})


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
REDCAP_DATE_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?")


def readable_date(value: str, *, today: datetime.date) -> str:
    """A REDCap date or datetime as a participant reads it (see the module's docstring)."""
    match = REDCAP_DATE_RE.fullmatch(str(value).strip())
    if match is None:
        return str(value)
    year, month, day, hour, minute, _seconds = match.groups()
    try:
        date = datetime.date(int(year), int(month), int(day))
        clock = datetime.time(int(hour), int(minute)) if hour is not None else None
    except ValueError:  # 2026-02-30, 25:00: not a date after all
        return str(value)
    text = f"{WEEKDAYS[date.weekday()]}, {MONTHS[date.month - 1]} {date.day}"
    if date.year != today.year:
        text += f", {date.year}"
    if clock is not None:
        text += (
            f" at {clock.hour % 12 or 12}:{clock.minute:02d} {'AM' if clock.hour < 12 else 'PM'}"
        )
    return text


def participant_values(
    participant, mapping, *, today: datetime.date | None = None
) -> dict[str, str]:
    """What one participant's text may pipe; dates already readable."""
    today = today or timezone.localdate()
    values = {"record_id": participant.record_id}
    if mapping is not None and mapping.first_name_field:
        values["first_name"] = participant.first_name
        values[mapping.first_name_field] = participant.first_name
    for name, raw in (participant.dates or {}).items():
        values[name] = readable_date(raw, today=today)
    return values


def missing_values(body: str, context: PipingContext) -> list[str]:
    """The mapped fields the body pipes that are blank for this participant (a date not filled
    in REDCap): the text would read "joined on ." The preview names them."""
    return sorted(
        {t for t in tokens(body) if t not in SURVEY_TOKENS and not context.values.get(t, "")}
    )


def render(body: str, context: PipingContext) -> str:
    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name == "survey-link":
            return context.survey_link
        if name == "survey-queue-link":
            return context.survey_queue_link
        return context.values.get(name, "")

    # Piped values never add piping of their own: one pass, no recursion.
    return TOKEN_RE.sub(replace, body)


# --- At release: the values come from REDCap, not from the synced copy ------------------------
# The synced copy (participant.first_name, participant.dates) serves the preview and scheduling;
# the text itself pipes what REDCap holds when it goes out (a corrected name, a moved date).


def record_fields(body: str, mapping) -> list[str]:
    """The REDCap fields `body` pipes from the participant's record: the mapped first-name field
    and the mapped dates it names. [record_id] and the survey links need no record export."""
    if mapping is None:
        return []
    used = set(tokens(body))
    fields = []
    if mapping.first_name_field and used & {"first_name", mapping.first_name_field}:
        fields.append(mapping.first_name_field)
    fields += [f for f in mapping.date_fields if f in used and f not in fields]
    return fields


@dataclass(frozen=True)
class RecordSnapshot:
    """A participant's pipeable fields as REDCap holds them now (the shape of a Participant)."""

    record_id: str
    first_name: str
    dates: dict[str, str]


def record_values(record_id: str, row: dict, mapping) -> dict[str, str]:
    """What a text may pipe, from the participant's REDCap record as exported at release. Read
    as the sync reads it, and shaped by `participant_values`, so the preview and the text agree."""

    def value(name: str) -> str:
        return str(row.get(name, "") or "").strip() if name else ""

    fresh = RecordSnapshot(
        record_id=record_id,
        first_name=value(mapping.first_name_field)[:100],
        dates={f: value(f) for f in mapping.date_fields if value(f)},
    )
    return participant_values(fresh, mapping)
