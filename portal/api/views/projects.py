from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from billing import selectors as billing_selectors
from portal.api import fields
from portal.api.base import ApiView
from portal.api.serializers import ProjectDetailOutputSerializer, ProjectOutputSerializer
from portal.api.views.common import ListApi, answer, example
from projects import selectors as project_selectors
from projects.models import Project

PROJECT = {
    "id": 12,
    "title": "Healthy Habits Study",
    "status": "active",
    "redcap_instance": "University REDCap",
    "redcap_project_id": 4321,
    "account": "Sleep Lab",
    "account_id": 3,
    "pi_name": "Dana Park",
    "irb_protocol": "IRB-2026-0042",
    "time_zone": "America/Chicago",
    "created_at": "2026-02-03T10:15:00-06:00",
}
PROJECT_DETAIL = {
    **PROJECT,
    "status_reason": "",
    "role": "editor",
    "sending_hours": {"start": "09:00", "end": "20:00", "days": [0, 1, 2, 3, 4, 5]},
    "links": {
        "redcap": {
            "linked": True,
            "last_checked_at": "2026-03-01T08:00:00-06:00",
            "last_error": "",
        },
        "provider": {
            "linked": True,
            "provider": "twilio",
            "paused": False,
            "paused_reason": "",
            "rate_per_second": 1.0,
            "last_checked_at": "2026-03-01T08:00:00-06:00",
            "last_error": "",
        },
    },
    "setup": {"redcap": True, "provider": True, "mapping": True, "synced": True},
    "plan": {
        "id": 1,
        "name": "Basic",
        "project_limit": 4,
        "monthly_messages": 1000,
        "pack_size": 1000,
    },
    "usage": {
        "id": 31,
        "start": "2026-03-01",
        "end": "2026-03-31",
        "included": 1000,
        "credits": 0,
        "used": 412,
        "available": 588,
        "percent_of_included": 41,
        "closed_at": None,
        "project_units": 230,
    },
}


class ProjectQuery(serializers.Serializer):
    status = fields.Choice(
        choices=Project.Status.choices, required=False, help_text="Only projects in this state."
    )


class ProjectListApi(ListApi):
    """Projects the caller may see (all of them for a server administrator)."""

    serializer_class = ProjectOutputSerializer
    query_serializer_class = ProjectQuery

    def get_queryset(self):
        qs = project_selectors.projects_for_user(user=self.request.user)
        if self.query.get("status"):
            qs = qs.filter(status=self.query["status"])
        return qs.order_by("id")

    @extend_schema(
        tags=["projects"],
        summary="List your projects",
        description="The projects you are a member of (every project, for a server "
        "administrator), oldest first.",
        parameters=[ProjectQuery],
        examples=[example("A project", PROJECT)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ProjectDetailApi(ApiView):
    serializer_class = ProjectDetailOutputSerializer

    @extend_schema(
        tags=["projects"],
        summary="A project, with its links, plan and this month's use",
        description="Your role, the sending hours, whether REDCap and the SMS provider are "
        "linked (and whether texts are paused), the set-up steps done, the billing account's "
        "plan and this month's usage (with this project's own share).",
        examples=[example("A project", PROJECT_DETAIL)],
    )
    def get(self, request, project_id: int):
        project = self.get_project()
        project.role = self.role
        links = project_selectors.project_links(project=project)
        redcap, provider = links["redcap"], links["provider"]
        project.links = {
            "redcap": {
                "linked": redcap is not None,
                "last_checked_at": redcap.last_checked_at if redcap else None,
                "last_error": redcap.last_error if redcap else "",
            },
            "provider": {
                "linked": provider is not None,
                "provider": provider.provider if provider else "",
                "paused": bool(provider and provider.is_paused),
                "paused_reason": provider.paused_reason if provider else "",
                "rate_per_second": float(provider.rate_per_second) if provider else None,
                "last_checked_at": provider.last_checked_at if provider else None,
                "last_error": provider.last_error if provider else "",
            },
        }
        project.setup = project_selectors.project_setup_state(project=project)
        period = billing_selectors.account_usage(account=project.account).period
        row = (
            billing_selectors.project_usage_for(account=project.account, period=period)
            .filter(pk=project.pk)
            .values_list("units", flat=True)
            .first()
        )
        period.project_units = row or 0
        project.month_usage = period
        return answer(ProjectDetailOutputSerializer, project)
