"""The OpenAPI schema's shared parts: every operation documents its error answers with the one
`Error` shape (portal/api/errors.py), and 429 its Retry-After header."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework.permissions import AllowAny

from portal.api.errors import ErrorSerializer

WRITES = ("POST", "PUT", "PATCH")


def _example(status: int, code: str, detail: str, fields: dict | None = None) -> OpenApiExample:
    return OpenApiExample(
        code,
        value={"status": status, "code": code, "detail": detail, "fields": fields or {}},
        response_only=True,
        status_codes=[str(status)],
    )


ERRORS = {
    "400": (
        "The input was refused: `fields` names each refused field (or query parameter) with "
        "its messages, the same ones the web pages show. Nothing was saved.",
        _example(
            400,
            "invalid",
            "Some fields were refused: body. Nothing was saved.",
            {"body": ["Write the text of the message."]},
        ),
    ),
    "401": (
        "No token was sent, or it is unknown, revoked (a password change revokes it) or expired.",
        _example(401, "not_authenticated", "Authentication credentials were not provided."),
    ),
    "403": (
        "The token may only read, or your role does not allow this (for example a viewer "
        "changing a message).",
        _example(
            403,
            "permission_denied",
            "This needs the editor role on the project; you are a viewer.",
        ),
    ),
    "404": (
        "No such object, or not one you may see: another project's objects answer 404 too.",
        _example(404, "not_found", "No such project."),
    ),
    "413": (
        "The request body is larger than the limit (64 KB).",
        _example(413, "payload_too_large", "The request body is larger than 64 KB."),
    ),
    "415": (
        "The body is not JSON (send Content-Type: application/json).",
        _example(415, "unsupported_media_type", 'Unsupported media type "text/plain".'),
    ),
    "429": (
        "Too many requests for this token (or address). Retry after the seconds in the "
        "Retry-After header.",
        _example(
            429,
            "throttled",
            "Too many requests from this token: at most 300 a minute. Try again in 12 seconds.",
        ),
    ),
}


class ApiAutoSchema(AutoSchema):
    def _is_public(self) -> bool:
        return any(isinstance(p, AllowAny) or p is AllowAny for p in self.view.get_permissions())

    def _error_codes(self) -> list[str]:
        if getattr(self.view, "schema_error_codes", None) is not None:
            return list(self.view.schema_error_codes)
        codes = ["400"]
        if not self._is_public():
            codes += ["401", "403"]
        if self.path_regex.count("(?P<") or "{" in self.path:
            codes.append("404")
        if self.method in WRITES:
            codes += ["413", "415"]
        if self.view.throttle_classes:
            codes.append("429")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code in responses:
                continue
            description, example = ERRORS[code]
            responses[code] = self._get_response_for_code(
                OpenApiResponse(ErrorSerializer, description=description, examples=[example]),
                code,
                direction=direction,
            )
            if code == "429":
                responses[code]["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before trying again.",
                        "schema": {"type": "integer", "minimum": 1},
                    }
                }
        return responses


def strict_request_bodies(result, generator, request, public):
    """Request bodies take the fields they list and no other (the API refuses the rest, with
    the field named), so the schema says so: `additionalProperties: false`."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.ApiTokenAuthentication"
    name = "tokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "Your personal token, made on your profile page, with its prefix: "
            "`Token 4f1c…`. Read-only unless you made it read-and-write.",
        }
