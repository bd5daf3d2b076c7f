"""REDCap logic (filter logic, branching logic): the common subset, parsed and evaluated.

Supported (docs/redcap.md, "Branching logic"):

- conditions: ``=``, ``<>``, ``!=``, ``<``, ``>``, ``<=``, ``>=``; ``and``, ``or``, ``not`` (as a
  prefix, so ``not [a] = '1'`` and ``not([a] = '1' or [b] = '1')`` both work), case-insensitive;
  parentheses;
- values: ``[field]``, ``[field(code)]`` for a checkbox option, ``[event][field]`` in
  longitudinal projects; string literals in single or double quotes (``''`` is "blank"); numbers
  (``-1``, ``2.5``); arithmetic ``+ - * /`` with the usual precedence and unary minus;
- functions: ``datediff`` (units ``y M d h m s``, an optional date-format argument and the
  signed flag), ``if``, ``sum``, ``mean``, ``median``, ``min``, ``max``, ``round``, ``roundup``,
  ``rounddown``, ``abs``, ``isblankormissingcode``, ``isnumber``, ``isinteger``, ``contains``,
  ``not_contain``, ``starts_with``, ``ends_with``.

A bare value (``[optout(1)]``, ``isblankormissingcode([x])``) is true unless it is blank or
``"0"``. Anything else (other functions, exponents, smart variables) is refused at parse time with
a :class:`LogicError` naming it, as REDCap refuses logic it cannot parse.

Values compare the way REDCap's generated PHP does: numerically when both sides are numbers
(``'1.0' = 1``), otherwise as text (case-sensitive; ISO dates order correctly); blank is never
equal to ``0``; and ``<``, ``>``, ``<=``, ``>=`` are false when either side is blank. Arithmetic
with a blank or non-numeric side is blank, as is a function REDCap would answer with NaN (a
``datediff`` with a blank date, ``sum`` of nothing, a division by zero), so comparing it is false.

    expression = parse("[sms_consent] = '1' and [optout(1)] <> '1'")
    evaluate(expression, {"sms_consent": "1", "optout___1": "0"})   # True
    fields_used(expression)                                        # {"sms_consent", "optout"}
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Decimal,
    InvalidOperation,
    localcontext,
)

# REDCap answers logic it cannot use with one fixed sentence (the sandbox sends it as a 400);
# `LogicError.detail` says what exactly is wrong, for our own forms.
REDCAP_LOGIC_ERROR = (
    "The logic provided in the parameter 'filterLogic' is not valid. "
    "Please check its syntax and field names."
)

COMPARISONS = ("=", "<>", "!=", "<", ">", "<=", ">=")
# The functions this subset reads, with how many values each takes (None: any number).
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "datediff": (3, 5),
    "if": (3, 3),
    "sum": (1, None),
    "mean": (1, None),
    "median": (1, None),
    "min": (1, None),
    "max": (1, None),
    "round": (1, 2),
    "roundup": (1, 2),
    "rounddown": (1, 2),
    "abs": (1, 1),
    "isblankormissingcode": (1, 1),
    "isnumber": (1, 1),
    "isinteger": (1, 1),
    "contains": (2, 2),
    "not_contain": (2, 2),
    "starts_with": (2, 2),
    "ends_with": (2, 2),
}
DATEDIFF_UNITS = ("y", "M", "d", "h", "m", "s")
DATE_FORMATS = ("ymd", "mdy", "dmy")
# Seconds per unit, as REDCap counts them: a month is 30.44 days, a year 365.2425 days.
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "M": 2630016, "y": 31556952}

_NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CODE = re.compile(r"[A-Za-z0-9_.-]+")
_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<ref>\[[^\[\]]*\](?:\[[^\[\]]*\])?)
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<number>\d+(?:\.\d*)?|\.\d+)
  | (?P<op><>|!=|<=|>=|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<minus>-)
  | (?P<arith>[+*/])
  | (?P<comma>,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>[\^%])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not"}
_BOOLEANS = {"true", "false"}


class LogicError(ValueError):
    """Logic we cannot use. ``message`` is what REDCap says; ``detail`` says what is wrong."""

    def __init__(self, detail: str, *, position: int | None = None) -> None:
        self.message = REDCAP_LOGIC_ERROR
        self.detail = detail
        self.position = position
        super().__init__(f"{self.message} {detail}")


# --- The tree -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    name: str
    code: str | None = None  # a checkbox option: [optout(1)]
    event: str | None = None  # [week_1_arm_1][score]

    @property
    def export_name(self) -> str:
        """The key in an exported record: checkbox options are ``name___code``."""
        if self.code is None:
            return self.name
        return f"{self.name}___{self.code.lower().replace('-', '_')}"

    def __str__(self) -> str:
        ref = f"[{self.name}({self.code})]" if self.code is not None else f"[{self.name}]"
        return f"[{self.event}]{ref}" if self.event else ref


@dataclass(frozen=True)
class Literal:
    value: str
    quoted: bool = True

    def __str__(self) -> str:
        if not self.quoted:
            return self.value
        return f'"{self.value}"' if "'" in self.value else f"'{self.value}'"


@dataclass(frozen=True)
class Call:
    """A function: ``datediff([dob], 'today', 'y')``. ``name`` is lower case."""

    name: str
    args: tuple[Operand | Node, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(arg) for arg in self.args)})"


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class Arith:
    """``left op right`` with ``op`` one of ``+ - * /``."""

    op: str
    left: Operand
    right: Operand

    def __str__(self) -> str:
        mine = _PRECEDENCE[self.op]

        def side(operand: Operand, *, right: bool) -> str:
            if isinstance(operand, Arith):
                theirs = _PRECEDENCE[operand.op]
                if theirs < mine or (right and theirs == mine):
                    return f"({operand})"
            return str(operand)

        return f"{side(self.left, right=False)} {self.op} {side(self.right, right=True)}"


@dataclass(frozen=True)
class Negate:
    operand: Operand

    def __str__(self) -> str:
        if isinstance(self.operand, Field | Call):
            return f"-{self.operand}"
        return f"-({self.operand})"


Operand = Field | Literal | Call | Arith | Negate


@dataclass(frozen=True)
class Compare:
    op: str
    left: Operand
    right: Operand

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class Truthy:
    """A bare operand used as a condition."""

    operand: Operand

    def __str__(self) -> str:
        return str(self.operand)


@dataclass(frozen=True)
class Not:
    item: Node

    def __str__(self) -> str:
        return f"not({self.item})"


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]

    def __str__(self) -> str:
        return " and ".join(f"({i})" if isinstance(i, Or) else str(i) for i in self.items)


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]

    def __str__(self) -> str:
        return " or ".join(str(i) for i in self.items)


Node = Compare | Truthy | Not | And | Or
_CONDITIONS = (Compare, Truthy, Not, And, Or)


def _children(node: Node | Operand) -> tuple[Node | Operand, ...]:
    if isinstance(node, And | Or):
        return node.items
    if isinstance(node, Not):
        return (node.item,)
    if isinstance(node, Compare | Arith):
        return (node.left, node.right)
    if isinstance(node, Truthy | Negate):
        return (node.operand,)
    if isinstance(node, Call):
        return node.args
    return ()


def _walk(node: Node | Operand) -> Iterator[Node | Operand]:
    stack: list[Node | Operand] = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(_children(current))


@dataclass(frozen=True)
class Expression:
    """Parsed, validated logic; reusable for any number of records."""

    source: str
    tree: Node

    @functools.cached_property
    def refs(self) -> frozenset[Field]:
        return frozenset(node for node in _walk(self.tree) if isinstance(node, Field))

    @property
    def fields(self) -> set[str]:
        """The REDCap field names used (a checkbox option counts as its field)."""
        return {ref.name for ref in self.refs}

    @property
    def events(self) -> set[str]:
        return {ref.event for ref in self.refs if ref.event}

    @property
    def functions(self) -> set[str]:
        return {node.name for node in _walk(self.tree) if isinstance(node, Call)}

    def evaluate(
        self,
        record: Mapping[str, object],
        *,
        events: Mapping[str, Mapping[str, object]] | None = None,
        now: dt.datetime | None = None,
        missing_codes: Collection[str] = (),
    ) -> bool:
        context = _Context(record, events, now or dt.datetime.now(), frozenset(missing_codes))
        return _truth(self.tree, context)

    def __str__(self) -> str:
        """The logic in a normal form (parses back to the same tree)."""
        return str(self.tree)


# --- Parsing -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    pos: int

    @property
    def end(self) -> int:
        return self.pos + len(self.text)


def _tokenize(source: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            char = source[pos]
            if char in "'\"":
                raise LogicError(f"A quote at position {pos + 1} is never closed.", position=pos)
            raise LogicError(f"Unexpected {char!r} at position {pos + 1}.", position=pos)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Tok(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _field(token: _Tok) -> Field:
    parts = re.findall(r"\[([^\[\]]*)\]", token.text)
    event = None
    if len(parts) == 2:
        event = parts[0].strip()
        if not _NAME.fullmatch(event):
            raise LogicError(f"[{parts[0]}] is not an event name.", position=token.pos)
    inner = parts[-1].strip()
    match = re.fullmatch(r"([^()]*?)\s*(?:\(\s*([^()]*?)\s*\))?", inner)
    name, code = (match.group(1), match.group(2)) if match else (inner, None)
    if not _NAME.fullmatch(name or ""):
        raise LogicError(
            f"[{inner}] is not a field this logic can use (smart variables are not supported).",
            position=token.pos,
        )
    if code is not None and not _CODE.fullmatch(code):
        raise LogicError(f"[{inner}] has an invalid checkbox code.", position=token.pos)
    return Field(name=name, code=code, event=event)


def _check_call(call: Call, token: _Tok) -> None:
    """What REDCap would refuse in a call: the number of values, datediff's units and flags."""
    low, high = FUNCTIONS[call.name]
    given = len(call.args)
    if given < low or (high is not None and given > high):
        wanted = (
            f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
        )
        raise LogicError(
            f"{call.name}() takes {wanted} value{'s' if (high or low) != 1 else ''}, "
            f"{given} given (position {token.pos + 1}).",
            position=token.pos,
        )
    if call.name != "datediff":
        return
    units = call.args[2]
    if not isinstance(units, Literal) or units.value not in DATEDIFF_UNITS:
        raise LogicError(
            f"datediff()'s units must be one of 'y', 'M', 'd', 'h', 'm' or 's' in quotes, "
            f"not {units} (position {token.pos + 1}).",
            position=token.pos,
        )
    for index, extra in enumerate(call.args[3:], start=4):
        allowed = (*DATE_FORMATS, *_BOOLEANS) if index == 4 else _BOOLEANS
        if isinstance(extra, Literal) and extra.value.lower() not in allowed:
            raise LogicError(
                f"datediff()'s value {index} must be "
                + ("a date format ('ymd', 'mdy', 'dmy') or " if index == 4 else "")
                + f"true or false, not {extra} (position {token.pos + 1}).",
                position=token.pos,
            )


