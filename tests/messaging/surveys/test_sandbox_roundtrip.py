"""The engine against the REDCap sandbox over live HTTP: an instrument read from REDCap, a diary
answered question by question and written back as it goes, the check-in written whole."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from messaging.surveys.answers import Answer, parse_answer, with_answers
from messaging.surveys.flow import next_question
from messaging.surveys.load import instrument_load
from messaging.surveys.writeback import import_row, next_instance
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.services.links import redcap_client_for
from tests.projects.conftest import longitudinal_project  # noqa: F401 (a fixture)

NOW = dt.datetime(2026, 3, 10, 19, 30)
pytestmark = pytest.mark.django_db(transaction=True)


def test_instruments_are_read_from_redcap_with_what_repeats(linked_project):
    checkin = instrument_load(project=linked_project, instrument="text_checkin")
    assert checkin.label == "Text check-in" and not checkin.repeating
    assert [s.field for s in checkin.refused] == ["tc_photo"]
    assert checkin.question("tc_intro").kind == "descriptive"  # descriptive fields included
    assert checkin.record_fields == {"first_name"}
    diary = instrument_load(project=linked_project, instrument="daily_diary")
    assert diary.repeating and diary.label == "Daily diary"
    with pytest.raises(ValidationError, match="“diary” is not an instrument of this REDCap"):
        instrument_load(project=linked_project, instrument="diary")


def test_a_longitudinal_project_needs_an_event_that_holds_the_instrument(longitudinal_project):  # noqa: F811
    with pytest.raises(ValidationError, match="choose the event the survey belongs to"):
        instrument_load(project=longitudinal_project, instrument="weekly_checkin")
    with pytest.raises(ValidationError, match="does not have the instrument “Weekly check-in”"):
        instrument_load(
            project=longitudinal_project, instrument="weekly_checkin", event="baseline_arm_1"
        )
    weekly = instrument_load(
        project=longitudinal_project, instrument="weekly_checkin", event="week_1_arm_1"
    )
    assert not weekly.repeating
    assert [q.field for q in weekly.asked][:2] == ["wk_goal_met", "wk_barrier"]


def test_a_diary_answered_by_text_is_written_to_a_new_instance_as_it_goes(linked_project):
    client = redcap_client_for(linked_project)
    diary = instrument_load(project=linked_project, instrument="daily_diary")
    record = "4"

    def day(replies):
        rows = client.records(records=[record], fields=[diary.record_id_field, "dd_walked"])
        instance = next_instance(diary, rows)
        answers, after, sent = {}, None, []
        while True:
            values = with_answers({}, diary, answers)
            question = next_question(diary, values, after=after, now=NOW)
            if question is None:
                break
            for reply in replies.pop(question.field):
                result = parse_answer(question, reply, values=values, now=NOW)
                sent.append((question.field, reply, type(result).__name__))
                if isinstance(result, Answer):
                    break
            answers[question.field] = result
            # each answer reaches REDCap as it arrives
            row = import_row(
                diary, record_id=record, answers={question.field: result}, instance=instance
            )
            assert client.import_records([row]) == 1
            after = question.field
        done = import_row(diary, record_id=record, answers={}, instance=instance, complete=True)
        client.import_records([done])
        return instance, sent

    first, sent = day(
        {
            "dd_walked": ["Yes."],
            "dd_minutes": ["about half an hour", "30 minutes"],  # one invalid answer
            "dd_mood": ["good"],
            "dd_note": ["SKIP"],
        }
    )
    assert sent == [
        ("dd_walked", "Yes.", "Answer"),
        ("dd_minutes", "about half an hour", "Invalid"),
        ("dd_minutes", "30 minutes", "Answer"),
        ("dd_mood", "good", "Answer"),
        ("dd_note", "SKIP", "Answer"),
    ]
    second, sent = day({"dd_walked": ["n"], "dd_mood": ["2"], "dd_note": ["Rain all day"]})
    assert [field for field, _, _ in sent] == ["dd_walked", "dd_mood", "dd_note"]  # no minutes
    assert (first, second) == (1, 2)

    rows = client.records(
        records=[record], fields=["dd_walked", "dd_minutes", "dd_mood", "dd_note"]
    )
    diary_rows = [r for r in rows if r.get("redcap_repeat_instrument") == "daily_diary"]
    assert [
        (r["redcap_repeat_instance"], r["dd_walked"], r["dd_minutes"], r["dd_mood"], r["dd_note"])
        for r in diary_rows
    ] == [("1", "1", "30", "4", ""), ("2", "0", "", "2", "Rain all day")]
    instances = store.instance_rows(SANDBOX_PROJECTS[101], record=record)
    completes = [values["daily_diary_complete"] for _, _, values in instances]
    assert completes == ["2", "2"]


def test_a_whole_checkin_is_written_as_redcap_stores_it(linked_project):
    client = redcap_client_for(linked_project)
    checkin = instrument_load(project=linked_project, instrument="text_checkin")
    replies = {
        "tc_walked": "y",
        "tc_walk_days": "3",
        "tc_rested": "true",
        "tc_mood": "4",
        "tc_activity": "cycling",
        "tc_barriers": "1 and 3",
        "tc_health_note": "A cold.",
        "tc_sleep_hours": "7.5 hours",
        "tc_weight": "70",
        "tc_last_checkup": "11/3/2025",
        "tc_next_visit": "4/2/2026 at 2:30 pm",
        "tc_bedtime": "10:45pm",
        "tc_email": "avery@example.org",
        "tc_alt_phone": "+1 615 555 0142",
        "tc_zip": "37203",
        "tc_stress": "35",
        "tc_contact_by": "OK",
        "tc_comments": "Thanks!",
    }
    answers = {}
    for name, reply in replies.items():
        question = checkin.question(name)
        result = parse_answer(question, reply, values=with_answers({}, checkin, answers), now=NOW)
        assert isinstance(result, Answer), (name, result)
        answers[name] = result
    assert (
        client.import_records([import_row(checkin, record_id="1", answers=answers, complete=True)])
        == 1
    )
    [row] = client.records(records=["1"], fields=[*replies, "tc_barriers", "text_checkin_complete"])
    assert {k: row[k] for k in row if k.startswith("tc_") or k.endswith("_complete")} == {
        "tc_walked": "1",
        "tc_walk_days": "3",
        "tc_rested": "1",
        "tc_mood": "4",
        "tc_activity": "3",
        "tc_barriers___1": "1",
        "tc_barriers___2": "0",
        "tc_barriers___3": "1",
        "tc_barriers___4": "0",
        "tc_barriers___99": "0",
        "tc_health_note": "A cold.",
        "tc_sleep_hours": "7.5",
        "tc_weight": "70.0",
        "tc_last_checkup": "2025-11-03",
        "tc_next_visit": "2026-04-02 14:30",
        "tc_bedtime": "22:45",
        "tc_email": "avery@example.org",
        "tc_alt_phone": "(615) 555-0142",
        "tc_zip": "37203",
        "tc_stress": "35",
        "tc_contact_by": "1",
        "tc_comments": "Thanks!",
        "text_checkin_complete": "2",
    }


def test_a_repeating_row_must_say_which_instance(diary):
    with pytest.raises(ValueError, match="daily_diary repeats"):
        import_row(diary, record_id="1", answers={})
    assert (
        next_instance(
            diary,
            [
                {"redcap_repeat_instrument": "daily_diary", "redcap_repeat_instance": 3},
                {"redcap_repeat_instrument": "", "redcap_repeat_instance": ""},
            ],
        )
        == 4
    )
