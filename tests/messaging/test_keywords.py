import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.keywords import HELP_WORDS, START_WORDS, STOP_WORDS, Keyword, classify, normalise

STOP, START, HELP = Keyword.STOP, Keyword.START, Keyword.HELP


@pytest.mark.parametrize(
    "text",
    [
        "STOP",
        "stop",
        "Stop.",
        "stop!",
        "  STOP!!! ",
        "STOPALL",
        "stop all",
        "UNSUBSCRIBE",
        "Cancel",
        "END",
        "quit",
        "REVOKE",
        "OPTOUT",
        "opt out",
        "Opt-Out",
        "opt_out",
        "REMOVE",
        "ARRET",
        "Arrêt",
        "TD",
        "ＳＴＯＰ",
        "Stop 🛑",
        "'stop'",
    ],
)
def test_the_per_se_opt_out_words_are_stop(text):
    assert classify(text) == STOP


@pytest.mark.parametrize(
    "text",
    [
        "please stop",
        "STOP please",
        "Stop it",
        "stop now!",
        "stop texting me",
        "Please stop texting me.",
        "stop sending me messages",
        "stop the reminders",
        "quit texting me",
        "no more texts",
        "No more messages please",
        "don't text me",
        "Don’t text me anymore",
        "do not contact me",
        "never message me again",
        "take me off the list",
        "remove me",
        "Remove me from this list",
        "unsubscribe me",
        "opt me out",
        "I want to opt out",
        "leave me alone",
        "wrong number",
    ],
)
def test_short_phrases_a_reasonable_person_reads_as_opting_out_are_stop(text):
    assert classify(text) == STOP


@pytest.mark.parametrize(
    "text",
    [
        "I can't stop smoking",
        "don't stop",
        "when does the study end?",
        "I quit",  # good news in a smoking-cessation study
        "I quit smoking last week",
        "Cancel my appointment on Tuesday",
        "stop by the clinic tomorrow",
        "the pain doesn't stop",
        "Thanks!",
        "ok",
        "",
        "   ",
        "!!!",
    ],
)
def test_sentences_that_merely_contain_a_keyword_are_conversation(text):
    assert classify(text) is None


def test_stop_is_honoured_during_an_open_survey():
    assert classify("STOP", survey_open=True) == STOP
    assert classify("please stop texting me", survey_open=True) == STOP


@pytest.mark.parametrize("text", ["START", "start", "Unstop", "start again please"])
def test_start_and_unstop_are_start_always(text):
    assert classify(text) == START
    assert classify(text, survey_open=True) == START


def test_yes_is_start_only_when_no_text_survey_is_open():
    assert classify("Yes") == START
    assert classify("YES!") == START
    assert classify("yes", survey_open=True) is None


@pytest.mark.parametrize("text", ["HELP", "help?", "Info", "help me", "I need help", "info please"])
def test_help_and_info_are_help(text):
    assert classify(text) == HELP
    assert classify(text, survey_open=True) == HELP


def test_a_long_message_is_never_a_keyword():
    assert classify("stop " + "please " * 12) is None


def test_normalise_folds_case_accents_apostrophes_and_punctuation():
    assert normalise("  Don’t  TEXT—me, ARRÊT!! ") == "dont text me arret"


def _random_case(draw, word):
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if flip else c.lower() for c, flip in zip(word, flips, strict=True))


@st.composite
def dressed(draw, words):
    word = draw(st.sampled_from(words))
    spaces = st.text(alphabet=" \t\n", max_size=3)
    punctuation = st.text(alphabet=".!?,;:", max_size=3)
    return draw(spaces) + _random_case(draw, word) + draw(punctuation) + draw(spaces)


@given(dressed(STOP_WORDS), st.booleans())
def test_stop_words_survive_any_casing_spacing_and_punctuation(text, survey_open):
    assert classify(text, survey_open=survey_open) == STOP


@given(dressed(START_WORDS))
def test_start_words_survive_any_casing_spacing_and_punctuation(text):
    assert classify(text) == START


@given(dressed(HELP_WORDS))
def test_help_words_survive_any_casing_spacing_and_punctuation(text):
    assert classify(text) == HELP


@given(st.text(max_size=200), st.booleans())
def test_any_text_classifies_without_error(text, survey_open):
    assert classify(text, survey_open=survey_open) in (None, STOP, START, HELP)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", max_size=80))
def test_text_without_a_keyword_word_is_conversation(text):
    words = set(normalise(text).split())
    keyword_words = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke"}
    keyword_words |= {"optout", "opt", "remove", "arret", "td", "start", "unstop", "yes"}
    keyword_words |= {"help", "info", "dont", "no", "take", "unsubscribe", "leave", "wrong"}
    keyword_words |= {"never", "do", "i", "need"}
    if not words & keyword_words:
        assert classify(text) is None
