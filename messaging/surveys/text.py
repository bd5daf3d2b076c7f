"""The text of a question: its label with piping filled in, its choices, how to answer.

    How was your mood this week?
    1) Very bad
    2) Bad
    3) OK
    Reply with the number. Reply SKIP to skip.

Piping goes through ``messaging.piping`` as in messages: ``[field]`` pipes a choice's label and a
date as a participant reads it (``Wed, Mar 4``), ``[field:value]`` the stored code,
``[field:label]`` the label, ``[field(code)]`` Checked or Unchecked. Instructions are short and
plain GSM-7, so they add characters but never switch a text to UCS-2 (docs/sms-encoding.md).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from django.utils import timezone

from messaging import piping
from messaging.surveys import dates
from messaging.surveys.answers import (
    bounds,
    checkbox_column,
    default_answer,
    offers_default,
)
from messaging.surveys.fields import (
    DATE_VALIDATIONS,
    DATETIME_SECONDS_VALIDATIONS,
    DATETIME_VALIDATIONS,
    LEGACY_VALIDATIONS,
    Instrument,
    Question,
    parse_choices,
)

_OPTION = re.compile(r"\[([A-Za-z][A-Za-z0-9_]*)\(([A-Za-z0-9_.-]+)\)\]")


def _display(instrument: Instrument, name: str, values: Mapping[str, str], today: dt.date):
    """(as read, raw, label) for a field's value."""
    row = instrument.dictionary.get(name)
    raw = values.get(name, "")
    if row is None:
        return raw, raw, raw
    field_type = row.get("field_type", "")
    choices = parse_choices(field_type, row.get("select_choices_or_calculations", ""))
    if field_type == "checkbox":
        checked = [(c, lbl) for c, lbl in choices if values.get(checkbox_column(name, c)) == "1"]
        labels = ", ".join(label for _, label in checked)
        return labels, ", ".join(c for c, _ in checked), labels
    if field_type in ("radio", "dropdown", "yesno", "truefalse"):
        label = dict(choices).get(raw, raw)
        return label, raw, label
    validation = (row.get("text_validation_type_or_show_slider_number") or "").strip()
    validation = LEGACY_VALIDATIONS.get(validation, validation)
    if validation.startswith("date"):
        return piping.readable_date(raw, today=today), raw, raw
    return raw, raw, raw


def render(
    text: str, instrument: Instrument, values: Mapping[str, object], *, today: dt.date
) -> str:
    """``text`` with its piping filled from ``values`` (the record and the answers so far, as
    flat export columns); a field that is not in the data dictionary pipes blank."""
    raw = {key: "" if value is None else str(value) for key, value in values.items()}

    def option(match: re.Match) -> str:
        checked = raw.get(checkbox_column(match.group(1), match.group(2))) == "1"
        return "Checked" if checked else "Unchecked"

    text = _OPTION.sub(option, text)
    piped: dict[str, str] = {}
    for token in piping.tokens(text):
        name, _, modifier = token.partition(":")
        read, stored, label = _display(instrument, name, raw, today)
        piped[token] = {"value": stored, "label": label}.get(modifier, read)
    rendered = piping.render(text, piping.PipingContext(values=piped))
    return "\n".join(line.rstrip() for line in rendered.split("\n"))  # a blank pipe at the end


def _range(low: str, high: str, shown=lambda bound: bound) -> str:
    if low and high:
        return f" from {shown(low)} to {shown(high)}"
    if low:
        return f" of at least {shown(low)}"
    if high:
        return f" up to {shown(high)}"
    return ""


def _date_bound(order: str):
    def shown(bound: str) -> str:
        try:
            day = dt.date.fromisoformat(bound[:10])
        except ValueError:
            return bound
        return (dates.display_date(day, order) + bound[10:]).strip()

    return shown


