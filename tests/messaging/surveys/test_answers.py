"""Replies read into what REDCap stores, forgiving as a coordinator expects; what does not fit
is explained, in REDCap's words where it has them."""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from messaging.surveys import answers
from messaging.surveys.answers import Answer, Invalid, parse_answer, with_answers
from messaging.surveys.dates import display_date
from tests.messaging.surveys.conftest import NOW, instrument_of, row


def ask(field, reply, *, values=None, now=NOW):
    question = instrument_of(field).questions[0]
    return parse_answer(question, reply, values=values, now=now)


def value(field, reply, **kwargs):
    result = ask(field, reply, **kwargs)
    assert isinstance(result, Answer), result
    return result.value


def why(field, reply, **kwargs):
    result = ask(field, reply, **kwargs)
    assert isinstance(result, Invalid), result
    return result.message


def text(validation="", **extra):
    return row("f", "text", text_validation_type_or_show_slider_number=validation, **extra)


YESNO = row("f", "yesno")
MOOD = row("f", "radio", select_choices_or_calculations="1, Very bad | 2, Bad | 3, OK | 4, Good")
FRUIT = row(
    "f", "dropdown", select_choices_or_calculations="A, Apple | B, Banana | C, Café au lait"
)
BARRIERS = row(
    "f",
    "checkbox",
    select_choices_or_calculations="1, Time | 2, Weather | 3, Health | 4, Bad knees | 99, Nothing",
    field_annotation="@NONEOFTHEABOVE='99' @MAXCHECKED=3",
)


# --- Coded answers -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "reply", ["Yes", "yes", "YES", "y", "Y", "1", " Yes ", "Yes.", "yes!", "Yeah", "yep"]
)
def test_yes_reads_as_1(reply):
    assert value(YESNO, reply) == "1"


@pytest.mark.parametrize("reply", ["Yes please", "yes, thank you!", "OK yes", "y thx"])
def test_yes_with_politeness_around_it_is_yes(reply):
    assert value(YESNO, reply) == "1"


@pytest.mark.parametrize(
    "reply", ["No", "n", "0", "NO.", "  no  ", "Nope", "No thanks", "no, sorry"]
)
def test_no_reads_as_0(reply):
    assert value(YESNO, reply) == "0"


@pytest.mark.parametrize(
    "reply", ["maybe", "2", "yes no", "yess", "no idea", "not sure", "yes but"]
)
def test_anything_else_to_yes_no_asks_for_yes_or_no(reply):
    assert why(YESNO, reply) == "Please reply YES or NO."


def test_true_false_takes_its_words_and_yes_no():
    field = row("f", "truefalse")
    assert [value(field, r) for r in ("True", "t", "yes", "1", "FALSE", "f", "no", "0")] == [
        "1", "1", "1", "1", "0", "0", "0", "0",
    ]  # fmt: skip
    assert why(field, "perhaps") == "Please reply TRUE or FALSE."


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("2", "2"),
        (" 2 ", "2"),
        ("2.", "2"),
        ("#2", "2"),
        ("2)", "2"),
        ("bad", "2"),
        ("Very  BAD", "1"),
        ("ok.", "3"),
    ],
)
def test_a_choice_is_its_number_its_code_or_its_label(reply, code):
    assert value(MOOD, reply) == code


def test_letter_codes_are_numbered_and_can_be_typed_too():
    assert value(FRUIT, "2") == "B"
    assert value(FRUIT, "b") == "B"
    assert value(FRUIT, "banana") == "B"
    assert value(FRUIT, "cafe au lait") == "C"  # accents do not matter
    assert why(FRUIT, "4") == "Please reply with one of the numbers shown: 1, 2, 3."


@pytest.mark.parametrize(
    ("reply", "codes"),
    [
        ("1,3", ("1", "3")),
        ("1, 3", ("1", "3")),
        ("1 3", ("1", "3")),
        ("3,1", ("1", "3")),
        ("1 and 3", ("1", "3")),
        ("1&3", ("1", "3")),
        ("time, health", ("1", "3")),
        ("Bad knees", ("4",)),  # a label with a space is one choice
        ("bad knees and time", ("1", "4")),
        ("2,2,2", ("2",)),
        ("99", ("99",)),
        ("1,3.", ("1", "3")),
    ],
)
def test_checkboxes_take_several_choices_however_they_are_joined(reply, codes):
    result = ask(BARRIERS, reply)
    assert isinstance(result, Answer)
    assert result.codes == codes
    assert result.value == ",".join(codes)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (
            "1,7",
            "“7” is not one of the choices. Reply with the numbers of all that apply, like 1,3.",
        ),
        ("1, sleep", "“sleep” is not one of the choices."),
        ("1,99", "“Nothing” cannot be chosen with other answers."),
        ("1,2,3,4", "Please choose at most 3."),
    ],
)
def test_checkbox_replies_that_do_not_fit_are_explained(reply, message):
    assert why(BARRIERS, reply).startswith(message)


