"""The API's own pages: where to start (`/api/`), whether StudyText works (`/api/health/`), and
the documentation (Swagger UI and ReDoc, their files served from drf-spectacular-sidecar)."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from portal.api.base import ApiView
from portal.api.serializers import HealthOutputSerializer, RootOutputSerializer
from portal.api.views.common import answer, example
from portal.health import health_report

LISTS = {
    "projects": "api-project-list",
    "billing_accounts": "api-account-list",
    "onboarding_requests": "api-onboarding-request-list",
}
DOCS = {
    "swagger_ui": "api-docs",
    "redoc": "api-redoc",
    "openapi_schema": "api-schema",
    "health": "api-health",
}


class RootApi(ApiView):
    """Public: it only names addresses."""

    permission_classes = [AllowAny]
    authentication_classes = []
    serializer_class = RootOutputSerializer

    @extend_schema(
        tags=["api"],
        summary="Where to start",
        description="Links to the documentation, the schema, the health check and the lists "
        "a token can read. Each project's participants, rules, messages, replies, inbox and "
        "text-survey results are under `/api/projects/{project_id}/`.",
        examples=[
            example(
                "Links",
                {
                    "name": "StudyText API",
                    "version": "1",
                    "documentation": {
                        "swagger_ui": "https://studytext.example.edu/api/docs/",
                        "redoc": "https://studytext.example.edu/api/redoc/",
                        "openapi_schema": "https://studytext.example.edu/api/schema/",
                        "health": "https://studytext.example.edu/api/health/",
                    },
                    "endpoints": {
                        "projects": "https://studytext.example.edu/api/projects/",
                        "billing_accounts": "https://studytext.example.edu/api/accounts/",
                        "onboarding_requests": (
                            "https://studytext.example.edu/api/onboarding-requests/"
                        ),
                    },
                },
            )
        ],
    )
    def get(self, request):
        def links(names: dict) -> dict:
            return {key: request.build_absolute_uri(reverse(name)) for key, name in names.items()}

        return answer(
            RootOutputSerializer,
            {
                "name": "StudyText API",
                "version": "1",
                "documentation": links(DOCS),
                "endpoints": links(LISTS),
            },
        )


class HealthApi(ApiView):
    """For the load balancer and monitoring: public, never rate-limited, a few cheap reads."""

    permission_classes = [AllowAny]
    authentication_classes = []
    throttle_classes = []
    serializer_class = HealthOutputSerializer
    schema_error_codes = ["400"]

    @extend_schema(
        tags=["api"],
        summary="Is StudyText working?",
        description="200 when the database and the task broker answer and the background work "
        "moves; 503 (same body, `status: failing`) when one does not, or when the task cluster "
        "is wedged: a task has waited too long, the dispatcher (every minute) has not run, or "
        "texts wait with no sender running. `problems` says which, in words. No token needed.",
        responses={200: HealthOutputSerializer, 503: HealthOutputSerializer},
        examples=[
            example(
                "Working",
                {
                    "status": "ok",
                    "problems": [],
                    "database": {"ok": True, "detail": "postgresql answers."},
                    "broker": {"ok": True, "detail": "Redis 7.0.15 answers."},
                    "oldest_waiting_task_seconds": None,
                    "dispatcher_last_ran_seconds": 21.4,
                    "sender_lease_renewed_seconds": 3.2,
                    "oldest_ready_text_seconds": 0.8,
                    "checked_at": "2026-03-04T10:00:00-06:00",
                },
            ),
            example(
                "Wedged",
                {
                    "status": "failing",
                    "problems": [
                        "The task cluster is not taking tasks: the oldest has waited 912 s "
                        "(limit 300 s)."
                    ],
                    "database": {"ok": True, "detail": "postgresql answers."},
                    "broker": {"ok": True, "detail": "Redis 7.0.15 answers."},
                    "oldest_waiting_task_seconds": 912.0,
                    "dispatcher_last_ran_seconds": 930.5,
                    "sender_lease_renewed_seconds": 944.0,
                    "oldest_ready_text_seconds": 901.3,
                    "checked_at": "2026-03-04T10:00:00-06:00",
                },
                status=503,
            ),
        ],
    )
    def get(self, request):
        report = health_report()
        status = 200 if report["status"] == "ok" else 503
        response = Response(HealthOutputSerializer(report).data, status=status)
        response["Cache-Control"] = "no-store"
        return response


# Swagger UI and ReDoc load their scripts and styles from this site (the sidecar package), and
# our templates carry no inline script. ReDoc and Swagger UI add style elements as they draw,
# and ReDoc's search runs in a blob: worker, so these two pages allow exactly that.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)


class _DocsCsp:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.get("Content-Type", "").startswith("text/html"):
            response["Content-Security-Policy"] = DOCS_CSP
        return response


class SwaggerUiView(_DocsCsp, SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"
    url_name = "api-schema"
    title = "StudyText API"
    permission_classes = [AllowAny]


class RedocView(_DocsCsp, SpectacularRedocView):
    template_name = "api/redoc.html"
    url_name = "api-schema"
    title = "StudyText API"
    permission_classes = [AllowAny]
