"""A participant's reply, read into the value REDCap stores, or explained when it does not fit.

Forgiving as a coordinator would expect (docs/redcap.md, "Text surveys"):

- case, spacing and a trailing period or "!" never matter for a coded answer;
- yes/no: YES, Y, YEAH, YEP, 1 / NO, N, NOPE, 0, with "please", "thanks"... around them
  (true/false likewise, with T and F);
- a choice: the number shown, the REDCap code, or the label; checkboxes: "1,3", "1 3",
  "1 and 3", labels too;
- numbers: "7", "+7", "7.", "7 hours", "seven" (zero to twenty), "1,000" as a thousand; in a
  field whose decimals are points "1,5" is refused, never read as 1.5;
- dates and times by the field's own validation (``messaging.surveys.dates``);
- SKIP skips an optional question; OK takes the @DEFAULT when there is one.

Refused, with REDCap's own words where it has them: an empty reply, emoji, text over
REDCap's 65,535 characters or the field's @CHARLIMIT/@WORDLIMIT, values outside the range.
The caller recognises STOP and HELP first (``messaging.keywords.classify``, with
``survey_open=True``), so YES and NO stay answers.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from messaging import keywords, piping
from messaging.surveys import dates
from messaging.surveys.fields import (
    DATE_VALIDATIONS,
    DATETIME_SECONDS_VALIDATIONS,
    DATETIME_VALIDATIONS,
    REDCAP_TEXT_LIMIT,
    Instrument,
    Question,
)

SKIP_WORDS = ("skip",)
DEFAULT_WORDS = ("ok", "okay")
YES = ("yes", "y", "yeah", "yep", "yup", "1")
NO = ("no", "n", "nope", "nah", "0")
TRUE = ("true", "t", *YES)
FALSE = ("false", "f", *NO)
NUMBER_WORDS = {
    word: number
    for number, word in enumerate(
        (
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
            *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"),
            *("seventeen", "eighteen", "nineteen", "twenty"),
        )
    )
}

# REDCap's own messages (its data-entry validation texts; docs/redcap.md, "Text surveys").
NOT_A_NUMBER = "This value you provided is not a number. Please try again."
NOT_AN_INTEGER = "This value you provided is not an integer. Please try again."
OUT_OF_RANGE = "The value you provided must be within the suggested range"
BAD_FORMAT = (
    "The value you provided could not be validated because it does not follow the expected "
    "format. Please try again."
)
BAD_TIME = (
    "The value entered must be a time value in the following format HH:MM within the range "
    "00:00-23:59 (e.g., 04:32 or 23:19)."
)
BAD_EMAIL = "This field must be a valid email address (like joe@user.com). Please re-enter it now."
BAD_PHONE = (
    "This field must be a 10 digit U.S. phone number (like 415 555 1212). Please re-enter it now."
)
BAD_ZIP = "This field must be a 5 or 9 digit U.S. ZIP Code (like 94043). Please re-enter it now."
FORMAT_LABELS = {
    "date_ymd": "Date (Y-M-D)",
    "date_mdy": "Date (M-D-Y)",
    "date_dmy": "Date (D-M-Y)",
    "datetime_ymd": "Datetime (Y-M-D H:M)",
    "datetime_mdy": "Datetime (M-D-Y H:M)",
    "datetime_dmy": "Datetime (D-M-Y H:M)",
    "datetime_seconds_ymd": "Datetime w/ seconds (Y-M-D H:M:S)",
    "datetime_seconds_mdy": "Datetime w/ seconds (M-D-Y H:M:S)",
    "datetime_seconds_dmy": "Datetime w/ seconds (D-M-Y H:M:S)",
}
# Ours, where REDCap has no words for a text.
EMPTY = "We did not get an answer. Please reply with your answer."
NO_EMOJI = "Please answer in words or numbers, without emoji."
NEEDS_ANSWER = "This question needs an answer, so it cannot be skipped."


@dataclass(frozen=True)
class Answer:
    """What REDCap stores for one question: ``value`` ("" when skipped); a checkbox's checked
    ``codes`` (``value`` joins them with commas, for display)."""

    field: str
    value: str
    codes: tuple[str, ...] = ()
    skipped: bool = False

    def columns(self, question: Question) -> dict[str, str]:
        """The export columns to import: a checkbox writes every option (``name___code``: 1 or
        0); a skipped question writes nothing."""
        if self.skipped:
            return {}
        if question.kind == "checkbox":
            return {
                checkbox_column(question.field, code): "1" if code in self.codes else "0"
                for code in question.all_codes
            }
        return {question.field: self.value}


@dataclass(frozen=True)
class Invalid:
    """A reply that does not fit, and why, in words to text back (REDCap's where it has them)."""

    field: str
    message: str


def checkbox_column(field: str, code: str) -> str:
    """REDCap's export name of a checkbox option: ``name___code`` (lower case, - as _)."""
    return f"{field}___{code.lower().replace('-', '_')}"


# --- Normalising -------------------------------------------------------------------------------
def _has_emoji(text: str) -> bool:
    """Emoji and other pictographs: astral characters, the symbol and dingbat blocks, and the
    joiners that build emoji. Older REDCap databases cannot store astral characters at all."""
    for char in text:
        code = ord(char)
        if code > 0xFFFF or 0x2600 <= code <= 0x27BF or 0x2B00 <= code <= 0x2BFF:
            return True
        if char in "\ufe0f\u200d\u20e3":
            return True
    return False


def _normal(text: str) -> str:
    """For coded answers: compatibility-folded, case-folded, spaces collapsed, a trailing
    period, "!" or "?" dropped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = " ".join(text.split())
    return re.sub(r"\s*[.!?]+$", "", text).strip()


def _plain(text: str) -> str:
    """Accents removed, for matching labels (Café = cafe)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# --- Ranges --------------------------------------------------------------------------------
def resolve_bound(
    bound: str, *, values: Mapping[str, object], now: dt.datetime, validation: str
) -> str:
    """A minimum or maximum as REDCap stores values: "today"/"now" become the date (and time),
    "[field]" becomes that field's value (blank: no bound)."""
    bound = bound.strip()
    if bound.lower() == "today":
        return now.date().isoformat()
    if bound.lower() == "now":
        if validation in DATE_VALIDATIONS:
            return now.date().isoformat()
        return now.strftime("%Y-%m-%d %H:%M" + (":%S" if "seconds" in validation else ""))
    if found := re.fullmatch(r"\[([A-Za-z][A-Za-z0-9_]*)\]", bound):
        return str(values.get(found.group(1), "") or "").strip()
    return bound


def bounds(
    question: Question, *, values: Mapping[str, object], now: dt.datetime
) -> tuple[str, str]:
    return tuple(  # type: ignore[return-value]
        resolve_bound(b, values=values, now=now, validation=question.validation)
        for b in (question.minimum, question.maximum)
    )


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _outside(value: str, low: str, high: str, *, numeric: bool) -> bool:
    if numeric:
        number = _decimal(value)
        lower = _decimal(low) if low else None
        upper = _decimal(high) if high else None
        return number is not None and (
            (lower is not None and number < lower) or (upper is not None and number > upper)
        )
    # Dates, datetimes and times are stored so that they order as text.
    return bool((low and value < low[: len(value)]) or (high and value > high[: len(value)]))


def range_words(low: str, high: str) -> str:
    """REDCap's range, "(0 - 24)", with "no limit" for a missing side."""
    return f"({low or 'no limit'} - {high or 'no limit'})"


# --- Numbers -----------------------------------------------------------------------------
_UNIT_TAIL = re.compile(r"\s*[a-z%]+(?:\s+[a-z]+)?")
_APPROXIMATELY = re.compile(r"^(?:about|around|approx(?:imately)?|roughly|~)\s*")


def _number_text(reply: str, *, comma_decimal: bool) -> tuple[str | None, str]:
    """(the number as REDCap would store it, or None; why not, in words)."""
    text = _APPROXIMATELY.sub("", _normal(reply))
    if text in NUMBER_WORDS:
        return str(NUMBER_WORDS[text]), ""
    found = re.match(r"[+-]?[\d.,]*\d", text)
    if found is None:
        return None, NOT_A_NUMBER
    number, tail = found.group(), text[found.end() :]
    if tail and not _UNIT_TAIL.fullmatch(tail):  # "7 hours" is 7; "7 or 8" is not a number
        return None, NOT_A_NUMBER
    number = number.lstrip("+")
    if comma_decimal:
        if re.fullmatch(r"-?\d+(?:[.,]\d+)?", number):
            return number.replace(".", ","), ""
        return None, NOT_A_NUMBER
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", number):
        return number.replace(",", ""), ""  # 1,000 is a thousand
    if re.fullmatch(r"-?(?:\d+(?:\.\d+)?|\.\d+)", number):
        return number, ""
    if "," in number:
        return None, f"{NOT_A_NUMBER} Use a point for decimals, like 1.5."
    return None, NOT_A_NUMBER


def _decimals_wanted(validation: str) -> int | None:
    found = re.match(r"number_(\d)dp", validation)
    return int(found.group(1)) if found else None


# --- The parser ----------------------------------------------------------------------------
def default_answer(
    question: Question, *, values: Mapping[str, object], now: dt.datetime | None = None
) -> Answer | None:
    """The @DEFAULT, piped from the record and read like a reply; None when there is none or it
    does not fit the field."""
    if not question.default:
        return None
    raw = {key: "" if value is None else str(value) for key, value in values.items()}
    text = piping.render(question.default, piping.PipingContext(values=raw)).strip()
    if not text:
        return None
    answer = parse_answer(question, text, values=values, now=now, use_default=False)
    return answer if isinstance(answer, Answer) else None


def offers_default(question: Question) -> bool:
    labels = {_normal(choice.label) for choice in question.choices}
    return bool(question.default) and not labels & set(DEFAULT_WORDS)


def parse_answer(
    question: Question,
    reply: str,
    *,
    values: Mapping[str, object] | None = None,
    now: dt.datetime | None = None,
    use_default: bool = True,
) -> Answer | Invalid:
    """Read ``reply`` as an answer to ``question``. ``values`` are the record's values and the
    answers so far (flat export names), for dynamic ranges and the @DEFAULT; ``now`` is the
    participant's clock ("today", two-digit years, "today" as a bound)."""
    if not question.asks:
        raise ValueError(f"{question.field} is descriptive: it takes no answer.")
    values = values or {}
    now = now or timezone.localtime().replace(tzinfo=None)
    text = (reply or "").strip()
    if not text:
        return Invalid(question.field, EMPTY)
    if _has_emoji(text):
        return Invalid(question.field, NO_EMOJI)
    normal = _normal(text)
    if normal in SKIP_WORDS:
        if question.optional:
            return Answer(question.field, "", skipped=True)
        return Invalid(question.field, NEEDS_ANSWER)
    if use_default and normal in DEFAULT_WORDS and offers_default(question):
        chosen = default_answer(question, values=values, now=now)
        if chosen is not None:
            return chosen
    kind = question.kind
    if kind in ("yesno", "truefalse"):
        return _yes_no(question, normal)
    if kind in ("radio", "dropdown"):
        return _single(question, normal)
    if kind == "checkbox":
        return _checkbox(question, normal)
    if kind == "slider":
        return _slider(question, text, values=values, now=now)
    if kind == "notes" or (kind == "text" and not question.validation):
        return _free_text(question, text)
    return _validated(question, text, values=values, now=now)


_FILLER = re.compile(
    rf"^(?:(?:{'|'.join(map(re.escape, keywords.FILLER))}) )*(.+?)"
    rf"(?: (?:{'|'.join(map(re.escape, keywords.FILLER))}))*$"
)


def _yes_no(question: Question, normal: str) -> Answer | Invalid:
    yes, no = (YES, NO) if question.kind == "yesno" else (TRUE, FALSE)
    # "Yes please", "no, thanks": the politeness the keyword rules allow around a keyword.
    words = " ".join(re.sub(r"[^\w\s]", " ", normal).split())
    core = match.group(1) if (match := _FILLER.match(words)) else words
    if normal in yes or core in yes:
        return Answer(question.field, "1")
    if normal in no or core in no:
        return Answer(question.field, "0")
    words = "YES or NO" if question.kind == "yesno" else "TRUE or FALSE"
    return Invalid(question.field, f"Please reply {words}.")


def _match_choice(question: Question, part: str) -> str | None:
    """The code a part of a reply names: the number shown, then the code, then the label."""
    bare = re.sub(r"^#\s*|\)$", "", part).strip()
    for choice in question.choices:
        if bare == choice.number.casefold():
            return choice.code
    for choice in question.choices:
        if bare == choice.code.casefold():
            return choice.code
    plain = _plain(part)
    for choice in question.choices:
        if plain == _plain(_normal(choice.label)):
            return choice.code
    return None


def _numbers_shown(question: Question) -> str:
    return ", ".join(choice.number for choice in question.choices)


def _single(question: Question, normal: str) -> Answer | Invalid:
    code = _match_choice(question, normal)
    if code is not None:
        return Answer(question.field, code)
    return Invalid(
        question.field, f"Please reply with one of the numbers shown: {_numbers_shown(question)}."
    )


_SEPARATORS = re.compile(r"\s*(?:,|;|&|\+|/|\band\b)\s*")


def _checkbox(question: Question, normal: str) -> Answer | Invalid:
    codes: list[str] = []
    whole = _match_choice(question, normal)
    parts = [whole] if whole is not None else None
    if parts is None:
        parts = []
        for part in (p for p in _SEPARATORS.split(normal) if p):
            code = _match_choice(question, part)
            if code is None and " " in part:
                pieces = [_match_choice(question, piece) for piece in part.split()]
                if all(piece is not None for piece in pieces):
                    parts.extend(pieces)
                    continue
            if code is None:
                return Invalid(
                    question.field,
                    f"“{part}” is not one of the choices. Reply with the numbers of all that "
                    f"apply, like {_example(question)}.",
                )
            parts.append(code)
    codes = list(dict.fromkeys(p for p in parts if p is not None))
    exclusive = [code for code in codes if code in question.exclusive]
    if exclusive and len(codes) > 1:
        label = next(c.label for c in question.choices if c.code == exclusive[0])
        return Invalid(question.field, f"“{label}” cannot be chosen with other answers.")
    if question.max_checked is not None and len(codes) > question.max_checked:
        return Invalid(question.field, f"Please choose at most {question.max_checked}.")
    order = {choice.code: i for i, choice in enumerate(question.choices)}
    codes.sort(key=order.__getitem__)
    return Answer(question.field, ",".join(codes), codes=tuple(codes))


def _example(question: Question) -> str:
    numbers = [choice.number for choice in question.choices]
    return ",".join(numbers[::2][:2]) if len(numbers) > 2 else ",".join(numbers)


def _slider(
    question: Question, text: str, *, values: Mapping[str, object], now: dt.datetime
) -> Answer | Invalid:
    number, why = _number_text(text, comma_decimal=False)
    if number is None:
        return Invalid(question.field, why)
    value = _decimal(number)
    if value is None or value != value.to_integral_value():
        return Invalid(question.field, NOT_AN_INTEGER)
    stored = str(int(value))
    low, high = bounds(question, values=values, now=now)
    if _outside(stored, low, high, numeric=True):
        return Invalid(question.field, f"{OUT_OF_RANGE} {range_words(low, high)}.")
    return Answer(question.field, stored)


def _free_text(question: Question, text: str) -> Answer | Invalid:
    limit = min(question.char_limit or REDCAP_TEXT_LIMIT, REDCAP_TEXT_LIMIT)
    if len(text) > limit:
        if limit == REDCAP_TEXT_LIMIT:
            message = f"That answer is too long for REDCap: please keep it to {limit:,} characters."
        else:
            message = f"Please keep your answer to {limit} characters (it has {len(text)})."
        return Invalid(question.field, message)
    if question.word_limit is not None and len(text.split()) > question.word_limit:
        return Invalid(question.field, f"Please keep your answer to {question.word_limit} words.")
    return Answer(question.field, text)


def _order(validation: str) -> str:
    return validation[-3:]


def _validated(
    question: Question, text: str, *, values: Mapping[str, object], now: dt.datetime
) -> Answer | Invalid:
    validation = question.validation
    low, high = bounds(question, values=values, now=now)
    if validation == "integer" or validation.startswith("number"):
        number, why = _number_text(text, comma_decimal=validation.endswith("comma_decimal"))
        if number is None:
            return Invalid(question.field, NOT_AN_INTEGER if validation == "integer" else why)
        if validation == "integer":
            value = _decimal(number)
            if value is None or value != value.to_integral_value():
                return Invalid(question.field, NOT_AN_INTEGER)
            number = str(int(value))
        elif (places := _decimals_wanted(validation)) is not None:
            decimals = len(re.split(r"[.,]", number)[1]) if re.search(r"[.,]", number) else 0
            if decimals > places:
                label = f"Number ({places} decimal place{'s' if places > 1 else ''})"
                return Invalid(question.field, f"{BAD_FORMAT} Required format: {label}.")
            separator = "," if validation.endswith("comma_decimal") else "."
            whole, _, fraction = number.replace(",", ".").partition(".")
            number = f"{whole}{separator}{fraction.ljust(places, '0')}"
        if _outside(number, low, high, numeric=True):
            return Invalid(question.field, f"{OUT_OF_RANGE} {range_words(low, high)}.")
        return Answer(question.field, number)
    if validation in DATE_VALIDATIONS:
        day = dates.parse_date(text, order=_order(validation), today=now.date())
        if day is None:
            return _bad_date(question, now)
        stored = day.isoformat()
    elif validation in DATETIME_VALIDATIONS or validation in DATETIME_SECONDS_VALIDATIONS:
        moment = dates.parse_datetime(text, order=_order(validation), today=now.date())
        if moment is None:
            return _bad_date(question, now)
        seconds = validation in DATETIME_SECONDS_VALIDATIONS
        stored = moment.strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))
    elif validation == "time":
        clock = dates.parse_clock(text)
        if clock is None:
            return Invalid(question.field, BAD_TIME)
        stored = clock.strftime("%H:%M")
    elif validation == "email":
        address = text.strip().rstrip(".")
        if not _EMAIL.fullmatch(address):
            return Invalid(question.field, BAD_EMAIL)
        return Answer(question.field, address)
    elif validation == "phone":
        return _phone(question, text)
    else:  # zipcode
        digits = re.sub(r"[\s-]", "", _normal(text))
        if not re.fullmatch(r"\d{5}(?:\d{4})?", digits):
            return Invalid(question.field, BAD_ZIP)
        return Answer(question.field, digits if len(digits) == 5 else f"{digits[:5]}-{digits[5:]}")
    if _outside(stored, low, high, numeric=False):
        shown = [_shown_bound(bound, validation) for bound in (low, high)]
        return Invalid(question.field, f"{OUT_OF_RANGE} {range_words(*shown)}.")
    return Answer(question.field, stored)


