import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.segments import GSM7_BASIC, GSM7_EXTENSION, count

BASIC = "".join(sorted(GSM7_BASIC))
EXTENSION = "".join(sorted(GSM7_EXTENSION))
EMOJI = "\N{GRINNING FACE}"

basic_text = st.text(alphabet=BASIC, max_size=1700)
gsm_text = st.text(alphabet=BASIC + EXTENSION, max_size=900)
any_text = st.text(alphabet=BASIC + EXTENSION + "çáé’" + EMOJI + "中", max_size=600)


def test_the_tables_have_the_published_sizes():
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10


def test_an_empty_text_is_zero_segments_of_gsm7():
    result = count("")
    assert (result.encoding, result.segments, result.characters) == ("GSM-7", 0, 0)
    assert result.first_ucs2_char is None


@pytest.mark.parametrize(
    "length, segments", [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm7_uses_160_alone_and_153_per_part(length, segments):
    result = count("a" * length)
    assert result.encoding == "GSM-7"
    assert result.segments == segments
    assert result.characters == length


def test_units_per_segment_and_remaining_follow_the_segment_size():
    assert (count("a" * 150).units_per_segment, count("a" * 150).remaining) == (160, 10)
    assert (count("a" * 161).units_per_segment, count("a" * 161).remaining) == (153, 145)


@pytest.mark.parametrize(
    "length, segments", [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)]
)
def test_ucs2_uses_70_alone_and_67_per_part(length, segments):
    result = count("á" + "é" * (length - 1))
    assert result.encoding == "UCS-2"
    assert result.segments == segments
    assert result.characters == length


def test_an_extension_character_counts_two_septets():
    assert count("€" * 80).segments == 1
    assert count("€" * 80).characters == 160
    assert count("a" + "€" * 80).segments == 2


def test_an_extension_character_is_never_split_across_segments():
    # 306 septets would fit two parts exactly, but the euro at septets 153-154 moves to part 2.
    text = "a" * 152 + "€" + "a" * 152
    assert count(text).characters == 306
    assert count(text).segments == 3
    assert count("a" * 151 + "€" + "a" * 153).segments == 2


def test_a_surrogate_pair_counts_two_units_and_is_never_split():
    assert count(EMOJI).characters == 2
    assert count("é" * 68 + EMOJI).segments == 1  # 70 units
    assert count("é" * 69 + EMOJI).segments == 2  # 71 units
    # 134 units would fit two parts exactly, but the emoji at units 67-68 moves to part 2.
    assert count("é" * 66 + EMOJI + "é" * 66).segments == 3
    assert count("é" * 65 + EMOJI + "é" * 67).segments == 2


def test_one_non_gsm_character_switches_the_whole_text_to_ucs2():
    text = "Reminder: your visit is tomorrow at 9am. Reply STOP to opt out"
    assert count(text).encoding == "GSM-7"
    curly = text.replace("Reply", "Don’t forget. Reply")
    result = count(curly)
    assert result.encoding == "UCS-2"
    assert result.first_ucs2_char == "’"
    assert result.segments == 2  # 80 characters: one GSM-7 segment would have held it


def test_lower_case_c_cedilla_is_not_gsm7_but_upper_case_is():
    assert count("Ç").encoding == "GSM-7"
    assert count("ç").encoding == "UCS-2"
    assert count("ç").ucs2_chars == ("ç",)


@pytest.mark.parametrize("char", ["á", "í", "ó", "ú", "â", "ê", "`", "\u00a0", "’", "“"])
def test_common_look_alikes_are_not_gsm7(char):
    assert count(char).encoding == "UCS-2"


def test_extension_characters_count_one_unit_once_in_ucs2():
    result = count("€" * 10 + "ç")
    assert (result.encoding, result.characters) == ("UCS-2", 11)


def test_it_lists_each_ucs2_forcing_character_once_in_order():
    assert count("ça ça 😀 ç").ucs2_chars == ("ç", EMOJI)


@given(basic_text)
def test_basic_gsm_text_matches_the_closed_form(text):
    n = len(text)
    expected = 0 if n == 0 else 1 if n <= 160 else math.ceil(n / 153)
    assert count(text).segments == expected
    assert count(text).characters == n


@given(gsm_text, st.sampled_from(BASIC + EXTENSION))
def test_gsm_segments_never_decrease_as_text_grows(text, char):
    assert count(text + char).segments >= count(text).segments


@given(any_text, st.sampled_from(BASIC + EXTENSION + "ç" + EMOJI))
def test_segments_never_decrease_when_a_character_is_appended(text, char):
    assert count(text + char).segments >= count(text).segments


@given(any_text)
def test_segments_stay_within_the_packing_bounds(text):
    result = count(text)
    single = 160 if result.encoding == "GSM-7" else 70
    per_part = single - (7 if result.encoding == "GSM-7" else 3)
    if result.characters <= single:
        assert result.segments == (1 if text else 0)
    else:
        # Never fewer than a perfect packing, and at most one unit is wasted per part.
        assert result.segments >= math.ceil(result.characters / per_part)
        assert result.segments <= math.ceil(result.characters / (per_part - 1))
    assert 0 <= result.remaining < result.units_per_segment or not text


@given(any_text)
def test_the_encoding_is_gsm7_exactly_when_every_character_is(text):
    result = count(text)
    all_gsm = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    assert (result.encoding == "GSM-7") == all_gsm
    assert (result.first_ucs2_char is None) == all_gsm
