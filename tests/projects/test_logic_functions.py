"""The branching subset beyond comparisons: arithmetic and REDCap's special functions.

The reference table gives what REDCap answers for each expression (its special-functions
reference and the datediff/round/sum definitions summarised in docs/redcap.md, "Branching
logic"), with the clock fixed at 2026-03-10 15:00.
"""

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projects.logic import (
    Arith,
    Call,
    Compare,
    Expression,
    Field,
    Literal,
    LogicError,
    Negate,
    Truthy,
    evaluate,
    fields_used,
    parse,
)

NOW = dt.datetime(2026, 3, 10, 15, 0)
RECORD = {
    "dob": "1990-06-15",
    "visit": "2026-03-01",
    "visit_at": "2026-03-01 08:30",
    "weight": "70",
    "height": "1.75",
    "a": "2",
    "b": "3",
    "blank": "",
    "text": "Walking daily",
    "neg": "-2.5",
    "missing": "UNK",
    "bed": "22:15",
    "wake": "06:45",
    "cb___1": "1",
    "cb___2": "0",
    "cb___3": "1",
}


def check(logic: str) -> bool:
    return evaluate(logic, RECORD, now=NOW, missing_codes={"UNK", "NA"})


@pytest.mark.parametrize(
    ("logic", "expected"),
    [
        # datediff: unsigned by default, signed on request, the date-format argument ignored
        ("datediff([visit], 'today', 'd') = 9", True),
        ("datediff('today', [visit], 'd') = 9", True),
        ("datediff('today', [visit], 'd', true) = -9", True),
        ("datediff([visit], 'today', 'd', true) = 9", True),
        ("datediff([visit], 'today', 'd', 'ymd') = 9", True),
        ("datediff('today', [visit], 'd', 'mdy', true) = -9", True),
        ("datediff('today', [visit], 'd', 'dmy', 'true') = -9", True),
        ("datediff('today', [visit], 'd', false) = 9", True),
        ("datediff('2024-02-28', '2024-03-01', 'd') = 2", True),  # a leap day
        ("datediff('2025-02-28', '2025-03-01', 'd') = 1", True),
        ("datediff([visit], [visit_at], 'h') = 8.5", True),  # a date reads as midnight
        ("datediff([visit_at], 'today', 'd') = 9", True),  # 'today' compares dates only
        ("datediff([visit_at], 'now', 'h') = 222.5", True),
        ("datediff([visit_at], 'now', 'm') = 13350", True),
        ("datediff([visit_at], 'now', 's') = 801000", True),
        ("datediff([bed], [wake], 'h') = 15.5", True),  # two times of day
        ("datediff([dob], 'today', 'y') > 35", True),  # 35.73 years: no rounding
        ("datediff([dob], 'today', 'y') >= 36", False),
        ("round(datediff('2026-01-01', '2026-03-02', 'M'), 2) = 1.97", True),  # 30.44-day months
        ("round(datediff('2025-03-10', '2026-03-10', 'y'), 4) = 0.9993", True),  # 365.2425 days
        ("datediff([blank], 'today', 'd') > 0", False),  # blank date: NaN, so false
        ("datediff([blank], 'today', 'd') < 0", False),
        ("datediff([missing], 'today', 'd') >= 0", False),  # a missing-data code is blank
        ("datediff('2026-02-30', 'today', 'd') >= 0", False),  # not a date
        # arithmetic, with REDCap's precedence
        ("[a] + [b] * 2 = 8", True),
        ("([a] + [b]) * 2 = 10", True),
        ("[b] - [a] - 1 = 0", True),  # left to right
        ("12 / [a] / [b] = 2", True),
        ("-[a] = -2", True),
        ("-(-[a]) = 2", True),
        ("[weight] / ([height] * [height]) > 22.8", True),
        ("round([weight] / ([height] * [height]), 1) = 22.9", True),
        ("[a] + [blank] > 0", False),  # a blank side makes the result blank
        ("[a] + [blank] < 1000", False),
        ("[a] + [text] > 0", False),
        ("1 / 0 > 0", False),
        ("1 / 0 < 1", False),
        ("[cb(1)] + [cb(2)] + [cb(3)] >= 2", True),
        # sum, mean, median, min, max skip blanks and text
        ("sum([a], [b], [blank], [text]) = 5", True),
        ("sum([blank]) >= 0", False),  # nothing to add up: NaN
        ("mean([a], [b]) = 2.5", True),
        ("median([a], [b], 10) = 3", True),
        ("median([a], [b], 10, 20) = 6.5", True),
        ("min([a], [b], [blank]) = 2", True),
        ("max([a], [b], [neg]) = 3", True),
        ("sum([cb(1)], [cb(2)], [cb(3)]) = 2", True),
        # rounding: to nearest (halves away from zero), up, down
        ("round(2.5) = 3", True),
        ("round(-2.5) = -3", True),
        ("round(14.384, 1) = 14.4", True),
        ("roundup(14.384, 1) = 14.4", True),
        ("rounddown(14.384, 1) = 14.3", True),
        ("roundup(2.001) = 3", True),
        ("rounddown(2.999) = 2", True),
        ("round(1234.5, -2) = 1200", True),
        ("round([blank]) >= 0", False),
        ("abs([neg]) = 2.5", True),
        ("abs(-7.1) = 7.1", True),
        # if
        ("if([a] = 2, 'yes', 'no') = 'yes'", True),
        ("if([a] > 5, 1, 0) = 0", True),
        ("if([blank] = '', [b], [a]) = 3", True),
        ("if([a] = 2 and [b] = 3, if([cb(2)] = '1', 'x', 'y'), 'z') = 'y'", True),
        ("if([a], 1, 0) = 1", True),  # a bare value as the condition
        # missing data codes, type checks, text
        ("isblankormissingcode([blank])", True),
        ("isblankormissingcode([missing])", True),
        ("isblankormissingcode([a])", False),
        ("not(isblankormissingcode([a]))", True),
        ("isblankormissingcode([absent_field])", True),
        ("isnumber([neg]) and not(isnumber([text]))", True),
        ("isinteger([a]) and not(isinteger([height]))", True),
        ("contains([text], 'WALK')", True),
        ("not_contain([text], 'run')", True),
        ("starts_with([text], 'walking')", True),
        ("ends_with([text], 'Daily')", True),
        ("ends_with([text], 'walk')", False),
        # checkboxes
        ("[cb(1)] = '1' and [cb(2)] = '0'", True),
        ("[cb(3)]", True),
        ("[cb(2)]", False),
    ],
)
def test_it_gives_what_redcap_gives(logic, expected):
    assert check(logic) is expected


