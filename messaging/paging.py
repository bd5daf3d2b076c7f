"""Keyset pages of the message log: "older than this text" instead of "skip 100,000 rows".

An OFFSET page costs as much as every row before it; a keyset page starts from the last text
shown, on the index the log is ordered by ((project, due_at, id)), so page 2,000 costs what page
1 does. The position travels in the address as a signed cursor: a cursor that was edited by
hand is refused with a clear message instead of being trusted (or failing with a 500).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core import signing
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

PAGE_SIZE = 50
COUNT_LIMIT = 10_000  # beyond this the log says "more than 10,000" instead of counting on
_SALT = "messaging.log.cursor"
OLDER, NEWER = "before", "after"  # the query parameters


class CursorError(ValueError):
    """A page cursor that was not made by StudyText (edited, cut short, or from elsewhere)."""

    message = (
        "That page link is damaged or was changed by hand, so the newest texts are shown "
        "instead. Use the Older and Newer links to move through the log."
    )


@dataclass(frozen=True)
class LogCursor:
    """A position in the log: the text at (due_at, pk), and which side of it is wanted."""

    direction: str  # OLDER or NEWER
    due_at: datetime.datetime
    pk: int

    @classmethod
    def older_than(cls, message) -> LogCursor:
        return cls(OLDER, message.due_at, message.pk)

    @classmethod
    def newer_than(cls, message) -> LogCursor:
        return cls(NEWER, message.due_at, message.pk)

    def token(self) -> str:
        return signing.dumps(
            [self.due_at.isoformat(), self.pk], salt=f"{_SALT}.{self.direction}", compress=True
        )

    @classmethod
    def parse(cls, token: str, direction: str) -> LogCursor:
        try:
            due_at, pk = signing.loads(token, salt=f"{_SALT}.{direction}")
            when = parse_datetime(due_at)
        except (signing.BadSignature, TypeError, ValueError) as exc:
            raise CursorError(CursorError.message) from exc
        if when is None or when.tzinfo is None or not isinstance(pk, int):
            raise CursorError(CursorError.message)
        return cls(direction, when, pk)


@dataclass
class KeysetPage:
    object_list: list
    has_older: bool
    has_newer: bool
    count: int  # how many texts match, up to COUNT_LIMIT + 1
    size: int = PAGE_SIZE

    @property
    def count_capped(self) -> bool:
        return self.count > COUNT_LIMIT

    @property
    def count_text(self) -> str:
        """ "More than 10,000 texts", "1 text", "523 texts"."""
        if self.count_capped:
            return f"More than {COUNT_LIMIT:,} texts"
        return f"{self.count:,} text{'' if self.count == 1 else 's'}"

    @property
    def older_token(self) -> str:
        return LogCursor.older_than(self.object_list[-1]).token() if self.has_older else ""

    @property
    def newer_token(self) -> str:
        return LogCursor.newer_than(self.object_list[0]).token() if self.has_newer else ""


def cursor_from(params) -> LogCursor | None:
    """The cursor a request's query string carries (None: the first page). Raises CursorError."""
    for direction in (OLDER, NEWER):
        token = params.get(direction, "")
        if token:
            return LogCursor.parse(token, direction)
    return None


def keyset_page(
    queryset: QuerySet, cursor: LogCursor | None, *, size: int = PAGE_SIZE
) -> KeysetPage:
    """One page of `queryset` (texts, newest first: ordered by -due_at, -id) from `cursor`:
    one query for the rows, one bounded COUNT, whatever the page's depth."""
    count = queryset.order_by().values("pk")[: COUNT_LIMIT + 1].count()
    if cursor is None:
        rows = list(queryset.order_by("-due_at", "-id")[: size + 1])
        return KeysetPage(rows[:size], has_older=len(rows) > size, has_newer=False, count=count)
    if cursor.direction == OLDER:
        # (due_at, id) < (cursor): written so that both SQLite and PostgreSQL seek the index.
        rows = list(
            queryset.filter(due_at__lte=cursor.due_at)
            .exclude(due_at=cursor.due_at, id__gte=cursor.pk)
            .order_by("-due_at", "-id")[: size + 1]
        )
        return KeysetPage(rows[:size], has_older=len(rows) > size, has_newer=True, count=count)
    rows = list(
        queryset.filter(due_at__gte=cursor.due_at)
        .exclude(due_at=cursor.due_at, id__lte=cursor.pk)
        .order_by("due_at", "id")[: size + 1]
    )
    has_newer = len(rows) > size
    return KeysetPage(rows[:size][::-1], has_older=True, has_newer=has_newer, count=count)
