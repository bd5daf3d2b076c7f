"""Which fields of a REDCap instrument a text survey can ask, read from the data dictionary.

:func:`instrument_from_metadata` takes REDCap's metadata export (all of it, descriptive fields
included: piping and branching may name fields of other instruments) and sorts each field of the
instrument into one of three lists, each entry with its field name and, in words, why:

- ``questions``: asked one per text, in form order (descriptive fields are sent as information);
- ``refused``: fields a text cannot ask (file upload, signature, calculated fields, ranking
  matrices, @CALCTEXT/@CALCDATE/@IF, validations a text cannot check, choice labels that are
  STOP words, branching logic outside the subset ``projects.logic`` reads);
- ``hidden``: fields a survey never shows (@HIDDEN, @HIDDEN-SURVEY, @READONLY,
  @READONLY-SURVEY, the record ID), skipped without a word to the participant.

``warnings`` name what is asked but not quite as in REDCap (see docs/redcap.md, "Text surveys").
"""

from __future__ import annotations

import html
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from messaging.keywords import Keyword, classify
from projects import logic

ASKED_TYPES = ("yesno", "truefalse", "radio", "dropdown", "checkbox", "text", "notes", "slider")
CHOICE_TYPES = ("radio", "dropdown", "checkbox")
DATE_VALIDATIONS = ("date_ymd", "date_mdy", "date_dmy")
DATETIME_VALIDATIONS = ("datetime_ymd", "datetime_mdy", "datetime_dmy")
DATETIME_SECONDS_VALIDATIONS = (
    "datetime_seconds_ymd",
    "datetime_seconds_mdy",
    "datetime_seconds_dmy",
)
NUMBER_VALIDATIONS = (
    "number",
    *(f"number_{n}dp" for n in range(1, 5)),
    "number_comma_decimal",
    *(f"number_{n}dp_comma_decimal" for n in range(1, 5)),
)
TEXT_VALIDATIONS = (
    "",
    "integer",
    *NUMBER_VALIDATIONS,
    *DATE_VALIDATIONS,
    *DATETIME_VALIDATIONS,
    *DATETIME_SECONDS_VALIDATIONS,
    "time",
    "email",
    "phone",
    "zipcode",
)
# Validation names older projects still carry.
LEGACY_VALIDATIONS = {
    "int": "integer",
    "float": "number",
    "date": "date_ymd",
    "datetime": "datetime_ymd",
    "datetime_seconds": "datetime_seconds_ymd",
}
HIDING_TAGS = ("HIDDEN", "HIDDEN-SURVEY", "READONLY", "READONLY-SURVEY")
REFUSED_TAGS = {
    "CALCTEXT": "REDCap calculates its value",
    "CALCDATE": "REDCap calculates its value",
    "IF": "it switches other action tags on and off by logic",
}
DEFAULT_TAGS = ("DEFAULT", "SETVALUE", "PREFILL")
# REDCap keeps any text up to 65,535 characters (the database's TEXT column).
REDCAP_TEXT_LIMIT = 65535


class SurveyError(ValueError):
    """An instrument that cannot be read at all (unknown name, empty dictionary), in words."""


@dataclass(frozen=True)
class Choice:
    code: str  # what REDCap stores
    label: str  # plain text (HTML removed), piping kept
    number: str  # what the text shows in front of it and the participant may reply


@dataclass(frozen=True)
class Question:
    """One field asked by text (or, for a descriptive field, sent as information)."""

    field: str
    form: str
    kind: str  # the REDCap field type: yesno, truefalse, radio, dropdown, checkbox, text,...
    label: str  # plain text, piping kept
    note: str = ""
    validation: str = ""  # a text field's validation ("" for none; legacy names mapped)
    minimum: str = ""  # as in the dictionary: a value, "today", "now" or "[field]"
    maximum: str = ""
    required: bool = False
    branching: logic.Expression | None = None
    choices: tuple[Choice, ...] = ()  # the choices shown (@HIDECHOICE/@SHOWCHOICE applied)
    all_codes: tuple[str, ...] = ()  # every code REDCap defines, shown or not (checkboxes)
    default: str = ""  # @DEFAULT, piping kept; "" for none
    char_limit: int | None = None
    word_limit: int | None = None
    exclusive: frozenset[str] = frozenset()  # @NONEOFTHEABOVE codes of a checkbox
    max_checked: int | None = None
    slider_labels: tuple[str, ...] = ()

    @property
    def asks(self) -> bool:
        """False for a descriptive field, which is sent and needs no answer."""
        return self.kind != "descriptive"

    @property
    def optional(self) -> bool:
        return not self.required


