"""Dates and times as participants text them, read by the field's own REDCap validation.

REDCap stores every date as Y-M-D and every time as 24-hour HH:MM[:SS], whatever order the
field displays (docs/redcap.md, "Text surveys"). A reply is read in the field's order:
``3/4/2026`` is March 4 for ``date_mdy`` and April 3 for ``date_dmy``; a year first
(``2026-03-04``) is always Y-M-D. A ``date_ymd`` field takes ``3/24/2026`` or ``24/3/2026``
too, where only one order makes a date, and refuses ``3/4/2026``, which could be either.
Month names (``March 4, 2026``, ``4 Mar 2026``), two-digit years, ``today`` and ``yesterday``
are read too; a date without its year is not guessed.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

ORDERS = ("ymd", "mdy", "dmy")
MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_ISO = re.compile(r"(\d{4})[-/. ](\d{1,2})[-/. ](\d{1,2})")
_NUMERIC = re.compile(r"(\d{1,2})[-/. ](\d{1,2})[-/. ](\d{4}|\d{2})")
_DAY_MONTH = re.compile(rf"(\d{{1,2}}) (?:of )?({_MONTH}) (\d{{4}}|\d{{2}})")
_MONTH_DAY = re.compile(rf"({_MONTH}) (\d{{1,2}}) (\d{{4}}|\d{{2}})")
_CLOCK = re.compile(r"(\d{1,2})(?:[:.h](\d{2}))?(?::(\d{2}))?(?: ?(am|pm))?")
_RELATIVE = {"today": 0, "yesterday": -1, "tomorrow": 1}


def _normal(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "").casefold().strip()
    text = re.sub(r"(?<![a-z])([ap])\.? ?m\.?(?![a-z])", r"\1m", text)  # p.m. -> pm
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text)  # 4th -> 4
    text = re.sub(r"[,]", " ", text)
    text = re.sub(r"[.!]+$", "", text)
    return " ".join(text.split())


def _year(text: str, today: dt.date) -> int:
    """A two-digit year is the latest of 19yy and 20yy that is not more than ten years ahead."""
    year = int(text)
    if len(text) == 4:
        return year
    return 2000 + year if 2000 + year <= today.year + 10 else 1900 + year


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str, *, order: str, today: dt.date) -> dt.date | None:
    """The date a reply names, read in the field's ``order`` (ymd, mdy, dmy); None when the
    reply is not a date, or could be two (3/4/2026 in a Y-M-D field)."""
    normal = _normal(text)
    if normal in _RELATIVE:
        return today + dt.timedelta(days=_RELATIVE[normal])
    if found := _ISO.fullmatch(normal):
        year, month, day = found.groups()
        return _date(int(year), int(month), int(day))
    if found := _DAY_MONTH.fullmatch(normal):
        day, month, year = found.groups()
        return _date(_year(year, today), MONTHS[month], int(day))
    if found := _MONTH_DAY.fullmatch(normal):
        month, day, year = found.groups()
        return _date(_year(year, today), MONTHS[month], int(day))
    if found := _NUMERIC.fullmatch(normal):
        first, second, year_text = found.groups()
        year = _year(year_text, today)
        month_first = _date(year, int(first), int(second))
        day_first = _date(year, int(second), int(first))
        if order == "mdy":
            return month_first
        if order == "dmy":
            return day_first
        if month_first and day_first and month_first != day_first:
            return None  # either order makes a date: do not guess
        return month_first or day_first
    return None


def parse_clock(text: str) -> dt.time | None:
    """A time of day: 14:30, 2:30pm, 2 pm, 9.15, 14h30, 14:30:15, noon, midnight."""
    normal = _normal(text)
    if normal == "noon":
        return dt.time(12, 0)
    if normal == "midnight":
        return dt.time(0, 0)
    found = _CLOCK.fullmatch(normal)
    if found is None:
        return None
    hour_text, minute, second, half = found.groups()
    if minute is None and half is None:
        return None  # a bare number is not a time
    hour = int(hour_text)
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "pm" else 0)
    try:
        return dt.time(hour, int(minute or 0), int(second or 0))
    except ValueError:
        return None


def parse_datetime(text: str, *, order: str, today: dt.date) -> dt.datetime | None:
    """A date followed by a time ("3/4/2026 14:30", "March 4 2026 at 2:30 pm")."""
    normal = _normal(text)
    words = normal.split(" ")
    # The time is the last one or two words ("2:30 pm"); "at" may join them.
    for size in (2, 1):
        if len(words) <= size:
            continue
        clock = parse_clock(" ".join(words[-size:]))
        if clock is None:
            continue
        rest = words[:-size]
        if rest and rest[-1] == "at":
            rest = rest[:-1]
        day = parse_date(" ".join(rest), order=order, today=today)
        if day is not None:
            return dt.datetime.combine(day, clock)
    return None


def display_date(day: dt.date, order: str) -> str:
    """A date the way the question asks for it: 03/04/2026 (mdy), 04/03/2026 (dmy), 2026-03-04."""
    if order == "mdy":
        return f"{day.month:02d}/{day.day:02d}/{day.year}"
    if order == "dmy":
        return f"{day.day:02d}/{day.month:02d}/{day.year}"
    return day.isoformat()


def pattern(order: str) -> str:
    """The shape a question asks for: MM/DD/YYYY, DD/MM/YYYY or YYYY-MM-DD."""
    return {"mdy": "MM/DD/YYYY", "dmy": "DD/MM/YYYY"}.get(order, "YYYY-MM-DD")
