"""Input fields that take JSON as it is typed: a number is not text, "true" is not a boolean and
"5" is not a number. DRF's own fields convert such values silently; the API refuses them, with
the field named, so what the schema calls invalid is never accepted."""

import re

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from portal.api.base import MAX_ID


class _Strict:
    kinds: tuple[type, ...] = (str,)
    words = "text"

    def to_internal_value(self, data):
        if isinstance(data, bool) and bool not in self.kinds or not isinstance(data, self.kinds):
            raise serializers.ValidationError(f"Give {self.words} here, not {_kind(data)}.")
        return super().to_internal_value(data)


def _kind(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "something else"


class Text(_Strict, serializers.CharField):
    pass


class Email(_Strict, serializers.EmailField):
    words = "an e-mail address"


class Choice(_Strict, serializers.ChoiceField):
    words = "one of the listed words"


DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
LOCAL_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"


class Date(_Strict, serializers.DateField):
    words = "a date (YYYY-MM-DD)"

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.match(DATE, data):
            raise serializers.ValidationError(f"Give a date as YYYY-MM-DD, not “{data[:40]}”.")
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": LOCAL_TIME, "example": "10:00"})
class LocalTime(_Strict, serializers.TimeField):
    """A time of day with no time zone (the participant's own, or the project's): HH:MM."""

    words = "a time of day (HH:MM)"

    def __init__(self, **kwargs):
        kwargs.setdefault("format", "%H:%M")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and not re.match(LOCAL_TIME, data):
            raise serializers.ValidationError(f"Give a time of day as HH:MM, not “{data[:40]}”.")
        return super().to_internal_value(data)


class Boolean(_Strict, serializers.BooleanField):
    kinds = (bool,)
    words = "true or false"


class Integer(_Strict, serializers.IntegerField):
    kinds = (int,)
    words = "a whole number"

    def __init__(self, **kwargs):
        kwargs.setdefault("max_value", 2_147_483_647)  # a PostgreSQL integer column
        super().__init__(**kwargs)


class ObjectId(_Strict, serializers.PrimaryKeyRelatedField):
    """An id of one of `queryset`'s objects (a whole number)."""

    kinds = (int,)
    words = "an id (a whole number)"

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and not 1 <= data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class QueryInteger(serializers.IntegerField):
    """A whole number in the query string: digits only ("12", not "12.0", "+12" or "1e1")."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str) or not data.isascii() or not data.isdigit():
            raise serializers.ValidationError(f"Give a whole number here, not “{str(data)[:40]}”.")
        return super().to_internal_value(data)