def test_a_checkbox_answer_writes_every_option():
    question = instrument_of(BARRIERS).questions[0]
    answer = parse_answer(question, "1,3", now=NOW)
    assert answer.columns(question) == {
        "f___1": "1",
        "f___2": "0",
        "f___3": "1",
        "f___4": "0",
        "f___99": "0",
    }


# --- Numbers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "stored"),
    [
        ("7", "7"),
        ("+7", "7"),
        ("7.", "7"),
        ("07", "7"),
        ("7.0", "7"),
        ("7 hours", "7"),
        ("7h", "7"),
        ("about 7", "7"),
        ("seven", "7"),
        ("Twenty.", "20"),
        ("-3", "-3"),
        ("1,000", "1000"),
    ],
)
def test_integers_are_read_forgivingly(reply, stored):
    assert value(text("integer"), reply) == stored


@pytest.mark.parametrize("reply", ["7.5", "seven and a half", "7 or 8", "1,5", "1e3", "x7"])
def test_what_is_not_an_integer_gets_redcaps_words(reply):
    assert why(text("integer"), reply) == answers.NOT_AN_INTEGER


@pytest.mark.parametrize(
    ("reply", "stored"),
    [("7.5", "7.5"), ("7.50", "7.50"), (".5", ".5"), ("7.5 hrs", "7.5"), ("1,234.5", "1234.5")],
)
def test_numbers_are_read_with_a_point_for_decimals(reply, stored):
    assert value(text("number"), reply) == stored


def test_1_comma_5_in_a_point_decimal_field_is_not_read_as_1_point_5():
    message = why(text("number"), "1,5")
    assert message == f"{answers.NOT_A_NUMBER} Use a point for decimals, like 1.5."
    assert why(text("number"), "lots") == answers.NOT_A_NUMBER


def test_a_comma_decimal_field_reads_both_separators_and_stores_a_comma():
    assert value(text("number_comma_decimal"), "1,5") == "1,5"
    assert value(text("number_comma_decimal"), "1.5") == "1,5"
    assert value(text("number_2dp_comma_decimal"), "1,5") == "1,50"


def test_a_field_with_set_decimals_pads_them_and_refuses_more():
    assert value(text("number_1dp"), "70") == "70.0"
    assert value(text("number_2dp"), "70.5") == "70.50"
    assert why(text("number_1dp"), "70.25") == (
        f"{answers.BAD_FORMAT} Required format: Number (1 decimal place)."
    )


def test_numbers_outside_the_range_get_redcaps_words_with_the_range():
    field = text("number", text_validation_min="0", text_validation_max="24")
    assert value(field, "24") == "24"
    assert why(field, "25") == "The value you provided must be within the suggested range (0 - 24)."
    assert why(text("integer", text_validation_min="1"), "0") == (
        "The value you provided must be within the suggested range (1 - no limit)."
    )


def test_a_range_may_come_from_another_field():
    field = text("integer", text_validation_max="[cap]")
    assert why(field, "9", values={"cap": "8"}).endswith("(no limit - 8).")
    assert value(field, "9", values={"cap": ""}) == "9"  # a blank bound is no bound


@given(st.integers(-10_000, 10_000), st.integers(-10_000, 10_000), st.integers(-10_000, 10_000))
def test_any_integer_is_read_and_checked_against_its_range(number, low, high):
    assume(low <= high)
    field = text("integer", text_validation_min=str(low), text_validation_max=str(high))
    result = ask(field, str(number))
    if low <= number <= high:
        assert result == Answer("f", str(number))
    else:
        assert result == Invalid("f", f"{answers.OUT_OF_RANGE} ({low} - {high}).")


@given(st.decimals(-1000, 1000, places=3, allow_nan=False, allow_infinity=False))
def test_any_decimal_is_stored_as_written(number):
    written = format(number, "f")
    result = ask(text("number"), written)
    assert isinstance(result, Answer)
    assert Decimal(result.value) == number


