"""Editing plans and accounts in the Django admin."""

import pytest
from django.urls import reverse

from billing.models import Account, Plan, UsagePeriod
from portal.models import AuditEvent
from tests.factories import AccountFactory, ProjectFactory, UsagePeriodFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def plan_form(plan: Plan, **changes) -> dict:
    data = {
        "name": plan.name,
        "project_limit": plan.project_limit,
        "monthly_messages": plan.monthly_messages,
        "pack_size": plan.pack_size,
        "pack_price": "",
        "is_active": "on",
        "sort_order": plan.sort_order,
    }
    data.update(changes)
    return data


@pytest.fixture
def busy_account(instance, clock):
    clock.local(2026, 11, 11, 12, 0)
    account = AccountFactory(name="Busy Lab", plan=Plan.objects.get(name="Basic"))
    for _ in range(3):
        ProjectFactory(account=account, redcap_instance=instance)
    UsagePeriodFactory(account=account, used=800)
    return account


def test_lowering_a_plan_below_what_accounts_use_lists_them_and_saves_nothing(
    as_user, server_admin, busy_account
):
    basic = Plan.objects.get(name="Basic")
    url = reverse("admin:billing_plan_change", args=[basic.pk])

    response = as_user(server_admin).post(
        url, plan_form(basic, project_limit=2, monthly_messages=500)
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "1 account(s) on this plan already use more than the new limits" in html
    assert "Busy Lab: 3 active projects, 800 units used this month" in html
    basic.refresh_from_db()
    assert (basic.project_limit, basic.monthly_messages) == (4, 1000)


def test_confirming_saves_the_lower_limits_and_names_the_accounts_again(
    as_user, server_admin, busy_account
):
    basic = Plan.objects.get(name="Basic")
    client = as_user(server_admin)
    response = client.post(
        reverse("admin:billing_plan_change", args=[basic.pk]),
        plan_form(basic, project_limit=2, monthly_messages=500, confirm_over="on"),
        follow=True,
    )
    assert "Saved. These accounts use more than the plan&#x27;s new limits: Busy Lab" in (
        response.content.decode()
    )
    basic.refresh_from_db()
    assert (basic.project_limit, basic.monthly_messages) == (2, 500)
    # This month keeps its 1,000; the smaller quota starts next month.
    assert UsagePeriod.objects.get(account=busy_account).included == 1000
    assert AuditEvent.objects.filter(action="plan.changed").exists()


def test_raising_a_plan_needs_no_confirmation_and_reaches_this_month(
    as_user, server_admin, busy_account
):
    basic = Plan.objects.get(name="Basic")
    response = as_user(server_admin).post(
        reverse("admin:billing_plan_change", args=[basic.pk]),
        plan_form(basic, monthly_messages=1500),
    )
    assert response.status_code == 302
    assert UsagePeriod.objects.get(account=busy_account).included == 1500


def test_an_account_cannot_be_moved_in_the_admin_to_a_plan_too_small(
    as_user, server_admin, instance
):
    account = AccountFactory(name="Wide Lab", plan=Plan.objects.get(name="Plus"))
    for _ in range(5):
        ProjectFactory(account=account, redcap_instance=instance)
    basic = Plan.objects.get(name="Basic")
    response = as_user(server_admin).post(
        reverse("admin:billing_account_change", args=[account.pk]),
        {
            "name": account.name,
            "plan": basic.pk,
            "time_zone": account.time_zone,
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "allows 4 active projects and “Wide Lab” has 5" in response.content.decode()
    assert Account.objects.get(pk=account.pk).plan.name == "Plus"


def test_an_account_moved_in_the_admin_goes_through_the_plan_change_service(as_user, server_admin):
    account = AccountFactory(name="Small Lab", plan=Plan.objects.get(name="Basic"))
    plus = Plan.objects.get(name="Plus")
    response = as_user(server_admin).post(
        reverse("admin:billing_account_change", args=[account.pk]),
        {
            "name": account.name,
            "plan": plus.pk,
            "time_zone": account.time_zone,
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert Account.objects.get(pk=account.pk).plan == plus
    assert AuditEvent.objects.filter(action="account.plan_changed").exists()


def test_usage_counters_are_read_only_in_the_admin(as_user, server_admin, busy_account):
    period = UsagePeriod.objects.get(account=busy_account)
    client = as_user(server_admin)
    assert client.get(reverse("admin:billing_usageperiod_changelist")).status_code == 200
    response = client.post(
        reverse("admin:billing_usageperiod_change", args=[period.pk]), {"used": 0}
    )
    assert response.status_code == 403
    period.refresh_from_db()
    assert period.used == 800
