""" "Chosen records" accepts only record ids REDCap has, and names the ones it does not
(messaging/services/rules.py, `_records_missing`): the web form, the API and activation all go
through the rule validation service, which asks the project's REDCap (the live sandbox here)."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from messaging.models import MessageRule
from messaging.services import rules
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS

Recipients = MessageRule.Recipients


def _data(record_ids: list[str]) -> dict:
    return {
        "kind": MessageRule.Kind.REMINDER,
        "name": "Chosen few",
        "body": "Hi [first_name], a note from the study team.",
        "recipients": Recipients.RECORDS,
        "record_ids": record_ids,
        "schedule": MessageRule.Schedule.MANUAL,
        "send_time": datetime.time(10, 0),
    }


def test_record_ids_redcap_does_not_have_are_named_and_nothing_is_saved(mapped_project, researcher):
    with pytest.raises(ValidationError) as exc:
        rules.rule_save(project=mapped_project, actor=researcher, data=_data(["1", "999", "abc"]))
    message = exc.value.message_dict["record_ids"][0]
    assert message.startswith("REDCap has no records “999” and “abc”.")
    assert "“1”" not in message
    assert not MessageRule.objects.exists()


def test_one_missing_record_is_named_in_the_singular(mapped_project, researcher):
    with pytest.raises(ValidationError) as exc:
        rules.rule_save(project=mapped_project, actor=researcher, data=_data(["2", "70"]))
    assert exc.value.message_dict["record_ids"][0].startswith("REDCap has no record “70”.")


def test_many_missing_records_are_summed_up_after_ten(mapped_project, researcher):
    wanted = [str(n) for n in range(100, 115)]
    with pytest.raises(ValidationError) as exc:
        rules.rule_save(project=mapped_project, actor=researcher, data=_data(wanted))
    assert "“109” and 5 more." in exc.value.message_dict["record_ids"][0]


def test_record_ids_that_exist_are_saved(mapped_project, researcher):
    rule = rules.rule_save(project=mapped_project, actor=researcher, data=_data(["1", "2", "25"]))
    assert rule.record_ids == ["1", "2", "25"]


def test_a_record_deleted_since_stops_the_rule_being_activated(mapped_project, researcher):
    rule = rules.rule_save(project=mapped_project, actor=researcher, data=_data(["1", "3"]))
    with store._lock:  # the record is deleted in REDCap
        store._rows[101] = {k: v for k, v in store._rows[101].items() if k[0] != "3"}
    with pytest.raises(ValidationError) as exc:
        rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    assert "REDCap has no record “3”." in exc.value.message_dict["record_ids"][0]
    rule.refresh_from_db()
    assert rule.status == MessageRule.Status.DRAFT


def test_the_rule_form_shows_the_missing_records_and_keeps_what_was_typed(
    mapped_project, researcher, as_user
):
    assert SANDBOX_PROJECTS[101]  # the live sandbox answers for the project
    response = as_user(researcher).post(
        reverse("rule-create", args=[mapped_project.pk]),
        {
            "kind": "reminder",
            "name": "Chosen few",
            "body": "Hi [first_name], a note from the study team.",
            "recipients": "records",
            "record_ids": "1, 999, abc",
            "schedule": "once",
            "once_date": (timezone.now() + datetime.timedelta(days=3)).date().isoformat(),
            "send_time": "10:00",
            "offset_days": "0",
        },
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["record_ids"] == [
        "REDCap has no records “999” and “abc”. Use record ids that exist in REDCap (the "
        "Participants page lists them)."
    ]
    assert "1, 999, abc" in response.content.decode()
    assert not MessageRule.objects.exists()
