from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projects.logic import (
    REDCAP_LOGIC_ERROR,
    And,
    Compare,
    Expression,
    Field,
    Literal,
    LogicError,
    Not,
    Or,
    Truthy,
    compare,
    evaluate,
    fields_used,
    parse,
)

PERSON = {
    "record_id": "7",
    "sms_consent": "1",
    "phone": "6155550101",
    "age": "42",
    "score": "7.50",
    "tz": "",
    "enrolled": "2026-03-01",
    "optout___1": "0",
    "optout___2": "1",
    "name": "Avery",
}


# --- Evaluating -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("logic", "expected"),
    [
        ("[sms_consent] = '1'", True),
        ("[sms_consent] = 1", True),
        ('[sms_consent] = "1"', True),
        ("[sms_consent] = '0'", False),
        ("[sms_consent] <> '0'", True),
        ("[sms_consent] != '1'", False),
        ("[age] > 40", True),
        ("[age] >= 42", True),
        ("[age] < 42", False),
        ("[age] <= 42", True),
        ("[age] > 5", True),  # numeric, not text ('42' < '5' as text)
        ("[score] = 7.5", True),  # '7.50' and 7.5 are the same number
        ("[score] > -1", True),
        ("[name] = 'Avery'", True),
        ("[name] = 'avery'", False),  # text compares case-sensitively
        ("[name] > 'Adam'", True),
        ("[enrolled] < '2026-04-01'", True),  # ISO dates order as text
        ("[enrolled] >= '2026-03-02'", False),
        ("[tz] = ''", True),
        ('[tz] = ""', True),
        ("[phone] <> ''", True),
        ("[missing_field] = ''", True),  # absent reads as blank
        ("[tz] = 0", False),  # blank is not zero
        ("[tz] < 5", False),  # <, >, <=, >= with a blank side are false
        ("[tz] > 5", False),
        ("[tz] <= ''", False),
        ("[tz] >= 0", False),
        ("[optout(1)] = '1'", False),
        ("[optout(2)] = '1'", True),
        ("[optout(1)]", False),
        ("[optout(2)]", True),
        ("[tz]", False),
        ("[sms_consent] = '1' and [age] > 50", False),
        ("[sms_consent] = '1' or [age] > 50", True),
        ("[sms_consent] = '1' AND [optout(1)] <> '1'", True),
        ("not [sms_consent] = '1'", False),
        ("NOT([sms_consent] = '0')", True),
        ("not ([age] > 50 or [tz] <> '')", True),
        ("[age] > 50 or [age] < 50 and [tz] <> ''", False),  # and binds tighter than or
        ("([age] > 50 or [age] < 50) and [tz] = ''", True),
        ("not not [age] = 42", True),
    ],
)
def test_it_evaluates_the_common_subset_like_redcap(logic, expected):
    assert evaluate(logic, PERSON) is expected


def test_it_reads_values_that_are_not_strings():
    assert evaluate("[age] = 42 and [flag] = ''", {"age": 42, "flag": None})


def test_it_reads_event_qualified_fields_from_the_events_given():
    events = {"baseline_arm_1": {"score": "3"}, "week_1_arm_1": {"score": "9"}}
    logic = "[week_1_arm_1][score] > [baseline_arm_1][score]"
    assert evaluate(logic, {}, events=events)
    assert not evaluate("[week_2_arm_1][score] <> ''", {}, events=events)


def test_without_events_an_event_qualified_field_reads_the_matching_row_only():
    row = {"redcap_event_name": "week_1_arm_1", "score": "9"}
    assert evaluate("[week_1_arm_1][score] = 9", row)
    assert evaluate("[baseline_arm_1][score] = ''", row)


def test_comparing_two_fields_uses_both_values():
    assert evaluate("[a] = [b]", {"a": "1.0", "b": "1"})
    assert not evaluate("[a] = [b]", {"a": "x", "b": "1"})


# --- Parsing ------------------------------------------------------------------------------
def test_it_parses_once_into_a_reusable_expression():
    expression = parse("[sms_consent] = '1' and [optout(1)] <> '1'")
    assert isinstance(expression, Expression)
    assert expression.evaluate({"sms_consent": "1", "optout___1": "0"})
    assert not expression.evaluate({"sms_consent": "1", "optout___1": "1"})
    assert evaluate(expression, {"sms_consent": "0"}) is False
    assert parse(expression) is expression