@dataclass(frozen=True)
class Skipped:
    """A field the text survey does not ask: refused (the coordinator should know) or hidden."""

    field: str
    label: str
    reason: str

    def __str__(self) -> str:
        label = f" (“{_short(self.label)}”)" if self.label else ""
        return f"{self.field}{label}: {self.reason}"


@dataclass(frozen=True)
class Instrument:
    name: str
    questions: tuple[Question, ...]
    refused: tuple[Skipped, ...]
    hidden: tuple[Skipped, ...]
    warnings: tuple[str, ...]
    record_id_field: str
    dictionary: Mapping[str, Mapping[str, str]]  # every field of the project, by name
    repeating: bool = False
    label: str = ""

    def question(self, name: str) -> Question:
        for question in self.questions:
            if question.field == name:
                return question
        raise KeyError(name)

    @property
    def asked(self) -> tuple[Question, ...]:
        """The questions that need an answer (descriptive fields left out)."""
        return tuple(q for q in self.questions if q.asks)

    @property
    def record_fields(self) -> set[str]:
        """Fields of other instruments the questions read (branching, piping, @DEFAULT,
        dynamic ranges): what to export from the record before the conversation starts."""
        own = {q.field for q in self.questions} | {s.field for s in self.refused + self.hidden}
        used: set[str] = set()
        for question in self.questions:
            if question.branching is not None:
                used |= question.branching.fields
            texts = [question.label, question.note, question.default]
            texts += [c.label for c in question.choices] + [question.minimum, question.maximum]
            for text in texts:
                used |= {name for name in piped_fields(text) if name in self.dictionary}
        return {name for name in used - own if name in self.dictionary}


def _short(text: str, size: int = 50) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


# --- Labels ----------------------------------------------------------------------------------
# Typographic characters a word processor puts in labels, each of which would turn the whole
# text into UCS-2 and cost two or three times the segments (docs/sms-encoding.md).
_PLAIN = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u2022": "-",
    }
)
_BREAK_TAGS = re.compile(r"<\s*(?:br|/p|/div|/li|/h\d)\b[^>]*>", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]*>")
PIPE = re.compile(r"\[([A-Za-z][A-Za-z0-9_]*)(?::(?:label|value)|\([A-Za-z0-9_.-]+\))?\]")
_TOKEN = re.compile(r"\[([^\[\]\s]+)\]")


def clean_label(text: str) -> str:
    """A REDCap label as plain text: HTML removed, entities read, typographic quotes and dashes
    made plain, spaces collapsed (line breaks kept)."""
    text = _BREAK_TAGS.sub("\n", text or "")
    text = html.unescape(_TAGS.sub("", text)).translate(_PLAIN)
    lines = (" ".join(line.split()) for line in text.replace("\r", "").split("\n"))
    return "\n".join(line for line in lines if line)


def piped_fields(text: str) -> set[str]:
    """Field names a label pipes: [name], [name:label], [name:value], [name(code)]."""
    return set(PIPE.findall(text or ""))


# --- Action tags -----------------------------------------------------------------------------
_TAG = re.compile(r"(?<![\w.@-])@([A-Z][A-Z0-9_]*(?:-[A-Z0-9_]+)*)")
_ARGUMENT = re.compile(r"""\s*=\s*(?:'([^']*)'|"([^"]*)"|([^\s'"]+))""")


def action_tags(annotation: str) -> dict[str, str]:
    """The action tags in a field annotation, each with its argument ("" when none):
    ``@DEFAULT='2' @HIDDEN-SURVEY`` gives ``{"DEFAULT": "2", "HIDDEN-SURVEY": ""}``. A quoted
    or parenthesised argument is skipped whole, so tags inside ``@IF(…)`` are not read."""
    found: dict[str, str] = {}
    text = annotation or ""
    pos = 0
    while (match := _TAG.search(text, pos)) is not None:
        name, pos = match.group(1), match.end()
        argument = ""
        if (given := _ARGUMENT.match(text, pos)) is not None:
            argument = next(g for g in given.groups() if g is not None)
            pos = given.end()
        elif text[pos : pos + 1] == "(":
            depth, start = 0, pos
            while pos < len(text):
                depth += {"(": 1, ")": -1}.get(text[pos], 0)
                pos += 1
                if depth == 0:
                    break
            argument = text[start + 1 : pos - 1]
        found.setdefault(name, argument)
    return found


def _codes(argument: str) -> list[str]:
    return [code.strip() for code in argument.split(",") if code.strip()]


def _whole(argument: str) -> int | None:
    return int(argument.strip()) if argument.strip().isdigit() else None