def instructions(question: Question, *, values: Mapping[str, object], now: dt.datetime) -> str:
    """How to answer, in one short line (empty for free text)."""
    kind, validation = question.kind, question.validation
    low, high = bounds(question, values=values, now=now)
    if kind == "yesno":
        return "Reply YES or NO."
    if kind == "truefalse":
        return "Reply TRUE or FALSE."
    if kind in ("radio", "dropdown"):
        return "Reply with the number."
    if kind == "checkbox":
        numbers = [c.number for c in question.choices]
        example = ",".join(numbers[::2][:2]) if len(numbers) > 2 else ",".join(numbers)
        return f"Reply with the numbers of all that apply, like {example}."
    if kind == "slider":
        labels = question.slider_labels
        left = f" ({labels[0]})" if labels else ""
        right = f" ({labels[-1]})" if len(labels) > 1 else ""
        return f"Reply with a number from {low}{left} to {high}{right}."
    if validation == "integer":
        return f"Reply with a whole number{_range(low, high)}."
    if validation.startswith("number"):
        places = re.match(r"number_(\d)dp", validation)
        decimals = f" with {places.group(1)} decimal" if places else ""
        decimals += "s" if places and places.group(1) != "1" else ""
        comma = " Use a comma for decimals." if validation.endswith("comma_decimal") else ""
        return f"Reply with a number{decimals}{_range(low, high)}.{comma}"
    if validation in DATE_VALIDATIONS:
        order = validation[-3:]
        words = _range(low, high, _date_bound(order)).replace(" from ", " between ")
        words = words.replace(" to ", " and ") if " between " in words else words
        return f"Reply with the date as {dates.pattern(order)}{words}."
    if validation in DATETIME_VALIDATIONS or validation in DATETIME_SECONDS_VALIDATIONS:
        order = validation[-3:]
        return f"Reply with the date and time as {dates.pattern(order)} HH:MM."
    if validation == "time":
        return "Reply with the time as HH:MM, like 21:30."
    if validation == "email":
        return "Reply with an email address."
    if validation == "phone":
        return "Reply with a 10-digit phone number."
    if validation == "zipcode":
        return "Reply with a 5-digit ZIP code."
    return ""


def question_text(
    instrument: Instrument,
    question: Question,
    *,
    values: Mapping[str, object] | None = None,
    now: dt.datetime | None = None,
) -> str:
    """The text that asks ``question`` (or, for a descriptive field, informs)."""
    values = values or {}
    now = now or timezone.localtime().replace(tzinfo=None)
    today = now.date()
    lines = [render(question.label, instrument, values, today=today)]
    if question.note:
        lines.append(f"({render(question.note, instrument, values, today=today)})")
    if not question.asks:
        return "\n".join(line for line in lines if line)
    if question.kind in ("radio", "dropdown", "checkbox"):
        for choice in question.choices:
            label = render(choice.label, instrument, values, today=today)
            lines.append(f"{choice.number}) {label}")
    tail = [instructions(question, values=values, now=now)]
    if offers_default(question):
        chosen = default_answer(question, values=values, now=now)
        if chosen is not None:
            tail.append(f"Reply OK for {_answer_words(instrument, question, chosen, today)}.")
    if question.optional:
        tail.append("Reply SKIP to skip.")
    lines.append(" ".join(part for part in tail if part))
    return "\n".join(line for line in lines if line)


def _answer_words(instrument: Instrument, question: Question, answer, today: dt.date) -> str:
    if question.kind == "checkbox":
        labels = {c.code: c.label for c in question.choices}
        return ", ".join(labels.get(code, code) for code in answer.codes)
    if question.kind in ("radio", "dropdown", "yesno", "truefalse"):
        read, _, _ = _display(instrument, question.field, {question.field: answer.value}, today)
        return read
    if question.validation in DATE_VALIDATIONS:
        return dates.display_date(dt.date.fromisoformat(answer.value), question.validation[-3:])
    return answer.value