def test_it_builds_the_tree_with_redcap_precedence():
    tree = parse("not [a] = 1 or [b] = 'x' and [c(2)]").tree
    assert tree == Or(
        (
            Not(Compare("=", Field("a"), Literal("1", quoted=False))),
            And((Compare("=", Field("b"), Literal("x")), Truthy(Field("c", code="2")))),
        )
    )


def test_it_names_the_fields_used_with_checkboxes_counted_once():
    logic = "[sms_consent] = '1' and [optout(1)] <> '1' and [optout(2)] = '' or [wk_1][score] > 1"
    assert fields_used(logic) == {"sms_consent", "optout", "score"}
    assert parse(logic).events == {"wk_1"}
    assert Field("optout", code="1").export_name == "optout___1"
    assert Field("x", code="-1").export_name == "x____1"


def test_it_checks_references_against_the_project_when_asked():
    assert parse("[phone] <> ''", fields={"phone"}).fields == {"phone"}
    with pytest.raises(LogicError) as caught:
        parse("[phon] <> '' and [tz] = ''", fields={"phone", "tz"})
    assert caught.value.detail == "Unknown field: [phon]."
    with pytest.raises(LogicError, match=r"Unknown event: \[week_9_arm_1\]"):
        parse("[week_9_arm_1][phone] <> ''", events={"week_1_arm_1"})


@pytest.mark.parametrize(
    ("logic", "detail"),
    [
        ("", "The logic is empty."),
        ("   ", "The logic is empty."),
        ("[a] =", "The logic ends where a field, a quoted value or a number was expected."),
        ("[a] = 'x", "A quote at position 7 is never closed."),
        ("[a] == 1", "Unexpected '=' at position 6 (compare with a single '=')."),
        ("[a] = 1 = 2", "Comparisons cannot be chained"),
        ("([a] = 1", "The logic ends where ')' was expected."),
        ("[a] = 1)", "Expected 'and', 'or' or the end at position 8, found ')'."),
        ("([a])^(2) > 2", "Exponents ('^' at position 6) are not supported."),
        ("[a] % 2 = 1", "Unexpected '%' at position 5."),
        ("[a] = * 2", "Unexpected '*' at position 7."),
        ("[a] +", "The logic ends where a field, a quoted value or a number was expected."),
        ("sqrt([a]) > 2", "The function sqrt() is not supported (StudyText reads abs(), "),
        ("mod([a], 2) = 1", "The function mod() is not supported"),
        ("age_at_date([dob], 'today') > 18", "The function age_at_date() is not supported"),
        ("datediff([a], 'today') > 7", "datediff() takes 3 to 5 values, 2 given (position 1)."),
        ("datediff([a], 'today', 'days') > 7", "datediff()'s units must be one of 'y', 'M', "),
        ("datediff([a], 'today', [u]) > 7", "datediff()'s units must be one of"),
        ("datediff([a], 'today', 'D') > 7", "datediff()'s units must be one of"),
        ("datediff([a], 'today', 'd', 'ydm') > 7", "datediff()'s value 4 must be a date format"),
        ("datediff([a], 'today', 'd', 'ymd', 'yes') > 7", "datediff()'s value 5 must be true"),
        ("if([a] = 1, 1) = 1", "if() takes 3 values, 2 given (position 1)."),
        ("abs() > 1", "abs() takes 1 value, 0 given (position 1)."),
        ("sum() > 1", "sum() takes at least 1 value, 0 given (position 1)."),
        ("round([a], 1, 2) > 1", "round() takes 1 to 2 values, 3 given"),
        ("sum([a] [b]) > 1", "Expected ',' or ')' at position 9, found '[b]'."),
        ("sum([a], ) > 1", "Expected a field, a quoted value or a number at position 10"),
        ("([a] = 1) + 1 > 1", "A condition in parentheses cannot be used as a value"),
        ("([a] = 1) = 1", "A condition in parentheses cannot be used as a value"),
        ("[current-instance] = 1", "[current-instance] is not a field this logic can use"),
        ("[a:value] = 1", "[a:value] is not a field this logic can use"),
        ("[a] = yes", "'yes' at position 7 is not a field, value or operator"),
        ("[event-name] = 'x'", "[event-name] is not a field this logic can use"),
        ("[a b] = 1", "[a b] is not a field this logic can use"),
        ("[] = 1", "[] is not a field this logic can use"),
        ("[a(1 2)] = 1", "[a(1 2)] has an invalid checkbox code."),
        ("[a] = 1 and", "The logic ends where a field, a quoted value or a number was expected."),
        ("[a] = 1 [b] = 2", "Expected 'and', 'or' or the end at position 9, found '[b]'."),
        ("[a] = 1 && [b] = 2", "Unexpected '&' at position 9."),
        ("[a] in (1, 2)", "Expected 'and', 'or' or the end at position 5, found 'in'."),
        ("and", "Expected a field, a quoted value or a number at position 1, found 'and'."),
        ("[a] = 1 or ()", "Expected a field, a quoted value or a number at position 13"),
    ],
)
def test_it_refuses_what_redcap_would_refuse_with_its_message(logic, detail):
    with pytest.raises(LogicError) as caught:
        parse(logic)
    assert caught.value.message == REDCAP_LOGIC_ERROR
    assert caught.value.detail.startswith(detail)
    assert str(caught.value) == f"{REDCAP_LOGIC_ERROR} {caught.value.detail}"