# --- Choices ---------------------------------------------------------------------------------
def parse_choices(field_type: str, raw: str) -> list[tuple[str, str]]:
    """(code, label) pairs: ``"1, Yes | 0, No"``; yes/no and true/false are built in."""
    if field_type == "yesno":
        return [("1", "Yes"), ("0", "No")]
    if field_type == "truefalse":
        return [("1", "True"), ("0", "False")]
    pairs = []
    for part in (raw or "").split("|"):
        code, _, label = part.partition(",")
        if code.strip():
            pairs.append((code.strip(), clean_label(label)))
    return pairs


def _numbered(pairs: Sequence[tuple[str, str]]) -> tuple[Choice, ...]:
    """Whole-number codes are shown as themselves, so the number typed is the code stored;
    otherwise the choices are numbered 1, 2, 3 in order."""
    codes = [code for code, _ in pairs]
    as_codes = all(re.fullmatch(r"-?\d+", c) for c in codes) and len(set(codes)) == len(codes)
    return tuple(
        Choice(code=code, label=label, number=code if as_codes else str(position))
        for position, (code, label) in enumerate(pairs, start=1)
    )


# --- Classification --------------------------------------------------------------------------
def _number_or_blank(text: str) -> str:
    try:
        Decimal(text.strip())
    except InvalidOperation:
        return ""
    return text.strip()


def _classify(
    row: Mapping[str, str],
    *,
    known_fields: Collection[str],
    events: Collection[str] | None,
    matrix_headers: Mapping[str, str],
    warnings: list[str],
) -> Question | Skipped | tuple[str, Skipped]:
    """A Question, a refused Skipped, or ("hidden", Skipped)."""
    name = row["field_name"]
    field_type = row.get("field_type", "")
    label = clean_label(row.get("field_label", ""))
    validation = (row.get("text_validation_type_or_show_slider_number") or "").strip()
    tags = action_tags(row.get("field_annotation", ""))

    def refuse(reason: str) -> Skipped:
        return Skipped(name, label, reason)

    hiding = [tag for tag in HIDING_TAGS if tag in tags]
    if hiding and not any(tag in tags for tag in REFUSED_TAGS):
        return ("hidden", refuse(f"marked @{hiding[0]}, so surveys do not ask it"))
    if field_type == "file":
        if validation == "signature":
            return refuse("it asks for a signature, which cannot be given by text")
        return refuse("it asks for a file upload, which cannot be sent by text")
    if field_type == "calc":
        return refuse("it is a calculated field: REDCap works out its value")
    if field_type == "sql":
        return refuse("its choices come from a database query (a SQL field)")
    if field_type not in (*ASKED_TYPES, "descriptive"):
        return refuse(f"its field type “{field_type}” is not one text surveys know")
    if (row.get("matrix_ranking") or "").strip().lower() == "y":
        return refuse("it is in a ranking matrix, whose choices are ranked against each other")
    for tag, why in REFUSED_TAGS.items():
        if tag in tags:
            return refuse(f"it uses @{tag}, which text surveys cannot honour ({why})")
    if field_type == "text":
        validation = LEGACY_VALIDATIONS.get(validation, validation)
        if validation not in TEXT_VALIDATIONS:
            return refuse(f"its validation “{validation}” is not one text surveys can check")
        if (row.get("select_choices_or_calculations") or "").upper().startswith("BIOPORTAL"):
            return refuse("it searches an ontology (BioPortal) as the participant types")
    elif field_type != "slider":
        validation = ""

    shown: tuple[Choice, ...] = ()
    all_codes: tuple[str, ...] = ()
    if field_type in (*CHOICE_TYPES, "yesno", "truefalse"):
        pairs = parse_choices(field_type, row.get("select_choices_or_calculations", ""))
        if not pairs:
            return refuse("it has no choices")
        for code, choice_label in pairs:
            for word in (choice_label, code):
                if classify(word, survey_open=True) == Keyword.STOP:
                    return refuse(
                        f"its choice “{word}” is a STOP word: a participant who typed it would "
                        "be opted out of all texts. Rename the choice in REDCap."
                    )
        all_codes = tuple(code for code, _ in pairs)
        hide = set(_codes(tags.get("HIDECHOICE", "")))
        show = set(_codes(tags.get("SHOWCHOICE", "")))
        # @SHOWCHOICE wins over @HIDECHOICE where both name a choice.
        kept = [(c, lbl) for c, lbl in pairs if (c in show if show else c not in hide)]
        if not kept:
            return refuse("every choice is hidden by @HIDECHOICE/@SHOWCHOICE")
        shown = _numbered(kept)
        for choice in shown:
            if classify(choice.label, survey_open=True) == Keyword.HELP:
                warnings.append(
                    f"{name}: the choice “{choice.label}” reads as HELP, so a participant who "
                    f"types it gets the help text; they can reply {choice.number} instead."
                )
        if "RANDOMORDER" in tags:
            warnings.append(f"{name}: @RANDOMORDER is ignored; choices go in REDCap's order.")

    branching = None
    source = (row.get("branching_logic") or "").strip()
    if source:
        try:
            branching = logic.parse(source, fields=known_fields, events=events)
        except logic.LogicError as exc:
            return refuse(f"its branching logic cannot be read here: {exc.detail}")

    if field_type == "descriptive":
        form = row.get("form_name", "")
        return Question(field=name, form=form, kind=field_type, label=label, branching=branching)
    if name in matrix_headers and matrix_headers[name] and label:
        label = f"{matrix_headers[name]}\n{label}"
    minimum = (row.get("text_validation_min") or "").strip()
    maximum = (row.get("text_validation_max") or "").strip()
    slider_labels: tuple[str, ...] = ()
    if field_type == "slider":
        parts = (row.get("select_choices_or_calculations") or "").split("|")
        slider_labels = tuple(label for label in map(clean_label, parts) if label)
        minimum = _number_or_blank(minimum) or "0"
        maximum = _number_or_blank(maximum) or "100"
    default = next((tags[tag] for tag in DEFAULT_TAGS if tag in tags), "")
    if "MAXCHOICE" in tags:
        warnings.append(f"{name}: @MAXCHOICE is not checked by text surveys.")
    question = Question(
        field=name,
        form=row.get("form_name", ""),
        kind=field_type,
        label=label,
        note=clean_label(row.get("field_note", "")),
        validation=validation if field_type == "text" else "",
        minimum=minimum,
        maximum=maximum,
        required=(row.get("required_field") or "").strip().lower() == "y",
        branching=branching,
        choices=shown,
        all_codes=all_codes,
        default=default.strip(),
        char_limit=_whole(tags.get("CHARLIMIT", "")),
        word_limit=_whole(tags.get("WORDLIMIT", "")),
        exclusive=frozenset(_codes(tags.get("NONEOFTHEABOVE", "")))
        if field_type == "checkbox"
        else frozenset(),
        max_checked=_whole(tags.get("MAXCHECKED", "")) if field_type == "checkbox" else None,
        slider_labels=slider_labels,
    )
    return question