def test_missing_data_codes_are_only_blank_when_the_project_defines_them():
    assert evaluate("isblankormissingcode([missing])", RECORD, now=NOW) is False
    assert evaluate("datediff([missing], 'today', 'd') >= 0", RECORD, now=NOW) is False


def test_today_follows_the_clock_it_is_given():
    logic = "datediff([visit], 'today', 'd') > 30"
    assert evaluate(logic, RECORD, now=dt.datetime(2026, 3, 31, 23, 59)) is False
    assert evaluate(logic, RECORD, now=dt.datetime(2026, 4, 1, 0, 0)) is True


def test_the_tree_keeps_redcaps_precedence():
    assert parse("[a] + [b] * 2 > 1").tree == Compare(
        ">",
        Arith("+", Field("a"), Arith("*", Field("b"), Literal("2", quoted=False))),
        Literal("1", quoted=False),
    )
    assert parse("-[a] - -1").tree == Truthy(
        Arith("-", Negate(Field("a")), Literal("-1", quoted=False))
    )
    assert parse("DateDiff([a], 'today', 'd') > 1").tree.left == Call(
        "datediff", (Field("a"), Literal("today"), Literal("d"))
    )


def test_fields_inside_functions_and_arithmetic_are_found():
    logic = (
        "datediff([dob], [visit_date], 'y') >= 18 "
        "and sum([q1], [q2(3)]) + [q3] > if([x] = 1, [y], 0)"
    )
    assert fields_used(logic) == {"dob", "visit_date", "q1", "q2", "q3", "x", "y"}
    assert parse(logic).functions == {"datediff", "sum", "if"}
    with pytest.raises(LogicError, match=r"Unknown field: \[q3\]"):
        parse(logic, fields={"dob", "visit_date", "q1", "q2", "x", "y"})