def test_it_refuses_logic_that_is_not_text():
    with pytest.raises(LogicError, match="must be text"):
        parse(None)  # type: ignore[arg-type]


def test_the_normal_form_reads_like_redcap_logic():
    expression = parse('not([a]=1 OR [b]<=-2.5)and[ev_1][c(2)] <> "it\'s"')
    assert str(expression) == 'not([a] = 1 or [b] <= -2.5) and [ev_1][c(2)] <> "it\'s"'


# --- Properties -----------------------------------------------------------------------------
names = st.sampled_from(["a", "b", "score", "tz"])
numbers = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.decimals(-1000, 1000, places=2, allow_nan=False, allow_infinity=False).map(str),
)
texts = st.text(alphabet="abcXYZ 0123456789-.", max_size=6)
values = st.one_of(st.just(""), numbers, texts)
operands = st.one_of(
    names.map(Field),
    st.builds(Field, names, code=st.sampled_from(["1", "2"])),
    numbers.map(lambda n: Literal(n, quoted=False)),
    st.one_of(texts, numbers, st.just("")).map(Literal),
)
comparisons = st.builds(
    Compare, st.sampled_from(["=", "<>", "!=", "<", ">", "<=", ">="]), operands, operands
)
trees = st.recursive(
    st.one_of(comparisons, operands.map(Truthy)),
    lambda inner: st.one_of(
        inner.map(Not),
        st.lists(inner, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
        st.lists(inner, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
    ),
    max_leaves=8,
)
records = st.fixed_dictionaries(
    {
        "a": values,
        "b": values,
        "score": values,
        "tz": values,
        "a___1": st.sampled_from(["0", "1"]),
        "b___2": st.sampled_from(["0", "1"]),
    }
)


def _flatten(node):
    """The tree parse() builds from str(node): nested same-kind groups merge."""
    if isinstance(node, And | Or):
        items = []
        for item in node.items:
            item = _flatten(item)
            items.extend(item.items if type(item) is type(node) else [item])
        return type(node)(tuple(items))
    if isinstance(node, Not):
        return Not(_flatten(node.item))
    return node


@given(trees, records)
def test_printing_and_parsing_again_keeps_the_meaning(tree, record):
    expression = Expression(source="", tree=tree)
    again = parse(str(expression))
    assert again.tree == _flatten(tree)
    assert again.evaluate(record) == expression.evaluate(record)


@given(trees, records)
def test_not_always_inverts(tree, record):
    inner = Expression(source="", tree=tree)
    assert parse(f"not({inner})").evaluate(record) is not inner.evaluate(record)


@given(values, values)
def test_unequal_is_exactly_not_equal(left, right):
    assert compare("<>", left, right) is not compare("=", left, right)
    assert compare("!=", left, right) is compare("<>", left, right)
    assert compare("=", left, right) is compare("=", right, left)


@given(values, st.sampled_from(["<", ">", "<=", ">="]))
def test_ordering_against_a_blank_is_always_false(value, op):
    assert compare(op, value, "") is False
    assert compare(op, "", value) is False


@given(numbers, numbers)
def test_numbers_compare_as_numbers_however_they_are_written(left, right):
    a, b = Decimal(left), Decimal(right)
    assert compare("<", left, right) is (a < b)
    assert compare(">=", left, right) is (a >= b)
    assert compare("=", left, right + "0" if "." in right else right) is (a == b)


@given(st.text(max_size=40))
def test_arbitrary_text_either_parses_or_raises_logic_error(text):
    try:
        expression = parse(text)
    except LogicError as exc:
        assert exc.message == REDCAP_LOGIC_ERROR
    else:
        assert isinstance(expression.evaluate({}), bool)