def instrument_from_metadata(
    metadata: Sequence[Mapping[str, str]],
    *,
    instrument: str,
    repeating: bool = False,
    events: Collection[str] | None = None,
    label: str = "",
) -> Instrument:
    """Read ``instrument`` from REDCap's metadata export (the whole dictionary, descriptive
    fields included). ``events``: the project's unique event names (longitudinal projects), so
    branching that names an unknown event is refused. Raises SurveyError, in words, when the
    dictionary has no such instrument."""
    rows = [dict(row) for row in metadata]
    if not rows:
        raise SurveyError("REDCap returned an empty data dictionary.")
    record_id_field = rows[0]["field_name"]
    dictionary = {row["field_name"]: row for row in rows}
    forms = list(dict.fromkeys(row.get("form_name", "") for row in rows))
    if instrument not in forms:
        raise SurveyError(f"“{instrument}” is not an instrument of this project's data dictionary.")
    known_fields = set(dictionary) | {f"{form}_complete" for form in forms}
    matrix_headers: dict[str, str] = {}
    group_header: dict[str, str] = {}
    for row in rows:
        group = (row.get("matrix_group_name") or "").strip()
        if group:
            header = clean_label(row.get("section_header", ""))
            group_header.setdefault(group, header)
            matrix_headers[row["field_name"]] = group_header[group]
    questions: list[Question] = []
    refused: list[Skipped] = []
    hidden: list[Skipped] = []
    warnings: list[str] = []
    for row in rows:
        if row.get("form_name") != instrument:
            continue
        if row["field_name"] == record_id_field:
            hidden.append(Skipped(record_id_field, "", "the record ID is never asked"))
            continue
        result = _classify(
            row,
            known_fields=known_fields,
            events=events,
            matrix_headers=matrix_headers,
            warnings=warnings,
        )
        if isinstance(result, Question):
            questions.append(result)
        elif isinstance(result, Skipped):
            refused.append(result)
        else:
            hidden.append(result[1])
    for question in questions:
        texts = [question.label, question.note] + [c.label for c in question.choices]
        for token in sorted({t for text in texts for t in _TOKEN.findall(text)}):
            if piped_fields(f"[{token}]") & set(dictionary):
                continue
            warnings.append(
                f"{question.field}: [{token}] is not a field of this project (smart variables "
                "are not filled in text surveys), so it is piped as blank."
            )
    return Instrument(
        name=instrument,
        questions=tuple(questions),
        refused=tuple(refused),
        hidden=tuple(hidden),
        warnings=tuple(dict.fromkeys(warnings)),
        record_id_field=record_id_field,
        dictionary=dictionary,
        repeating=repeating,
        label=label,
    )
