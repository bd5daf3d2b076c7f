"""Pages of `limit` items from `offset`: both checked, so a typo is an error, not page one."""

from rest_framework import exceptions
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 200


class StrictLimitOffsetPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = MAX_LIMIT

    def _number(self, request, name: str, *, minimum: int, maximum: int | None) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        words = f"a whole number from {minimum}" + (f" to {maximum}" if maximum else " up")
        if not raw.isascii() or not raw.isdigit():
            raise exceptions.ValidationError({name: [f"Use {words}; “{raw[:40]}” is not one."]})
        value = int(raw)
        if value < minimum or (maximum is not None and value > maximum):
            raise exceptions.ValidationError({name: [f"Use {words}; {value} is outside."]})
        return value

    def get_limit(self, request) -> int:
        value = self._number(request, self.limit_query_param, minimum=1, maximum=self.max_limit)
        return self.default_limit if value is None else value

    def get_offset(self, request) -> int:
        value = self._number(request, self.offset_query_param, minimum=0, maximum=None)
        return value or 0

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"How many items per page (1 to {self.max_limit}; default "
                f"{self.default_limit}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": self.offset_query_param,
                "required": False,
                "in": "query",
                "description": "How many items to skip (default 0).",
                "schema": {"type": "integer", "minimum": 0},
            },
        ]