class _Parser:
    """Precedence, loosest first: or, and, not, comparison, + -, * /, unary minus."""

    def __init__(self, source: str) -> None:
        self.tokens = _tokenize(source)
        self.i = 0
        self.end = len(source)

    def peek(self, offset: int = 0) -> _Tok | None:
        index = self.i + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def fail(self, what: str) -> LogicError:
        tok = self.peek()
        if tok is None:
            return LogicError(f"The logic ends where {what} was expected.", position=self.end)
        if tok.text == "^":
            return LogicError(
                f"Exponents ('^' at position {tok.pos + 1}) are not supported.", position=tok.pos
            )
        if tok.kind in ("minus", "arith", "comma", "other"):
            return LogicError(
                f"Unexpected {tok.text!r} at position {tok.pos + 1}.", position=tok.pos
            )
        if tok.kind == "op" and tok.text == "=":
            return LogicError(
                f"Unexpected '=' at position {tok.pos + 1} (compare with a single '=').",
                position=tok.pos,
            )
        return LogicError(
            f"Expected {what} at position {tok.pos + 1}, found {tok.text!r}.", position=tok.pos
        )

    def parse(self) -> Node:
        if not self.tokens:
            raise LogicError("The logic is empty.", position=0)
        node = self.or_()
        if self.peek() is not None:
            raise self.fail("'and', 'or' or the end")
        return node

    def or_(self) -> Node:
        items = [self.and_()]
        while self.keyword("or"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_(self) -> Node:
        items = [self.not_()]
        while self.keyword("and"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_(self) -> Node:
        if self.keyword("not"):
            return Not(self.not_())
        return self.condition()

    def condition(self) -> Node:
        left = self.sum_()
        tok = self.peek()
        if tok is None or tok.kind != "op":
            return left if isinstance(left, _CONDITIONS) else Truthy(left)
        self.i += 1
        right = self.sum_()
        after = self.peek()
        if after is not None and after.kind == "op":
            raise LogicError(
                f"Comparisons cannot be chained (position {after.pos + 1}); join them with "
                "'and' or 'or'.",
                position=after.pos,
            )
        return Compare(tok.text, self.value(left, tok), self.value(right, tok))

    @staticmethod
    def value(node: Operand | Node, tok: _Tok) -> Operand:
        if isinstance(node, _CONDITIONS):
            raise LogicError(
                f"A condition in parentheses cannot be used as a value (position {tok.pos + 1}).",
                position=tok.pos,
            )
        return node

    def sum_(self) -> Operand | Node:
        left = self.product()
        while (tok := self.peek()) is not None and tok.text in ("+", "-"):
            self.i += 1
            right = self.product()
            left = Arith(tok.text, self.value(left, tok), self.value(right, tok))
        return left

    def product(self) -> Operand | Node:
        left = self.unary()
        while (tok := self.peek()) is not None and tok.text in ("*", "/"):
            self.i += 1
            right = self.unary()
            left = Arith(tok.text, self.value(left, tok), self.value(right, tok))
        return left

    def unary(self) -> Operand | Node:
        tok = self.peek()
        if tok is None or tok.kind != "minus":
            return self.primary()
        following = self.peek(1)
        # "-5" is a number; "- 5", "-[a]" and "-(…)" negate what follows.
        if following is not None and following.kind == "number" and following.pos == tok.end:
            self.i += 2
            return Literal("-" + following.text, quoted=False)
        self.i += 1
        return Negate(self.value(self.unary(), tok))

    def primary(self) -> Operand | Node:
        tok = self.peek()
        if tok is None:
            raise self.fail("a field, a quoted value or a number")
        if tok.kind == "ref":
            self.i += 1
            return _field(tok)
        if tok.kind == "string":
            self.i += 1
            return Literal(tok.text[1:-1])
        if tok.kind == "number":
            self.i += 1
            return Literal(tok.text, quoted=False)
        if tok.kind == "lparen":
            self.i += 1
            node = self.inner()
            closing = self.peek()
            if closing is None or closing.kind != "rparen":
                raise self.fail("')'")
            self.i += 1
            return node
        if tok.kind == "word" and tok.text.lower() not in _KEYWORDS:
            following = self.peek(1)
            if following is not None and following.kind == "lparen":
                return self.call(tok)
            if tok.text.lower() in _BOOLEANS:
                self.i += 1
                return Literal(tok.text.lower(), quoted=False)
            raise LogicError(
                f"{tok.text!r} at position {tok.pos + 1} is not a field, value or operator "
                "(fields go in square brackets, text in quotes).",
                position=tok.pos,
            )
        raise self.fail("a field, a quoted value or a number")

    def inner(self) -> Operand | Node:
        """What parentheses or a function's argument hold: a value, or a condition."""
        node = self.or_()
        return node.operand if isinstance(node, Truthy) else node

    def call(self, tok: _Tok) -> Call:
        name = tok.text.lower()
        if name not in FUNCTIONS:
            raise LogicError(
                f"The function {tok.text}() is not supported (StudyText reads "
                + ", ".join(f"{n}()" for n in sorted(FUNCTIONS))
                + ").",
                position=tok.pos,
            )
        self.i += 2
        args: list[Operand | Node] = []
        if (closing := self.peek()) is not None and closing.kind == "rparen":
            self.i += 1
        else:
            while True:
                args.append(self.inner())
                after = self.peek()
                if after is not None and after.kind == "comma":
                    self.i += 1
                    continue
                if after is not None and after.kind == "rparen":
                    self.i += 1
                    break
                raise self.fail("',' or ')'")
        call = Call(name, tuple(args))
        _check_call(call, tok)
        return call


@functools.lru_cache(maxsize=512)
def _parse_cached(source: str) -> Expression:
    return Expression(source=source, tree=_Parser(source).parse())


def parse(
    source: str | Expression,
    *,
    fields: Collection[str] | None = None,
    events: Collection[str] | None = None,
) -> Expression:
    """Parse logic, raising :class:`LogicError` when REDCap would refuse it.

    With ``fields`` (the project's field names, form-complete fields included) or ``events``
    (its unique event names), every reference must be one of them.
    """
    if isinstance(source, Expression):
        expression = source
    else:
        if not isinstance(source, str):
            raise LogicError("The logic must be text.")
        expression = _parse_cached(source)
    for what, used, known in (
        ("field", expression.fields, fields),
        ("event", expression.events, events),
    ):
        unknown = sorted(used - set(known)) if known is not None else []
        if unknown:
            raise LogicError(
                f"Unknown {what}{'s' if len(unknown) > 1 else ''}: "
                + ", ".join(f"[{name}]" for name in unknown)
                + "."
            )
    return expression


def evaluate(
    logic: str | Expression,
    record: Mapping[str, object],
    *,
    events: Mapping[str, Mapping[str, object]] | None = None,
    now: dt.datetime | None = None,
    missing_codes: Collection[str] = (),
) -> bool:
    """Evaluate logic against one exported (flat, raw) record.

    ``record`` maps export field names to values (checkbox options as ``name___code``); a
    missing field reads as blank. ``[event][field]`` reads ``events[event][field]``; without
    ``events`` it reads ``record`` when ``record["redcap_event_name"]`` is that event, else blank.
    ``now`` is what 'today' and 'now' mean (the server's local time when not given);
    ``missing_codes`` are the project's missing-data codes, which ``isblankormissingcode`` and
    ``datediff`` read as blank.
    """
    return parse(logic).evaluate(record, events=events, now=now, missing_codes=missing_codes)


def fields_used(logic: str | Expression) -> set[str]:
    """The field names the logic refers to (``[optout(1)]`` counts as ``optout``)."""
    return parse(logic).fields


# --- Evaluation ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    record: Mapping[str, object]
    events: Mapping[str, Mapping[str, object]] | None
    now: dt.datetime
    missing: frozenset[str]


def _field_value(operand: Field, context: _Context) -> str:
    source: Mapping[str, object] | None = context.record
    if operand.event:
        if context.events is not None:
            source = context.events.get(operand.event)
        elif context.record.get("redcap_event_name") != operand.event:
            source = None
    if source is None:
        return ""
    value = source.get(operand.export_name)
    return "" if value is None else str(value)


def _number(text: str) -> Decimal | None:
    text = text.strip()
    if not _NUMERIC.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        return None


def _format(number: Decimal) -> str:
    """A computed number as REDCap would print it: no exponent, no trailing zeros."""
    if not number.is_finite():
        return ""
    text = format(number.normalize(), "f")
    return "0" if text == "-0" else text


def _value(node: Operand | Node, context: _Context) -> str:
    """What a value evaluates to, as text ("" is blank, as REDCap's NaN compares)."""
    if isinstance(node, Literal):
        if not node.quoted and node.value in _BOOLEANS:
            return "1" if node.value == "true" else "0"
        return node.value
    if isinstance(node, Field):
        return _field_value(node, context)
    if isinstance(node, _CONDITIONS):  # a condition given to a function: if([a] = 1, …)
        return "1" if _truth(node, context) else "0"
    try:
        with localcontext() as arithmetic:
            arithmetic.prec = 34
            if isinstance(node, Arith):
                left = _number(_value(node.left, context))
                right = _number(_value(node.right, context))
                if left is None or right is None or (node.op == "/" and right == 0):
                    return ""
                if node.op == "+":
                    return _format(left + right)
                if node.op == "-":
                    return _format(left - right)
                if node.op == "*":
                    return _format(left * right)
                return _format(left / right)
            if isinstance(node, Negate):
                number = _number(_value(node.operand, context))
                return "" if number is None else _format(-number)
            return _call(node, context)
    except (InvalidOperation, OverflowError, ValueError):
        return ""  # REDCap's NaN: a number too large, a precision that makes no sense


def _numbers(args: tuple[Operand | Node, ...], context: _Context) -> list[Decimal]:
    """The values that are numbers; blanks and text are left out, as REDCap does."""
    found = (_number(_value(arg, context)) for arg in args)
    return [number for number in found if number is not None]


def _signed(node: Operand | Node, context: _Context) -> bool:
    if isinstance(node, Literal) and not node.quoted:
        return node.value.lower() == "true"
    return _value(node, context).strip().lower() == "true"


def _call(call: Call, context: _Context) -> str:
    name, args = call.name, call.args
    if name == "if":
        chosen = args[1] if _truth_of(args[0], context) else args[2]
        return _value(chosen, context)
    if name == "datediff":
        return _datediff(args, context)
    if name in ("sum", "mean", "median", "min", "max"):
        numbers = sorted(_numbers(args, context))
        if not numbers:
            return ""
        if name == "sum":
            return _format(sum(numbers, Decimal(0)))
        if name == "mean":
            return _format(sum(numbers, Decimal(0)) / len(numbers))
        if name == "min":
            return _format(numbers[0])
        if name == "max":
            return _format(numbers[-1])
        middle = len(numbers) // 2
        if len(numbers) % 2:
            return _format(numbers[middle])
        return _format((numbers[middle - 1] + numbers[middle]) / 2)
    if name in ("round", "roundup", "rounddown"):
        number = _number(_value(args[0], context))
        places = _number(_value(args[1], context)) if len(args) > 1 else Decimal(0)
        if number is None or places is None or abs(places) > 100:
            return ""
        quantum = Decimal(1).scaleb(-int(places))
        rounding = {"round": ROUND_HALF_UP, "roundup": ROUND_CEILING}.get(name, ROUND_FLOOR)
        return _format(number.quantize(quantum, rounding=rounding))
    if name == "abs":
        number = _number(_value(args[0], context))
        return "" if number is None else _format(abs(number))
    text = _value(args[0], context)
    if name == "isblankormissingcode":
        return _flag(text.strip() == "" or text.strip() in context.missing)
    if name == "isnumber":
        return _flag(_number(text) is not None)
    if name == "isinteger":
        return _flag(re.fullmatch(r"[-+]?\d+", text.strip()) is not None)
    haystack, needle = text.casefold(), _value(args[1], context).casefold()
    if name == "contains":
        return _flag(needle in haystack)
    if name == "not_contain":
        return _flag(needle not in haystack)
    if name == "starts_with":
        return _flag(haystack.startswith(needle))
    return _flag(haystack.endswith(needle))  # ends_with


def _flag(value: bool) -> str:
    return "1" if value else "0"


_DATE_TIME = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


def _datediff(args: tuple[Operand | Node, ...], context: _Context) -> str:
    """REDCap's datediff: dates are Y-M-D (as REDCap stores them, whatever the field's display
    format, so the date-format argument changes nothing); 'today' paired with a datetime
    compares dates only; a shorter value is read at midnight; unsigned unless asked."""
    first, second = (_value(arg, context).strip() for arg in args[:2])
    unit = _value(args[2], context)
    rest = args[3:]
    if rest and _value(rest[0], context).strip().lower() in DATE_FORMATS:
        rest = rest[1:]
    signed = bool(rest) and _signed(rest[0], context)
    today = context.now.strftime("%Y-%m-%d")
    now = context.now.strftime("%Y-%m-%d %H:%M:%S")
    values = []
    for value in (first, second):
        if value in context.missing:
            value = ""
        lowered = value.lower()
        values.append(today if lowered == "today" else now if lowered == "now" else value)
    first, second = values
    if not first or not second or unit not in _SECONDS:
        return ""
    if "-" not in first and "-" not in second:  # two times of day
        start, stop = _TIME.fullmatch(first[-8:]), _TIME.fullmatch(second[-8:])
        if start is None or stop is None:
            return ""
        seconds = _seconds_of_day(stop) - _seconds_of_day(start)
    else:
        if first == today:
            second = second[:10]
        elif second == today:
            first = first[:10]
        start_at, stop_at = _moment(first), _moment(second)
        if start_at is None or stop_at is None:
            return ""
        seconds = int((stop_at - start_at).total_seconds())
    if not signed:
        seconds = abs(seconds)
    return _format(Decimal(seconds) / _SECONDS[unit])


def _seconds_of_day(match: re.Match) -> int:
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)


def _moment(value: str) -> dt.datetime | None:
    found = _DATE_TIME.fullmatch(value)
    if found is None:
        return None
    year, month, day, hour, minute, second = found.groups()
    try:
        return dt.datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        )
    except ValueError:  # 2026-02-30: not a date
        return None


