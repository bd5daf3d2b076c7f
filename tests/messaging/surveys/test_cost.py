"""The most a text survey can cost, in texts and segments, for the rule form to show."""

from messaging.surveys.cost import survey_cost
from tests.messaging.surveys.conftest import NOW, instrument_of, row


def small():
    return instrument_of(
        row("intro", "descriptive", "Welcome!"),
        row("q1", "yesno", "Walked?"),
        row("q2", "text", "Why?", branching_logic="[q1] = '0'"),
    )


def test_every_question_every_retry_and_each_text_count_once():
    cost = survey_cost(small(), retries=2, now=NOW)
    # no intro, invalid, reminder or ending: each question 1 + 2 re-asks, the descriptive 1
    assert cost.texts == 1 + 3 + 3
    full = survey_cost(
        small(),
        intro="Hi! Reply YES to start.",
        invalid="Sorry, that did not fit.",
        reminder="Still there?",
        closing="Thanks!",
        expiry="The survey has closed.",
        retries=2,
        now=NOW,
    )
    # intro + descriptive + 2 questions x (1 + 2 x (invalid + question)) + reminder + one ending
    assert full.texts == 1 + 1 + 2 * 5 + 1 + 1
    assert [(line.what, line.texts) for line in full.lines] == [
        ("Intro", 1),
        ("Information intro", 1),
        ("Question q1", 5),
        ("Question q2", 5),
        ("Reminder", 1),
        ("Closing or expiry text", 1),
    ]
    assert full.segments == full.texts  # every text here fits in one segment
    assert survey_cost(small(), retries=0, now=NOW).texts == 3


def test_segments_grow_with_long_or_unicode_questions_and_piping():
    long_label = "How was it? " * 20  # over 160 characters: two segments each time it is sent
    cost = survey_cost(instrument_of(row("q", "notes", long_label)), retries=1, now=NOW)
    assert cost.texts == 2 and cost.segments == 2 * 2
    unicode = survey_cost(instrument_of(row("q", "notes", "¿Cómo está? " * 6)), retries=0, now=NOW)
    assert unicode.segments == 2  # "ó" is not GSM-7: UCS-2 holds 70 characters a segment
    piped = instrument_of(row("name", form="contact"), row("q", "notes", "x" * 130 + " [name]"))
    assert survey_cost(piped, retries=0, now=NOW).segments == 2  # a piped value counts 30
    ending = survey_cost(small(), closing="Bye", expiry="x" * 200, retries=0, now=NOW)
    assert ending.lines[-1].segments == 2  # the longer of the two endings


def test_the_demo_checkin_costs_what_the_form_will_show(checkin):
    cost = survey_cost(checkin, invalid="Sorry, that answer did not fit.", retries=2, now=NOW)
    asked = len(checkin.asked)
    informed = len(checkin.questions) - asked
    assert cost.texts == asked * 5 + informed
    assert cost.segments >= cost.texts
