"""Billing e-mails. Each is sent after the transaction that caused it commits, and loads what it
needs by id so it never sends a stale or rolled-back fact."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from billing import mail
from billing.models import (
    Account,
    AccountMembership,
    CreditPackRequest,
    PlanChangeRequest,
    UsagePeriod,
)

# The portal's group for server administrators (portal.models.SERVER_ADMIN_GROUP); billing does
# not import the portal, so the name is repeated here.
SERVER_ADMIN_GROUP = "Server administrators"


def server_admin_emails() -> list[str]:
    users = get_user_model().objects.filter(is_active=True)
    admins = users.filter(Q(groups__name=SERVER_ADMIN_GROUP) | Q(is_superuser=True))
    return sorted(set(admins.values_list("email", flat=True)))


def account_owner_emails(account: Account) -> list[str]:
    return sorted(
        account.memberships.filter(role=AccountMembership.Role.OWNER, user__is_active=True)
        .values_list("user__email", flat=True)
        .distinct()
    )


def _account_url(account: Account) -> str:
    return settings.SITE_URL + reverse("billing-account-detail", args=[account.pk])


def _send(template: str, context: dict, recipients: list[str]) -> None:
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return
    context = {**context, "site_url": settings.SITE_URL, "unit": settings.QUOTA_UNIT}
    subject = render_to_string(f"billing/email/{template}_subject.txt", context)
    mail.send(subject, render_to_string(f"billing/email/{template}.txt", context), recipients)


def quota_threshold_reached(*, period_id: int, percent: int) -> None:
    period = UsagePeriod.objects.select_related("account", "account__plan").get(pk=period_id)
    account = period.account
    _send(
        "quota_threshold",
        {
            "period": period,
            "account": account,
            "percent": percent,
            "url": _account_url(account),
            "admin_url": settings.SITE_URL + reverse("billing-admin-accounts"),
        },
        account_owner_emails(account) + server_admin_emails(),
    )


def credit_pack_requested(*, request_id: int) -> None:
    obj = CreditPackRequest.objects.select_related("account", "requested_by").get(pk=request_id)
    _send(
        "credit_pack_requested",
        {"obj": obj, "url": settings.SITE_URL + reverse("billing-review")},
        server_admin_emails(),
    )


def credit_pack_decided(*, request_id: int) -> None:
    obj = CreditPackRequest.objects.select_related("account", "decided_by").get(pk=request_id)
    _send(
        "credit_pack_decided",
        {"obj": obj, "url": _account_url(obj.account)},
        account_owner_emails(obj.account),
    )


def plan_change_requested(*, request_id: int) -> None:
    obj = PlanChangeRequest.objects.select_related(
        "account", "from_plan", "to_plan", "requested_by"
    ).get(pk=request_id)
    _send(
        "plan_change_requested",
        {"obj": obj, "url": settings.SITE_URL + reverse("billing-review")},
        server_admin_emails(),
    )


def plan_change_decided(*, request_id: int) -> None:
    obj = PlanChangeRequest.objects.select_related(
        "account", "from_plan", "to_plan", "decided_by"
    ).get(pk=request_id)
    _send(
        "plan_change_decided",
        {"obj": obj, "url": _account_url(obj.account)},
        account_owner_emails(obj.account),
    )