def _shown_bound(bound: str, validation: str) -> str:
    """A stored bound as the field shows it (a date in its own order)."""
    if not bound or validation == "time":
        return bound
    try:
        day = dt.date.fromisoformat(bound[:10])
    except ValueError:
        return bound
    return (dates.display_date(day, _order(validation)) + bound[10:]).strip()


def _bad_date(question: Question, now: dt.datetime) -> Invalid:
    order = _order(question.validation)
    example = dates.display_date(now.date(), order)
    if question.validation not in DATE_VALIDATIONS:
        example += " 14:30"
    return Invalid(
        question.field,
        f"{BAD_FORMAT} Required format: {FORMAT_LABELS[question.validation]}, like {example}.",
    )


# Close to REDCap's own check: a local part of letters, digits and the usual symbols (no
# leading, trailing or doubled dot), a domain of labels, and a top-level domain of letters.
_EMAIL = re.compile(
    r"(?!\.)(?!.*\.\.)[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+(?<!\.)@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
# A North American number as REDCap checks it: area code and exchange never start with 0 or 1,
# and the area code is not N11; an extension may follow.
_PHONE = re.compile(
    r"(?:\+?1[\s.-]*)?\(?([2-9](?:0[1-9]|1[02-9]|[2-9]\d))\)?[\s.-]*([2-9]\d{2})[\s.-]*(\d{4})"
    r"(?:\s*(?:#|x\.?|ext\.?|extension)\s*(\d+))?"
)


def _phone(question: Question, text: str) -> Answer | Invalid:
    found = _PHONE.fullmatch(_normal(text))
    if found is None:
        return Invalid(question.field, BAD_PHONE)
    area, exchange, line, extension = found.groups()
    number = f"({area}) {exchange}-{line}"
    return Answer(question.field, f"{number} x{extension}" if extension else number)


# --- Values for branching and piping ------------------------------------------------------------
def with_answers(
    values: Mapping[str, object], instrument: Instrument, answers: Mapping[str, Answer]
) -> dict[str, str]:
    """The record's values with the answers so far laid over them, as flat export columns:
    what branching logic and piping read."""
    merged = {key: "" if value is None else str(value) for key, value in values.items()}
    for name, answer in answers.items():
        question = instrument.question(name)
        if answer.skipped and question.kind == "checkbox":
            merged.update(Answer(name, "").columns(question))  # every option unchecked
        elif answer.skipped:
            merged[name] = ""
        else:
            merged.update(answer.columns(question))
    return merged