# --- Properties -----------------------------------------------------------------------------
small = st.decimals(-1000, 1000, places=2, allow_nan=False, allow_infinity=False)
names = st.sampled_from(["a", "b", "c"])
leaves = st.one_of(
    names.map(Field),
    st.integers(-50, 50).map(lambda n: Literal(str(n), quoted=False)),
    small.map(lambda d: Literal(str(d), quoted=False)),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Arith, st.sampled_from(["+", "-", "*", "/"]), inner, inner),
        inner.map(Negate),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: Call("sum", tuple(items))),
        st.builds(lambda x: Call("abs", (x,)), inner),
        st.builds(
            lambda x, n: Call("round", (x, Literal(str(n), quoted=False))),
            inner,
            st.integers(0, 3),
        ),
    ),
    max_leaves=6,
)
records = st.fixed_dictionaries(
    {"a": small.map(str), "b": st.one_of(st.just(""), small.map(str)), "c": small.map(str)}
)


@given(values, values, records)
def test_printing_and_parsing_arithmetic_keeps_the_tree_and_its_value(left, right, record):
    expression = Expression(source="", tree=Compare("<=", left, right))
    again = parse(str(expression))
    assert again.tree == expression.tree
    assert again.evaluate(record, now=NOW) == expression.evaluate(record, now=NOW)


@given(small, small, st.sampled_from(["+", "-", "*"]))
def test_arithmetic_on_numbers_is_exact_decimal_arithmetic(x, y, op):
    expected = {"+": x + y, "-": x - y, "*": x * y}[op]
    record = {"x": str(x), "y": str(y), "z": str(expected)}
    assert evaluate(f"[x] {op} [y] = [z]", record, now=NOW)
    assert not evaluate(f"[x] {op} [y] <> [z]", record, now=NOW)


dates = st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31))


@given(dates, dates)
def test_datediff_in_days_is_the_calendar_difference_and_signs_only_on_request(first, second):
    record = {"d1": first.isoformat(), "d2": second.isoformat()}
    days = (second - first).days
    assert evaluate(f"datediff([d1], [d2], 'd', true) = {days}", record, now=NOW)
    assert evaluate(f"datediff([d1], [d2], 'd') = {abs(days)}", record, now=NOW)
    assert evaluate(f"datediff([d2], [d1], 'd', true) = {-days}", record, now=NOW)
    assert evaluate("datediff([d1], [d2], 'h') = datediff([d1], [d2], 'd') * 24", record, now=NOW)


@given(small, small)
def test_rounding_down_and_up_bracket_the_number(x, places):
    record = {"x": str(x), "p": str(int(places) % 4)}
    assert evaluate("rounddown([x], [p]) <= [x] and [x] <= roundup([x], [p])", record, now=NOW)
    assert evaluate("rounddown([x], [p]) <= round([x], [p])", record, now=NOW)
    assert evaluate("round([x], [p]) <= roundup([x], [p])", record, now=NOW)


@given(st.lists(st.one_of(st.just(""), small.map(str), st.just("text")), min_size=1, max_size=6))
def test_sum_skips_blanks_and_text(items):
    record = {f"v{i}": value for i, value in enumerate(items)}
    logic = "sum(" + ", ".join(f"[v{i}]" for i in range(len(items))) + ")"
    numbers = [Decimal(v) for v in items if v not in ("", "text")]
    if numbers:
        assert evaluate(f"{logic} = {sum(numbers)}", record, now=NOW)
    else:
        assert not evaluate(f"{logic} >= 0", record, now=NOW)
        assert not evaluate(f"{logic} < 0", record, now=NOW)


@given(st.booleans(), small, small)
def test_if_picks_one_side(condition, yes, no):
    record = {"c": "1" if condition else "0", "y": str(yes), "n": str(no)}
    expected = yes if condition else no
    assert evaluate(f"if([c] = '1', [y], [n]) = {expected}", record, now=NOW)