@given(st.integers(0, 999), st.integers(0, 99))
def test_a_comma_is_never_a_decimal_point_in_a_point_decimal_field(whole, fraction):
    assert isinstance(ask(text("number"), f"{whole},{fraction}"), Invalid)
    assert value(text("number_comma_decimal"), f"{whole},{fraction}") == f"{whole},{fraction}"


# --- Dates and times ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("validation", "reply", "stored"),
    [
        ("date_mdy", "3/4/2026", "2026-03-04"),
        ("date_dmy", "3/4/2026", "2026-04-03"),
        ("date_mdy", "2026-03-04", "2026-03-04"),
        ("date_dmy", "2026-03-04", "2026-03-04"),
        ("date_ymd", "2026-03-04", "2026-03-04"),
        ("date_mdy", "03-04-2026", "2026-03-04"),
        ("date_mdy", "3.4.26", "2026-03-04"),
        ("date_mdy", "March 4, 2026", "2026-03-04"),
        ("date_dmy", "4 March 2026", "2026-03-04"),
        ("date_dmy", "4th of Mar 2026.", "2026-03-04"),
        ("date_ymd", "3/24/2026", "2026-03-24"),  # only one order makes a date
        ("date_ymd", "24/3/2026", "2026-03-24"),
        ("date_mdy", "today", "2026-03-10"),
        ("date_mdy", "Yesterday", "2026-03-09"),
        ("date_mdy", "6/15/90", "1990-06-15"),
        ("datetime_mdy", "3/4/2026 14:30", "2026-03-04 14:30"),
        ("datetime_mdy", "3/4/2026 at 2:30 pm", "2026-03-04 14:30"),
        ("datetime_dmy", "3/4/2026 2pm", "2026-04-03 14:00"),
        ("datetime_ymd", "2026-03-04 09:05", "2026-03-04 09:05"),
        ("datetime_seconds_mdy", "3/4/2026 14:30", "2026-03-04 14:30:00"),
        ("datetime_seconds_ymd", "2026-03-04 14:30:15", "2026-03-04 14:30:15"),
        ("time", "21:30", "21:30"),
        ("time", "9:30 pm", "21:30"),
        ("time", "9.30PM", "21:30"),
        ("time", "noon", "12:00"),
    ],
)
def test_dates_and_times_are_read_in_the_fields_own_order(validation, reply, stored):
    assert value(text(validation), reply) == stored


def test_3_4_2026_and_2026_03_04_in_a_date_mdy_field():
    assert value(text("date_mdy"), "3/4/2026") == value(text("date_mdy"), "2026-03-04")
    assert value(text("date_dmy"), "3/4/2026") != value(text("date_dmy"), "2026-03-04")


@pytest.mark.parametrize(
    ("validation", "reply", "label", "example"),
    [
        ("date_mdy", "2/30/2026", "Date (M-D-Y)", "03/10/2026"),
        ("date_dmy", "next week", "Date (D-M-Y)", "10/03/2026"),
        ("date_ymd", "3/4/2026", "Date (Y-M-D)", "2026-03-10"),  # either order: not guessed
        ("date_mdy", "3/4", "Date (M-D-Y)", "03/10/2026"),  # no year: not guessed
        ("datetime_mdy", "3/4/2026", "Datetime (M-D-Y H:M)", "03/10/2026 14:30"),
        (
            "datetime_seconds_dmy",
            "3/4/2026 25:00",
            "Datetime w/ seconds (D-M-Y H:M:S)",
            "10/03/2026 14:30",
        ),
    ],
)
def test_a_date_that_does_not_fit_gets_redcaps_words_and_the_format(
    validation, reply, label, example
):
    assert why(text(validation), reply) == (
        f"{answers.BAD_FORMAT} Required format: {label}, like {example}."
    )


@pytest.mark.parametrize("reply", ["25:00", "9:75", "later", "21"])
def test_a_time_that_does_not_fit_gets_redcaps_words(reply):
    assert why(text("time"), reply) == answers.BAD_TIME


def test_a_date_after_today_is_out_of_a_range_ending_today():
    field = text("date_mdy", text_validation_min="2026-01-01", text_validation_max="today")
    assert value(field, "3/10/2026") == "2026-03-10"
    assert why(field, "3/11/2026") == (
        "The value you provided must be within the suggested range (01/01/2026 - 03/10/2026)."
    )
    assert why(field, "12/31/2025").startswith(answers.OUT_OF_RANGE)


