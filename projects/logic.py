"""REDCap logic (filter logic, branching logic): the common subset, parsed and evaluated.

Supported: ``=``, ``<>``, ``!=``, ``<``, ``>``, ``<=``, ``>=``; ``and``, ``or``, ``not`` (as a
prefix, so ``not [a] = '1'`` and ``not([a] = '1' or [b] = '1')`` both work), case-insensitive;
parentheses; ``[field]``, ``[field(code)]`` for a checkbox option, ``[event][field]`` in
longitudinal projects; string literals in single or double quotes (``''`` is "blank"); numbers
(``-1``, ``2.5``). A bare operand (``[optout(1)]``) is true unless it is blank or ``"0"``.
Anything else (functions, arithmetic, smart variables) is refused with a :class:`LogicError`,
as REDCap refuses logic it cannot parse.

Values compare the way REDCap's generated PHP does: numerically when both sides are numbers
(``'1.0' = 1``), otherwise as text (case-sensitive; ISO dates order correctly); blank is never
equal to ``0``; and ``<``, ``>``, ``<=``, ``>=`` are false when either side is blank.

    expression = parse("[sms_consent] = '1' and [optout(1)] <> '1'")
    evaluate(expression, {"sms_consent": "1", "optout___1": "0"})   # True
    fields_used(expression)                                        # {"sms_consent", "optout"}
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# REDCap answers logic it cannot use with one fixed sentence (the sandbox sends it as a 400);
# `LogicError.detail` says what exactly is wrong, for our own forms.
REDCAP_LOGIC_ERROR = (
    "The logic provided in the parameter 'filterLogic' is not valid. "
    "Please check its syntax and field names."
)

COMPARISONS = ("=", "<>", "!=", "<", ">", "<=", ">=")
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
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>[,+*/^%])
    """,
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not"}


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


Operand = Field | Literal


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


@dataclass(frozen=True)
class Expression:
    """Parsed, validated logic; reusable for any number of records."""

    source: str
    tree: Node

    @functools.cached_property
    def refs(self) -> frozenset[Field]:
        found: set[Field] = set()
        stack: list[Node] = [self.tree]
        while stack:
            node = stack.pop()
            if isinstance(node, And | Or):
                stack.extend(node.items)
            elif isinstance(node, Not):
                stack.append(node.item)
            else:
                operands = (node.left, node.right) if isinstance(node, Compare) else (node.operand,)
                found.update(o for o in operands if isinstance(o, Field))
        return frozenset(found)

    @property
    def fields(self) -> set[str]:
        """The REDCap field names used (a checkbox option counts as its field)."""
        return {ref.name for ref in self.refs}

    @property
    def events(self) -> set[str]:
        return {ref.event for ref in self.refs if ref.event}

    def evaluate(
        self,
        record: Mapping[str, object],
        *,
        events: Mapping[str, Mapping[str, object]] | None = None,
    ) -> bool:
        return _truth(self.tree, record, events)

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
            f"[{inner}] is not a field this logic can use (smart variables and functions "
            "are not supported).",
            position=token.pos,
        )
    if code is not None and not _CODE.fullmatch(code):
        raise LogicError(f"[{inner}] has an invalid checkbox code.", position=token.pos)
    return Field(name=name, code=code, event=event)


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokenize(source)
        self.i = 0
        self.end = len(source)

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

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
        if tok.kind in ("minus", "other") and tok.text != ",":
            return LogicError(
                f"Arithmetic ({tok.text!r} at position {tok.pos + 1}) is not supported.",
                position=tok.pos,
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
        tok = self.peek()
        if tok is not None and tok.kind == "lparen":
            self.i += 1
            node = self.or_()
            closing = self.peek()
            if closing is None or closing.kind != "rparen":
                raise self.fail("')'")
            self.i += 1
            return node
        left = self.operand()
        tok = self.peek()
        if tok is None or tok.kind != "op":
            return Truthy(left)
        self.i += 1
        right = self.operand()
        after = self.peek()
        if after is not None and after.kind == "op":
            raise LogicError(
                f"Comparisons cannot be chained (position {after.pos + 1}); join them with "
                "'and' or 'or'.",
                position=after.pos,
            )
        return Compare(tok.text, left, right)

    def operand(self) -> Operand:
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
        if tok.kind == "minus":
            # "-5" is a number; "- 5" or "[a] - 5" would be arithmetic, which is not supported.
            following = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if following is not None and following.kind == "number" and following.pos == tok.end:
                self.i += 2
                return Literal("-" + following.text, quoted=False)
            raise self.fail("a field, a quoted value or a number")
        if tok.kind == "word" and tok.text.lower() not in _KEYWORDS:
            following = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if following is not None and following.kind == "lparen":
                raise LogicError(f"The function {tok.text}() is not supported.", position=tok.pos)
            raise LogicError(
                f"{tok.text!r} at position {tok.pos + 1} is not a field, value or operator "
                "(fields go in square brackets, text in quotes).",
                position=tok.pos,
            )
        raise self.fail("a field, a quoted value or a number")


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
) -> bool:
    """Evaluate logic against one exported (flat, raw) record.

    ``record`` maps export field names to values (checkbox options as ``name___code``); a
    missing field reads as blank. ``[event][field]`` reads ``events[event][field]``; without
    ``events`` it reads ``record`` when ``record["redcap_event_name"]`` is that event, else blank.
    """
    return parse(logic).evaluate(record, events=events)


def fields_used(logic: str | Expression) -> set[str]:
    """The field names the logic refers to (``[optout(1)]`` counts as ``optout``)."""
    return parse(logic).fields


# --- Evaluation ----------------------------------------------------------------------------
def _value(
    operand: Operand,
    record: Mapping[str, object],
    events: Mapping[str, Mapping[str, object]] | None,
) -> str:
    if isinstance(operand, Literal):
        return operand.value
    source: Mapping[str, object] | None = record
    if operand.event:
        if events is not None:
            source = events.get(operand.event)
        elif record.get("redcap_event_name") != operand.event:
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


def _truth(
    node: Node,
    record: Mapping[str, object],
    events: Mapping[str, Mapping[str, object]] | None,
) -> bool:
    if isinstance(node, Compare):
        return compare(
            node.op, _value(node.left, record, events), _value(node.right, record, events)
        )
    if isinstance(node, Truthy):
        return truthy(_value(node.operand, record, events))
    if isinstance(node, Not):
        return not _truth(node.item, record, events)
    if isinstance(node, And):
        return all(_truth(item, record, events) for item in node.items)
    return any(_truth(item, record, events) for item in node.items)
