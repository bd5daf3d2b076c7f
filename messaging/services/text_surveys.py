"""A text-survey rule's settings (docs/redcap.md, "Text surveys"): the rule of kind "text
survey" and its ``TextSurvey``. On every save the instrument is read from REDCap's data
dictionary (each field askable or refused, with its reason) and the worst-case cost computed;
a survey with nothing to ask is refused. The conversations themselves: ``conversations.py``.
"""

from __future__ import annotations

import contextvars
import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from messaging import keywords
from messaging.models import MessageRule, TextSurvey
from messaging.surveys.cost import survey_cost
from messaging.surveys.fields import Instrument
from messaging.surveys.load import instrument_load
from projects.access import EDITOR, project_role_require
from projects.models import Project

SURVEY_FIELDS = (
    "closing_text",
    "invalid_text",
    "start",
    "start_word",
    "time_limit",
    "reminder_before",
    "reminder_text",
    "expiry_text",
    "max_invalid",
)

# Set while text_survey_rule_save saves the rule (its TextSurvey is written just after).
_SAVING_SETTINGS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "saving_text_survey", default=False
)


def text_survey_settings_given(rule: MessageRule) -> bool:
    """Whether a text-survey rule has (or is being saved with) its TextSurvey: ``rule_save``
    alone (the REST API) cannot make one."""
    if _SAVING_SETTINGS.get():
        return True
    return rule.pk is not None and TextSurvey.objects.filter(rule_id=rule.pk).exists()


def _survey_errors(survey: TextSurvey) -> dict[str, str]:
    errors: dict[str, str] = {}
    if survey.time_limit is None or survey.time_limit <= datetime.timedelta(0):
        errors["time_limit"] = "Give the time a participant has to finish, like 24 hours."
    elif survey.time_limit > datetime.timedelta(days=30):
        errors["time_limit"] = "Use a time limit of at most 30 days."
    if survey.reminder_before is not None:
        if survey.reminder_before <= datetime.timedelta(0):
            errors["reminder_before"] = "Send the reminder some time before the survey expires."
        elif survey.time_limit and survey.reminder_before >= survey.time_limit:
            errors["reminder_before"] = (
                "The reminder must come after the survey starts: use less than the time limit."
            )
        if not survey.reminder_text.strip():
            errors["reminder_text"] = "Write the reminder, or leave “remind before” empty."
    if survey.start == TextSurvey.Start.WORD:
        word = survey.start_word.strip()
        if not word or " " in word:
            errors["start_word"] = "Give one start word, like YES."
        elif keywords.classify(word, survey_open=True) in (
            keywords.Keyword.STOP,
            keywords.Keyword.HELP,
        ):
            errors["start_word"] = f"“{word}” means STOP or HELP to every provider: choose another."
    if survey.max_invalid > 5:
        errors["max_invalid"] = "Allow at most 5 answers that do not fit."
    return errors


def text_survey_inspect(
    *, project: Project, instrument: str, event: str, survey: TextSurvey, intro: str
) -> tuple[Instrument, Any]:
    """The instrument read from REDCap and the worst-case cost (ValidationError in words)."""
    if not instrument:
        raise ValidationError({"instrument": "Choose the REDCap instrument to ask."})
    try:
        read = instrument_load(project=project, instrument=instrument, event=event)
    except ValidationError as exc:
        raise ValidationError({"instrument": " ".join(exc.messages)}) from exc
    if not read.asked:
        refused = "; ".join(str(s) for s in read.refused) or "it has no fields"
        raise ValidationError(
            {
                "instrument": f"No field of “{read.label or instrument}” can be asked by text "
                f"({refused})."
            }
        )
    cost = survey_cost(
        read,
        intro=intro,
        closing=survey.closing_text,
        invalid=survey.invalid_text,
        reminder=survey.reminder_text if survey.reminder_before else "",
        expiry=survey.expiry_text,
        retries=survey.max_invalid,
    )
    return read, cost


def text_survey_rule_save(
    *,
    project: Project,
    actor,
    data: dict[str, Any],
    survey_data: dict[str, Any],
    rule: MessageRule | None = None,
) -> MessageRule:
    """Create or edit a text-survey rule: the rule itself (``rules.rule_save``: recipients,
    schedule, the intro as its body) and its ``TextSurvey``. The instrument is read again from
    REDCap on every save."""
    from messaging.services.rules import rule_save

    project_role_require(user=actor, project=project, min_role=EDITOR, doing="change its messages")
    data = {**data, "kind": MessageRule.Kind.TEXT_SURVEY}
    survey = getattr(rule, "text_survey", None) if rule is not None else None
    survey = survey or TextSurvey()
    for name in SURVEY_FIELDS:
        if name in survey_data:
            value = survey_data[name]
            if value is None and name.endswith(("_text", "_word", "start")):
                value = ""
            setattr(survey, name, value)
    survey.start_word = (survey.start_word or "").strip().upper()
    if survey.max_invalid is None:
        survey.max_invalid = 2
    errors = _survey_errors(survey)
    if errors:
        raise ValidationError(errors)
    instrument = data.get("instrument", rule.instrument if rule else "")
    event = data.get("event", rule.event if rule else "") or ""
    read, cost = text_survey_inspect(
        project=project,
        instrument=instrument,
        event=event,
        survey=survey,
        intro=data.get("body", rule.body if rule else ""),
    )
    survey.metadata = [dict(row) for row in read.dictionary.values()]
    survey.repeating = read.repeating
    survey.label = read.label
    survey.events = None
    if event:
        survey.events = sorted({event} | set(survey.events or []))
    survey.askable = [q.field for q in read.questions]
    survey.refused = [str(s) for s in read.refused]
    survey.cost_texts, survey.cost_segments = cost.texts, cost.segments
    token = _SAVING_SETTINGS.set(True)
    try:
        with transaction.atomic():
            saved = rule_save(project=project, actor=actor, data=data, rule=rule)
            survey.rule = saved
            survey.save()
    finally:
        _SAVING_SETTINGS.reset(token)
    return saved
