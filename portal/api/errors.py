"""One JSON shape for every API error, field by field (documented in the schema as `Error`).

    {"status": 400, "code": "invalid", "detail": "Check the fields listed.",
     "fields": {"body": ["Write the text of the message."]}}

`fields` names each input field that was refused (dotted for nested values: `recur_days.2`),
with the same words the web forms use; `non_field_errors` holds what belongs to no one field.
It is empty for errors that are not about the input (401, 403, 404, 429 ...).
"""

from __future__ import annotations

import io

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.views import exception_handler as drf_exception_handler

NON_FIELD = "non_field_errors"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "The request body is too large."


class LimitedJSONParser(JSONParser):
    """JSON bodies up to settings.API_MAX_BODY_BYTES; a larger one is refused (413) before it is
    read into memory or parsed."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.API_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        too_large = PayloadTooLarge(
            f"The request body is larger than {limit // 1024} KB. Send less at once."
        )
        if declared and declared.isdigit() and int(declared) > limit:
            raise too_large
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise too_large
        try:
            return super().parse(io.BytesIO(raw), media_type, parser_context)
        except exceptions.ParseError as exc:
            raise exceptions.ParseError(
                "The request body is not valid JSON. Send a JSON object, such as "
                '{"body": "Hello"}, with Content-Type: application/json.'
            ) from exc


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field" or "field.sub": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = NON_FIELD if key in ("__all__", NON_FIELD) and not prefix else str(key)
            out.update(_flatten(value, f"{prefix}.{name}" if prefix else name))
    elif isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            out.setdefault(prefix or NON_FIELD, []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.setdefault(prefix or NON_FIELD, []).append(str(detail))
    return out


def _from_django(exc: DjangoValidationError) -> exceptions.ValidationError:
    """A service's ValidationError (field by field, or a message for the whole request)."""
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(
            {NON_FIELD if k == "__all__" else k: v for k, v in exc.message_dict.items()}
        )
    return exceptions.ValidationError({NON_FIELD: exc.messages})


def error_body(*, status_code: int, code: str, detail: str, fields=None) -> dict:
    return {"status": status_code, "code": code, "detail": detail, "fields": fields or {}}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = _from_django(exc)
    elif isinstance(exc, Http404):
        words = str(exc)
        if not words or "matches the given query" in words:  # get_object_or_404's own words
            words = "Not found here, or not something you may see."
        exc = exceptions.NotFound(words)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) if str(exc) else None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        names = ", ".join(sorted(k for k in fields if k != NON_FIELD))
        if names:
            detail = f"Some fields were refused: {names}. Nothing was saved."
        else:
            detail = " ".join(fields.get(NON_FIELD, [])) or "The request was refused."
        response.data = error_body(
            status_code=response.status_code, code="invalid", detail=detail, fields=fields
        )
        return response
    codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    response.data = error_body(
        status_code=response.status_code,
        code=codes if isinstance(codes, str) else "error",
        detail=str(detail),
    )
    return response


@csrf_exempt  # it changes nothing; a POST to a wrong address must get this 404, not a CSRF page
def json_not_found(request, *args, **kwargs) -> JsonResponse:
    """An address under /api/ that names no endpoint: the same JSON shape, not an HTML page."""
    return JsonResponse(
        error_body(
            status_code=404,
            code="not_found",
            detail="No API endpoint at this address. The list of endpoints is at /api/.",
        ),
        status=404,
    )


class ErrorSerializer(serializers.Serializer):
    """Only for the schema: what every error answer holds."""

    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(
        help_text="A stable word for programs: invalid, parse_error, not_authenticated, "
        "authentication_failed, permission_denied, not_found, method_not_allowed, "
        "unsupported_media_type, payload_too_large, throttled."
    )
    detail = serializers.CharField(help_text="What went wrong, in words a person understands.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Each refused input field (dotted for nested values, `non_field_errors` for "
        "the request as a whole) with its messages. Empty when the error is not about the input.",
    )
