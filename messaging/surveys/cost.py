"""What a text survey can cost at most, in texts and in segments, for the rule form to show.

The worst case sends every question (each branch taken), and every answerable question meets
``retries`` invalid answers, each answered with the invalid-answer text and the question again
(two texts; a conversation that joins them into one text costs less, never more). The intro
and the reminder count once each, and the closing or the expiry text once (a conversation
finishes or expires, not both). Replies to HELP are not counted: the participant asks for them.

Piping is counted at ``PIPED_CHARACTERS`` characters a value (the length the rule check allows a
piped value; a piped free-text answer may be longer) and the question's own characters decide
its encoding (docs/sms-encoding.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from messaging import piping, segments
from messaging.surveys.answers import checkbox_column, offers_default
from messaging.surveys.fields import Instrument, Question, parse_choices
from messaging.surveys.text import question_text

PIPED_CHARACTERS = 30


@dataclass(frozen=True)
class CostLine:
    what: str  # "Intro", "Question bl_mood", "Invalid-answer text", ...
    texts: int
    segments: int


@dataclass(frozen=True)
class SurveyCost:
    texts: int
    segments: int
    lines: tuple[CostLine, ...]


def _worst_segments(text: str) -> int:
    """Segments with every piped value at its allowed length."""
    filler = "x" * PIPED_CHARACTERS
    return segments.count(piping.TOKEN_RE.sub(filler, text)).segments


def _filler(instrument: Instrument) -> dict[str, str]:
    """Values that pipe at their longest: every field a full-length value, every checkbox option
    checked."""
    values: dict[str, str] = {}
    for name, row in instrument.dictionary.items():
        values[name] = "x" * PIPED_CHARACTERS
        if row.get("field_type") == "checkbox":
            for code, _ in parse_choices("checkbox", row.get("select_choices_or_calculations", "")):
                values[checkbox_column(name, code)] = "1"
    return values


def _question_segments(
    instrument: Instrument, question: Question, filler: dict[str, str], now: dt.datetime
) -> int:
    text = question_text(instrument, question, values=filler, now=now)
    if offers_default(question) and "Reply OK for" not in text:
        text += " Reply OK for " + "x" * PIPED_CHARACTERS + "."  # a default piped from the record
    return segments.count(text).segments


def survey_cost(
    instrument: Instrument,
    *,
    intro: str = "",
    closing: str = "",
    invalid: str = "",
    reminder: str = "",
    expiry: str = "",
    retries: int = 2,
    now: dt.datetime | None = None,
) -> SurveyCost:
    """The most texts (and segments) one conversation can send. ``retries`` is how many invalid
    answers to one question are answered before the question is skipped or the conversation
    ends."""
    now = now or dt.datetime(2026, 1, 1, 12, 0)  # any fixed moment: dates only change examples
    lines: list[CostLine] = []
    if intro.strip():
        lines.append(CostLine("Intro", 1, _worst_segments(intro)))
    invalid_segments = _worst_segments(invalid) if invalid.strip() else 0
    filler = _filler(instrument)
    for question in instrument.questions:
        each = _question_segments(instrument, question, filler, now)
        if not question.asks:
            lines.append(CostLine(f"Information {question.field}", 1, each))
            continue
        again = retries * (1 + (1 if invalid.strip() else 0))
        lines.append(
            CostLine(
                f"Question {question.field}",
                1 + again,
                each * (1 + retries) + invalid_segments * (retries if invalid.strip() else 0),
            )
        )
    if reminder.strip():
        lines.append(CostLine("Reminder", 1, _worst_segments(reminder)))
    # A conversation either finishes (closing text) or expires (expiry text), never both.
    endings = [_worst_segments(body) for body in (closing, expiry) if body.strip()]
    if endings:
        lines.append(CostLine("Closing or expiry text", 1, max(endings)))
    return SurveyCost(
        texts=sum(line.texts for line in lines),
        segments=sum(line.segments for line in lines),
        lines=tuple(lines),
    )
