from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from billing import selectors as billing_selectors
from billing import services as billing_services
from portal.api import fields
from portal.api.base import ApiView
from portal.api.serializers import (
    AccountOutputSerializer,
    AccountUsageOutputSerializer,
    CreditPackRequestInputSerializer,
    CreditPackRequestOutputSerializer,
    PeriodOutputSerializer,
)
from portal.api.views.common import ListApi, answer, example
from portal.api.views.projects import PROJECT_DETAIL

PERIOD = {k: v for k, v in PROJECT_DETAIL["usage"].items() if k != "project_units"}
ACCOUNT = {
    "id": 3,
    "name": "Sleep Lab",
    "role": "owner",
    "time_zone": "America/Chicago",
    "plan": PROJECT_DETAIL["plan"],
    "active_projects": 2,
    "usage": PERIOD,
}
CREDIT_PACK = {
    "id": 19,
    "packs": 2,
    "pack_size": 1000,
    "units": 2000,
    "note": "Enrolment doubled in March.",
    "status": "requested",
    "requested_by": "dana.park@uni.example.edu",
    "requested_at": "2026-03-04T10:00:00-06:00",
    "decided_at": None,
    "decision_note": "",
}


class AccountListApi(ListApi):
    serializer_class = AccountOutputSerializer

    def get_queryset(self):
        return billing_selectors.account_rows_for_user(user=self.request.user)

    @extend_schema(
        tags=["billing"],
        summary="Your billing accounts, with this month's use",
        description="The accounts you are an owner or member of, each with its plan, active "
        "projects and this month's usage (in the account's time zone).",
        examples=[example("An account", ACCOUNT)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class UsageQuery(serializers.Serializer):
    period = fields.QueryInteger(
        required=False,
        help_text="A past period's id (from the history); default: this month.",
    )


class AccountUsageApi(ApiView):
    serializer_class = AccountUsageOutputSerializer
    query_serializer_class = UsageQuery

    @extend_schema(
        tags=["billing"],
        summary="An account's usage: a month, day by day and by project",
        description="This month (or a past one): units included, credits, used and left; the "
        "projection at the pace so far; units per day; units per project.",
        parameters=[UsageQuery],
        examples=[
            example(
                "This month",
                {
                    "account": {"id": 3, "name": "Sleep Lab"},
                    "unit": "message",
                    "period": PERIOD,
                    "projection": {
                        "pace": 103.0,
                        "projected": 3193,
                        "included_runs_out": "2026-03-10",
                        "quota_runs_out": "2026-03-10",
                        "overrun": 2193,
                    },
                    "days": [{"day": "2026-03-01", "units": 98}, {"day": "2026-03-02", "units": 0}],
                    "projects": [{"id": 12, "title": "Healthy Habits Study", "units": 230}],
                },
            )
        ],
    )
    def get(self, request, account_id: int):
        account = self.get_account()
        usage = billing_selectors.account_usage(account=account, period_id=self.query.get("period"))
        period = usage.period
        days = billing_selectors.daily_usage(period=period)
        projects = billing_selectors.project_usage_for(account=account, period=period).values(
            "id", "title", "units"
        )
        return answer(
            AccountUsageOutputSerializer,
            {
                "account": {"id": account.pk, "name": account.name},
                "unit": settings.QUOTA_UNIT,
                "period": period,
                "projection": usage.projection,
                "days": [{"day": day, "units": units} for day, units in days],
                "projects": list(projects),
            },
        )


class PeriodListApi(ListApi):
    serializer_class = PeriodOutputSerializer

    def get_queryset(self):
        return billing_selectors.periods_for(account=self.get_account())

    @extend_schema(
        tags=["billing"],
        summary="An account's usage history",
        description="Every month the account used, newest first.",
        examples=[example("A month", PERIOD)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class CreditPackRequestListApi(ListApi):
    serializer_class = CreditPackRequestOutputSerializer

    def get_queryset(self):
        return billing_selectors.credit_pack_requests_for(account=self.get_account())

    @extend_schema(
        tags=["billing"],
        summary="An account's credit-pack requests",
        description="Asked for, approved or rejected, newest first.",
        examples=[example("A request", CREDIT_PACK)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["billing"],
        summary="Ask for credit packs",
        description="Owners of the account ask for packs of the plan's size; the "
        "administrators are e-mailed, and the credits are added when one approves (held texts "
        "then go out).",
        request=CreditPackRequestInputSerializer,
        responses={201: CreditPackRequestOutputSerializer},
        examples=[
            example("Two packs", {"packs": 2, "note": "Enrolment doubled in March."}, request=True),
            example("Asked", CREDIT_PACK, status=201),
        ],
    )
    def post(self, request, account_id: int):
        account = self.get_account(owner_required=True)
        data = self.body(CreditPackRequestInputSerializer)
        obj = billing_services.credit_pack_request_create(
            account=account, packs=data["packs"], note=data.get("note", ""), actor=request.user
        )
        return answer(CreditPackRequestOutputSerializer, obj, status=201)
