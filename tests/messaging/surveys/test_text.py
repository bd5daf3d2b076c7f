"""A question as the participant reads it: piping filled, numbered choices, how to answer."""

import pytest

from messaging import segments
from messaging.surveys.text import question_text
from tests.messaging.surveys.conftest import NOW, instrument_of, row


def test_the_demo_questions_read_as_texts(checkin):
    values = {"first_name": "Avery", "tc_mood": "2", "tc_last_checkup": "2025-11-03"}

    def asked(name):
        return question_text(checkin, checkin.question(name), values=values, now=NOW)

    assert asked("tc_intro") == "Hi Avery, a few quick questions about your week."
    assert asked("tc_walked") == "Did you go for a walk this week?\nReply YES or NO."
    assert asked("tc_walk_days") == (
        "On how many days did you walk?\nReply with a whole number from 1 to 7. Reply SKIP to skip."
    )
    assert asked("tc_mood") == (
        "How was your mood this week?\n1) Very bad\n2) Bad\n3) OK\n4) Good\n5) Very good\n"
        "Reply with the number. Reply SKIP to skip."
    )
    assert asked("tc_mood_why").startswith("You said your mood was Bad. What made it so?")
    assert asked("tc_barriers").endswith(
        "99) Nothing\nReply with the numbers of all that apply, like 1,3. Reply SKIP to skip."
    )
    assert asked("tc_sleep_hours").endswith("Reply with a number from 0 to 24.")
    assert asked("tc_weight").endswith(
        "Reply with a number with 1 decimal from 30 to 300. Reply SKIP to skip."
    )
    assert asked("tc_last_checkup").endswith(
        "Reply with the date as MM/DD/YYYY up to 03/10/2026. Reply SKIP to skip."
    )
    assert asked("tc_next_visit").endswith(
        "Reply with the date and time as MM/DD/YYYY HH:MM. Reply SKIP to skip."
    )
    assert asked("tc_stress").endswith(
        "Reply with a number from 0 (Not at all) to 100 (Extremely). Reply SKIP to skip."
    )
    assert asked("tc_contact_by").endswith(
        "Reply with the number. Reply OK for Text. Reply SKIP to skip."
    )
    assert asked("tc_comments") == "Anything else you would like to tell us?\nReply SKIP to skip."


def test_every_demo_question_stays_gsm_7(checkin, diary):
    for instrument in (checkin, diary):
        for question in instrument.questions:
            text = question_text(instrument, question, values={"first_name": "Avery"}, now=NOW)
            assert segments.count(text).encoding == segments.GSM7, text


def test_piping_reads_labels_codes_dates_and_checkboxes():
    instrument = instrument_of(
        row("mood", "radio", select_choices_or_calculations="1, Low | 2, High"),
        row("seen", "text", text_validation_type_or_show_slider_number="date_ymd"),
        row("why", "checkbox", select_choices_or_calculations="1, Time | 2, Rain | 3, Pain"),
        row(
            "f",
            "notes",
            "Mood [mood] ([mood:value], [mood:label]) on [seen]; [why]; rain: [why(2)], "
            "pain: [why(3)]; [unknown] [event-label]",
            field_note="Seen [seen:value]",
        ),
    )
    values = {"mood": "2", "seen": "2026-03-04", "why___1": "1", "why___2": "1", "why___3": "0"}
    text = question_text(instrument, instrument.question("f"), values=values, now=NOW)
    assert text == (
        "Mood High (2, High) on Wed, Mar 4; Time, Rain; rain: Checked, pain: Unchecked;\n"
        "(Seen 2026-03-04)\nReply SKIP to skip."
    )


def test_piped_values_never_pipe_again():
    instrument = instrument_of(row("a"), row("f", label="You said: [a]"))
    text = question_text(instrument, instrument.question("f"), values={"a": "[b]"}, now=NOW)
    assert text.startswith("You said: [b]")


@pytest.mark.parametrize(
    ("field", "line"),
    [
        (row("f", "yesno", required_field="y"), "Reply YES or NO."),
        (row("f", "truefalse", required_field="y"), "Reply TRUE or FALSE."),
        (
            row(
                "f",
                text_validation_type_or_show_slider_number="integer",
                text_validation_min="0",
                required_field="y",
            ),
            "Reply with a whole number of at least 0.",
        ),
        (
            row(
                "f",
                text_validation_type_or_show_slider_number="number",
                text_validation_max="9",
                required_field="y",
            ),
            "Reply with a number up to 9.",
        ),
        (
            row(
                "f",
                text_validation_type_or_show_slider_number="number_comma_decimal",
                required_field="y",
            ),
            "Reply with a number. Use a comma for decimals.",
        ),
        (
            row(
                "f",
                text_validation_type_or_show_slider_number="date_dmy",
                text_validation_min="2026-01-01",
                text_validation_max="2026-12-31",
                required_field="y",
            ),
            "Reply with the date as DD/MM/YYYY between 01/01/2026 and 31/12/2026.",
        ),
        (
            row("f", text_validation_type_or_show_slider_number="date_ymd", required_field="y"),
            "Reply with the date as YYYY-MM-DD.",
        ),
        (
            row("f", text_validation_type_or_show_slider_number="time", required_field="y"),
            "Reply with the time as HH:MM, like 21:30.",
        ),
        (
            row("f", text_validation_type_or_show_slider_number="email", required_field="y"),
            "Reply with an email address.",
        ),
        (
            row("f", text_validation_type_or_show_slider_number="phone", required_field="y"),
            "Reply with a 10-digit phone number.",
        ),
        (
            row("f", text_validation_type_or_show_slider_number="zipcode", required_field="y"),
            "Reply with a 5-digit ZIP code.",
        ),
        (
            row("f", "checkbox", select_choices_or_calculations="1, A | 2, B", required_field="y"),
            "Reply with the numbers of all that apply, like 1,2.",
        ),
    ],
)
def test_each_kind_says_how_to_answer_and_a_required_one_offers_no_skip(field, line):
    instrument = instrument_of(field)
    assert question_text(instrument, instrument.questions[0], now=NOW).endswith("\n" + line)


def test_a_descriptive_field_is_its_text_alone():
    instrument = instrument_of(
        row("f", "descriptive", "<p>Thank you, <b>[first_name]</b>!</p>"), row("first_name")
    )
    assert (
        question_text(instrument, instrument.questions[0], values={"first_name": "Avery"}, now=NOW)
        == "Thank you, Avery!"
    )


def test_a_default_that_does_not_fit_is_not_offered():
    instrument = instrument_of(
        row(
            "f",
            text_validation_type_or_show_slider_number="integer",
            field_annotation="@DEFAULT='[n]'",
        ),
        row("n"),
    )
    question = instrument.question("f")
    assert "Reply OK for 4." in question_text(instrument, question, values={"n": "4"}, now=NOW)
    assert "Reply OK" not in question_text(instrument, question, values={"n": "x"}, now=NOW)
