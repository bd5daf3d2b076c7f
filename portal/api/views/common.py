from drf_spectacular.utils import OpenApiExample
from rest_framework import mixins
from rest_framework.response import Response

from portal.api.base import ApiView
from portal.api.pagination import StrictLimitOffsetPagination


def example(name: str, value, *, request: bool = False, status: int = 200) -> OpenApiExample:
    """An example of a request body (request=True) or of the answer with `status`."""
    if request:
        return OpenApiExample(name, value=value, request_only=True)
    return OpenApiExample(name, value=value, response_only=True, status_codes=[str(status)])


class ListApi(mixins.ListModelMixin, ApiView):
    """A paged list (`limit`, `offset`)."""

    pagination_class = StrictLimitOffsetPagination

    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)


def answer(serializer_class, instance, *, status: int = 200, context=None) -> Response:
    return Response(serializer_class(instance, context=context or {}).data, status=status)