orders = st.sampled_from(["mdy", "dmy", "ymd"])
days = st.dates(dt.date(1931, 1, 1), dt.date(2035, 12, 31))


@given(days, orders)
def test_any_date_written_in_the_fields_order_or_year_first_is_read_back(day, order):
    field = text(f"date_{order}")
    assert value(field, day.isoformat()) == day.isoformat()
    written = display_date(day, order)
    if order == "ymd" or day.day > 12 or day.day == day.month:
        assert value(field, written) == day.isoformat()
    short = written.replace(str(day.year), str(day.year)[2:]) if order != "ymd" else None
    if short and day.year > 1936:  # two-digit years read as the latest not ten years ahead
        assert value(field, short) == day.isoformat()


@given(days)
def test_a_day_month_date_is_never_read_month_first_in_a_dmy_field(day):
    field = text("date_dmy")
    written = f"{day.day}/{day.month}/{day.year}"
    assert value(field, written) == day.isoformat()
    swapped = f"{day.month}/{day.day}/{day.year}"
    result = ask(field, swapped)
    if day.day <= 12:
        assert result == Answer("f", dt.date(day.year, day.day, day.month).isoformat())
    else:
        assert isinstance(result, Invalid)


@given(st.times())
def test_any_time_is_read_as_24_hour_and_as_am_pm(moment):
    field = text("time")
    stored = f"{moment.hour:02d}:{moment.minute:02d}"
    assert value(field, stored) == stored
    twelve = f"{moment.hour % 12 or 12}:{moment.minute:02d} {'am' if moment.hour < 12 else 'pm'}"
    assert value(field, twelve) == stored


# --- E-mail, phone, ZIP, slider ---------------------------------------------------------------
@pytest.mark.parametrize(
    "reply", ["casey@example.org", "c.smith+study@mail.example.co.uk", "Casey@Example.ORG."]
)
def test_email_addresses_are_kept_as_typed(reply):
    assert value(text("email"), reply) == reply.rstrip(".")


@pytest.mark.parametrize(
    "reply", ["casey@", "casey at example.org", "a..b@example.org", "@example.org", "casey@example"]
)
def test_bad_email_addresses_get_redcaps_words(reply):
    assert why(text("email"), reply) == answers.BAD_EMAIL


@pytest.mark.parametrize(
    ("reply", "stored"),
    [
        ("6155550142", "(615) 555-0142"),
        ("(615) 555-0142", "(615) 555-0142"),
        ("615.555.0142", "(615) 555-0142"),
        ("+1 615 555 0142", "(615) 555-0142"),
        ("1-615-555-0142", "(615) 555-0142"),
        ("615-555-0142 x12", "(615) 555-0142 x12"),
    ],
)
def test_phone_numbers_are_stored_as_redcap_formats_them(reply, stored):
    assert value(text("phone"), reply) == stored


@pytest.mark.parametrize(
    "reply", ["555-0142", "015-555-0142", "615-055-0142", "911-555-0142", "6155550142999"]
)
def test_numbers_redcap_would_refuse_get_its_words(reply):
    assert why(text("phone"), reply) == answers.BAD_PHONE


def test_zip_codes_of_5_or_9_digits():
    assert value(text("zipcode"), "37203") == "37203"
    assert value(text("zipcode"), "372031234") == "37203-1234"
    assert value(text("zipcode"), "37203-1234") == "37203-1234"
    assert why(text("zipcode"), "3720") == answers.BAD_ZIP


def test_a_slider_takes_a_whole_number_in_its_range():
    slider = row("f", "slider", select_choices_or_calculations="Low | High")
    assert value(slider, "50") == "50"
    assert value(slider, "50%") == "50"
    assert why(slider, "50.5") == answers.NOT_AN_INTEGER
    assert why(slider, "101") == f"{answers.OUT_OF_RANGE} (0 - 100)."
    narrow = row("f", "slider", text_validation_min="1", text_validation_max="10")
    assert why(narrow, "0") == f"{answers.OUT_OF_RANGE} (1 - 10)."


