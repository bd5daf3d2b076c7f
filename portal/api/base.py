"""What every API view shares: strict query strings, the caller's time zone, clear 429s, and the
one access helper per kind of object (projects through projects.access, billing accounts through
billing.access), so outsiders get 404 everywhere."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone
from rest_framework import exceptions, serializers
from rest_framework.generics import GenericAPIView

from billing.access import account_get_for_user
from projects.access import project_get_for_user
from projects.models import Membership

MAX_ID = 999_999_999_999_999_999  # ids in addresses and filters: 18 digits (a 64-bit column)


class ApiThrottled(exceptions.Throttled):
    def __init__(self, *, wait: int, per: str, limit: int) -> None:
        exceptions.APIException.__init__(
            self,
            f"Too many requests from this {per}: at most {limit} a minute. Try again in "
            f"{wait} second{'s' if wait != 1 else ''} (see Retry-After).",
            "throttled",
        )
        self.wait = wait


class StrictSerializer(serializers.Serializer):
    """Input that names a field this operation does not take is refused, field by field (a
    typo, or a field only the server sets such as `status` or `created_by`)."""

    def validate(self, attrs):
        data = self.initial_data if isinstance(self.initial_data, dict) else {}
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            accepted = ", ".join(sorted(n for n, f in self.fields.items() if not f.read_only))
            raise serializers.ValidationError(
                {
                    name: [f"Unknown field. This operation accepts: {accepted or 'no fields'}."]
                    for name in unknown
                }
            )
        return attrs


class NoInput(StrictSerializer):
    """An action that takes no fields: the body is empty or `{}`."""


class ApiView(GenericAPIView):
    """Base of every API view. `query_serializer_class` lists the query parameters a GET takes;
    any other parameter is refused (400), as are paging parameters on a list that is not paged."""

    query_serializer_class: type[serializers.Serializer] | None = None
    pagination_class = None  # list views set it
    query: dict

    def check_throttles(self, request):
        for throttle in self.get_throttles():
            if not throttle.allow_request(request, self):
                raise ApiThrottled(
                    wait=int(throttle.wait() or 1),
                    per=getattr(throttle, "per", "caller"),
                    limit=getattr(throttle, "limit", 0),
                )

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not hasattr(self, request.method.lower()):
            self.query = {}
            return  # dispatch answers 405 Method Not Allowed
        zone = getattr(request.user, "time_zone", "") or ""
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone)) if zone else timezone.deactivate()
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.deactivate()
        self.query = self._strict_query(request)

    def _strict_query(self, request) -> dict:
        reading = request.method in ("GET", "HEAD")
        query_class = self.query_serializer_class if reading else None
        allowed = set(query_class().fields) if query_class else set()
        if reading and self.pagination_class is not None:
            allowed |= {"limit", "offset"}
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            words = ", ".join(sorted(allowed)) if allowed else "no query parameters"
            raise exceptions.ValidationError(
                {
                    name: [f"Unknown query parameter. This address takes: {words}."]
                    for name in unknown
                }
            )
        repeated = sorted(
            n for n in request.query_params if len(request.query_params.getlist(n)) > 1
        )
        if repeated:
            raise exceptions.ValidationError(
                {name: ["Give this query parameter once."] for name in repeated}
            )
        if query_class is None:
            return {}
        serializer = query_class(data=request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    # --- Access: one helper per kind of object --------------------------------------------------
    def get_project(self, *, min_role: str = Membership.Role.VIEWER):
        project, self.role = project_get_for_user(
            user=self.request.user, pk=self.kwargs["project_id"], min_role=min_role
        )
        return project

    def get_account(self, *, owner_required: bool = False):
        account, self.role = account_get_for_user(
            user=self.request.user, pk=self.kwargs["account_id"], owner_required=owner_required
        )
        return account

    def body(self, serializer_class, *, partial: bool = False, instance=None) -> dict:
        """The request's JSON body, validated by `serializer_class` (strict: unknown fields are
        refused). An absent body counts as `{}`."""
        declared = self.request.META.get("CONTENT_LENGTH") or "0"
        media = self.request._request.content_type or ""
        if declared.isdigit() and int(declared) > 0 and media != "application/json":
            # A form or multipart body would otherwise read as empty: say what is wrong.
            raise exceptions.UnsupportedMediaType(
                media or "none",
                detail=f"Send the body as JSON (Content-Type: application/json), not "
                f"“{media or 'no type'}”.",
            )
        data = self.request.data if self.request.data is not None else {}
        if hasattr(data, "dict") and not isinstance(data, dict):
            data = data.dict()
        serializer = serializer_class(
            data=data, partial=partial, instance=instance, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


EDITOR = Membership.Role.EDITOR
OWNER = Membership.Role.OWNER