def compare(op: str, left: str, right: str) -> bool:
    """Compare two values as REDCap does (see the module docstring)."""
    if op in ("<>", "!="):
        return not compare("=", left, right)
    if op != "=" and (left == "" or right == ""):
        return False
    a, b = _number(left), _number(right)
    pair: tuple[object, object] = (a, b) if a is not None and b is not None else (left, right)
    x, y = pair
    if op == "=":
        return x == y
    if op == "<":
        return x < y  # type: ignore[operator]
    if op == ">":
        return x > y  # type: ignore[operator]
    if op == "<=":
        return x <= y  # type: ignore[operator]
    if op == ">=":
        return x >= y  # type: ignore[operator]
    raise LogicError(f"Unknown operator {op!r}.")


def truthy(value: str) -> bool:
    """A bare value as a condition: only blank and "0" are false (PHP's rule for strings)."""
    return value not in ("", "0")


def _truth_of(node: Operand | Node, context: _Context) -> bool:
    if isinstance(node, _CONDITIONS):
        return _truth(node, context)
    return truthy(_value(node, context))


def _truth(node: Node, context: _Context) -> bool:
    if isinstance(node, Compare):
        return compare(node.op, _value(node.left, context), _value(node.right, context))
    if isinstance(node, Truthy):
        return truthy(_value(node.operand, context))
    if isinstance(node, Not):
        return not _truth(node.item, context)
    if isinstance(node, And):
        return all(_truth(item, context) for item in node.items)
    return any(_truth(item, context) for item in node.items)