# --- Free text, empty replies, emoji ----------------------------------------------------------
def test_free_text_is_kept_as_typed_trimmed():
    assert value(text(), "  Walked the dog.  ") == "Walked the dog."
    assert value(row("f", "notes"), "Line one\nLine two") == "Line one\nLine two"
    assert value(text(), "Niño's café") == "Niño's café"


def test_free_text_over_the_limits_is_refused():
    limit = text(field_annotation="@CHARLIMIT=10")
    assert value(limit, "0123456789") == "0123456789"
    assert why(limit, "01234567890") == "Please keep your answer to 10 characters (it has 11)."
    words = row("f", "notes", field_annotation="@WORDLIMIT=3")
    assert why(words, "one two three four") == "Please keep your answer to 3 words."
    assert why(row("f", "notes"), "x" * 65_536) == (
        "That answer is too long for REDCap: please keep it to 65,535 characters."
    )
    assert value(row("f", "notes"), "x" * 65_535) == "x" * 65_535


@pytest.mark.parametrize(
    "field", [YESNO, MOOD, BARRIERS, text(), text("integer"), text("date_mdy")]
)
@pytest.mark.parametrize("reply", ["", "   ", "\n"])
def test_an_empty_reply_is_not_an_answer(field, reply):
    assert why(field, reply) == answers.EMPTY


@pytest.mark.parametrize("field", [YESNO, MOOD, text(), row("f", "notes")])
@pytest.mark.parametrize("reply", ["👍", "yes 👍", "Fine ☺", "❤️", "2️⃣", "🙂🙂"])
def test_emoji_are_refused(field, reply):
    assert why(field, reply) == answers.NO_EMOJI


@given(st.text(max_size=60))
def test_any_reply_is_an_answer_or_an_explanation(reply):
    for field in (
        YESNO,
        MOOD,
        BARRIERS,
        text(),
        text("integer"),
        text("number_1dp"),
        text("date_dmy"),
        text("datetime_mdy"),
        text("time"),
        text("email"),
        text("phone"),
        text("zipcode"),
        row("f", "slider"),
    ):
        result = ask(field, reply)
        assert isinstance(result, Answer | Invalid)
        if isinstance(result, Invalid):
            assert result.message


# --- SKIP and OK --------------------------------------------------------------------------------
def test_skip_skips_an_optional_question_only():
    assert ask(MOOD, "Skip.") == Answer("f", "", skipped=True)
    assert ask(text(), "SKIP") == Answer("f", "", skipped=True)
    assert why({**MOOD, "required_field": "y"}, "skip") == answers.NEEDS_ANSWER
    question = instrument_of(BARRIERS).questions[0]
    assert Answer("f", "", skipped=True).columns(question) == {}


def test_ok_takes_the_default_read_like_a_reply():
    sport = row("f", "radio", select_choices_or_calculations="1, Walk | 2, Run | 3, Swim")
    field = {**sport, "field_annotation": "@DEFAULT='3'"}
    assert ask(field, "OK") == Answer("f", "3")
    assert ask(field, "okay.") == Answer("f", "3")
    assert ask(field, "2") == Answer("f", "2")
    assert why(sport, "ok") == "Please reply with one of the numbers shown: 1, 2, 3."  # no default
    piped = text("date_mdy", field_annotation="@DEFAULT='[visit]'")
    assert ask(piped, "ok", values={"visit": "2026-03-01"}) == Answer("f", "2026-03-01")
    broken = text("integer", field_annotation="@DEFAULT='many'")
    assert why(broken, "ok") == answers.NOT_AN_INTEGER  # a default that does not fit is no default


def test_a_choice_labelled_ok_is_chosen_by_ok_even_with_a_default():
    assert ask({**MOOD, "field_annotation": "@DEFAULT='1'"}, "OK") == Answer("f", "3")


def test_a_descriptive_field_takes_no_answer():
    question = instrument_of(row("f", "descriptive")).questions[0]
    with pytest.raises(ValueError, match="descriptive"):
        parse_answer(question, "hello", now=NOW)


def test_answers_so_far_are_laid_over_the_record():
    instrument = instrument_of(BARRIERS, {**MOOD, "field_name": "g"})
    merged = with_answers(
        {"f___1": "1", "g": "4", "other": None},
        instrument,
        {"f": Answer("f", "", skipped=True), "g": Answer("g", "2")},
    )
    assert merged == {
        "f___1": "0",
        "f___2": "0",
        "f___3": "0",
        "f___4": "0",
        "f___99": "0",
        "g": "2",
        "other": "",
    }
