"""REDCap-style piping in message bodies: [first_name], [survey-link], [survey-queue-link]...

Only mapped fields can be piped (minimum necessary): the first-name field (as [first_name] or by
its REDCap name) and the mapped date fields. Survey links come from REDCap at release time.
"""

import re
from dataclasses import dataclass

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


def participant_values(participant, mapping) -> dict[str, str]:
    values = {"record_id": participant.record_id}
    if mapping is not None and mapping.first_name_field:
        values["first_name"] = participant.first_name
        values[mapping.first_name_field] = participant.first_name
    values.update(participant.dates or {})
    return values


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
