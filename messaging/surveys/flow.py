"""Which question comes next: form order, branching logic evaluated on the answers so far.

Branching reads the record's stored values with the answers of this conversation laid over them
(``answers.with_answers``), through ``projects.logic``: the same evaluator as filter logic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from django.utils import timezone

from messaging.surveys.fields import Instrument, Question


def is_shown(
    question: Question,
    values: Mapping[str, object],
    *,
    now: dt.datetime | None = None,
    missing_codes: Collection[str] = (),
    events: Mapping[str, Mapping[str, object]] | None = None,
) -> bool:
    """Whether REDCap would show the question: no branching logic, or logic that is true."""
    if question.branching is None:
        return True
    return question.branching.evaluate(
        values,
        events=events,
        now=now or timezone.localtime().replace(tzinfo=None),
        missing_codes=missing_codes,
    )


def next_question(
    instrument: Instrument,
    values: Mapping[str, object],
    *,
    after: str | None = None,
    now: dt.datetime | None = None,
    missing_codes: Collection[str] = (),
    events: Mapping[str, Mapping[str, object]] | None = None,
) -> Question | None:
    """The first question after the field ``after`` (from the start when None) whose branching
    logic holds for ``values``; None when the survey is done. Descriptive fields are returned
    too: send them, then ask for the next one after them."""
    questions = instrument.questions
    start = 0
    if after is not None:
        names = [q.field for q in questions]
        start = names.index(after) + 1
    for question in questions[start:]:
        if is_shown(question, values, now=now, missing_codes=missing_codes, events=events):
            return question
    return None
