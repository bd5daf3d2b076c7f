"""Message rules are validated before they are saved, in words a coordinator understands."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from messaging.models import MessageRule
from messaging.services import rules
from portal.models import AuditEvent

Kind, Schedule = MessageRule.Kind, MessageRule.Schedule


def data(**overrides):
    base = {
        "kind": Kind.REMINDER,
        "name": "Weekly reminder",
        "body": "Hi [first_name], please fill in this week's check-in: [survey-link]",
        "instrument": "weekly_checkin",
        "event": "",
        "recipients": MessageRule.Recipients.ALL,
        "filter_logic": "",
        "record_ids": [],
        "schedule": Schedule.RECURRING,
        "send_time": datetime.time(10, 0),
        "once_date": None,
        "recur_days": [0],
        "start_date": timezone.now().date(),
        "until_date": timezone.now().date() + datetime.timedelta(days=60),
        "max_occurrences": None,
        "date_field": "",
        "offset_days": 0,
        "stop_when_complete": True,
        "max_sends": None,
    }
    base.update(overrides)
    return base


def save(project, actor, **overrides):
    return rules.rule_save(project=project, actor=actor, data=data(**overrides))


def errors_of(project, actor, **overrides):
    with pytest.raises(ValidationError) as exc:
        save(project, actor, **overrides)
    assert not MessageRule.objects.exists()
    return exc.value.message_dict


def test_a_valid_reminder_is_saved_as_a_draft_and_audited(mapped_project, researcher):
    rule = save(mapped_project, researcher)
    assert rule.status == MessageRule.Status.DRAFT
    assert AuditEvent.objects.filter(
        action="message_rule.created", project_id=mapped_project.pk
    ).exists()


def test_an_empty_body_is_refused(mapped_project, researcher):
    assert "Write the text" in errors_of(mapped_project, researcher, body="  ")["body"][0]


def test_unknown_piping_fields_are_refused_with_the_allowed_ones(mapped_project, researcher):
    message = errors_of(mapped_project, researcher, body="Hi [first_name], your [diagnosis] visit")[
        "body"
    ][0]
    assert "[diagnosis]" in message and "[first_name]" in message


def test_a_survey_invitation_must_contain_a_survey_link(mapped_project, researcher):
    message = errors_of(
        mapped_project, researcher, kind=Kind.INVITATION, body="Please do the survey"
    )["body"][0]
    assert "[survey-link]" in message


def test_a_schedule_in_the_past_is_refused(mapped_project, researcher):
    yesterday = timezone.now().date() - datetime.timedelta(days=1)
    message = errors_of(mapped_project, researcher, schedule=Schedule.ONCE, once_date=yesterday)
    assert "in the past" in message["once_date"][0]


def test_an_end_before_the_start_is_refused(mapped_project, researcher):
    start = timezone.now().date() + datetime.timedelta(days=10)
    message = errors_of(
        mapped_project, researcher, start_date=start, until_date=start - datetime.timedelta(days=3)
    )
    assert "before the start" in message["until_date"][0]


def test_a_relative_schedule_on_a_non_date_field_is_refused(mapped_project, researcher):
    message = errors_of(mapped_project, researcher, schedule=Schedule.RELATIVE, date_field="tz")
    assert "not one of the project's date fields" in message["date_field"][0]


def test_a_recipient_filter_redcap_rejects_is_refused_with_its_message(mapped_project, researcher):
    message = errors_of(
        mapped_project,
        researcher,
        recipients=MessageRule.Recipients.FILTER,
        filter_logic="[sms_consent] = = '1'",
    )
    assert "REDCap rejected this filter" in message["filter_logic"][0]


def test_a_survey_link_for_an_instrument_that_is_not_a_survey_is_refused(
    mapped_project, researcher
):
    message = errors_of(mapped_project, researcher, instrument="contact")
    assert "is not a survey" in message["instrument"][0]


def test_an_unknown_instrument_is_refused(mapped_project, researcher):
    assert (
        "no instrument named"
        in errors_of(mapped_project, researcher, instrument="nope")["instrument"][0]
    )


def test_a_body_over_1600_characters_after_piping_is_refused(mapped_project, researcher):
    message = errors_of(mapped_project, researcher, body="x" * 1580 + " [first_name] [survey-link]")
    assert "1,600" in message["body"][0]


def test_activation_validates_again_and_pausing_is_audited(mapped_project, researcher):
    rule = save(mapped_project, researcher)
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    rules.rule_set_status(rule=rule, status=MessageRule.Status.PAUSED, actor=researcher)
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"message_rule.active", "message_rule.paused"} <= actions
