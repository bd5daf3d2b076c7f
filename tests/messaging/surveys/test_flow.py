"""Which question comes next: form order, and branching on the answers so far."""

import datetime as dt

from messaging.surveys.answers import Answer, parse_answer, with_answers
from messaging.surveys.flow import is_shown, next_question
from tests.messaging.surveys.conftest import NOW


def walk(instrument, replies, *, record=None, now=NOW):
    """Answer the survey with ``replies`` (by field) and return the fields asked, in order."""
    record = dict(record or {})
    answers, asked, after = {}, [], None
    while (
        question := next_question(
            instrument, with_answers(record, instrument, answers), after=after, now=now
        )
    ) is not None:
        asked.append(question.field)
        after = question.field
        if question.asks:
            result = parse_answer(
                question,
                replies.get(question.field, "skip"),
                values=with_answers(record, instrument, answers),
                now=now,
            )
            assert isinstance(result, Answer), (question.field, result)
            answers[question.field] = result
    return asked, answers


def test_branches_follow_the_answers_so_far(checkin):
    asked, _ = walk(
        checkin,
        {
            "tc_walked": "no",
            "tc_mood": "4",
            "tc_activity": "1",
            "tc_barriers": "1,2",
            "tc_sleep_hours": "7",
            "tc_last_checkup": "1/5/2026",
        },
    )
    assert "tc_walk_days" not in asked  # only after a walk
    assert "tc_mood_why" not in asked  # only after a bad mood
    assert "tc_activity_other" not in asked
    assert "tc_health_note" not in asked  # only when health got in the way
    assert "tc_checkup_due" not in asked  # the check-up was this year
    asked, answers = walk(
        checkin,
        {
            "tc_walked": "yes",
            "tc_walk_days": "3",
            "tc_mood": "1",
            "tc_activity": "5",
            "tc_barriers": "3",
            "tc_sleep_hours": "7",
            "tc_last_checkup": "1/5/2024",
        },
    )
    assert {
        "tc_walk_days",
        "tc_mood_why",
        "tc_activity_other",
        "tc_health_note",
        "tc_checkup_due",
    } <= set(asked)
    assert answers["tc_walk_days"].value == "3"
    assert asked[0] == "tc_intro" and asked[-1] == "tc_comments"


def test_a_datediff_branch_follows_the_clock(checkin):
    question = checkin.question("tc_checkup_due")
    values = {"tc_last_checkup": "2025-03-01"}
    assert not is_shown(question, values, now=dt.datetime(2026, 3, 1))
    assert is_shown(question, values, now=dt.datetime(2026, 3, 3))
    assert not is_shown(question, {}, now=NOW)  # no date, no branch


def test_the_record_values_count_for_branching(diary):
    assert next_question(diary, {"dd_walked": "1"}, after="dd_walked").field == "dd_minutes"
    assert next_question(diary, {"dd_walked": "0"}, after="dd_walked").field == "dd_mood"
    assert next_question(diary, {}, after="dd_note") is None
    assert next_question(diary, {}).field == "dd_walked"
