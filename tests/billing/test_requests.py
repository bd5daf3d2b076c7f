"""Credit packs, plan changes and the project limit."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from billing import services
from billing.models import CreditPackRequest, Plan, PlanChangeRequest, UsagePeriod
from portal.models import AuditEvent
from projects.models import Project
from tests.factories import (
    AccountFactory,
    CreditPackRequestFactory,
    PlanChangeRequestFactory,
    ProjectFactory,
    UsagePeriodFactory,
)

pytestmark = pytest.mark.django_db


def plus() -> Plan:
    return Plan.objects.get(name="Plus")


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


# --- Credit packs -------------------------------------------------------------------------------


def test_an_owner_asks_for_packs_and_the_administrators_are_emailed(
    account, owner, server_admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        obj = services.credit_pack_request_create(
            account=account, packs=3, actor=owner, note="Recruitment is ahead."
        )
    assert (obj.packs, obj.pack_size, obj.units, obj.status) == (3, 1000, 3000, "requested")
    assert [m.to for m in mail.outbox] == [[server_admin.email]]
    assert "3,000" in mail.outbox[0].subject
    assert "credit_pack.requested" in audit_actions()


@pytest.mark.parametrize("packs", [0, -2, None])
def test_a_zero_or_negative_pack_count_is_refused_and_nothing_is_written(account, owner, packs):
    with pytest.raises(ValidationError) as exc:
        services.credit_pack_request_create(account=account, packs=packs, actor=owner)
    assert exc.value.message_dict["packs"] == ["Ask for at least one pack."]
    assert not CreditPackRequest.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="credit_pack").exists()


def test_a_member_or_an_outsider_cannot_ask_for_packs(account, member, other_researcher):
    for person in (member, other_researcher):
        with pytest.raises(PermissionDenied, match="Only an owner of the account “Sleep Lab”"):
            services.credit_pack_request_create(account=account, packs=1, actor=person)
    assert not CreditPackRequest.objects.exists()


def test_approval_adds_the_credits_at_once_audits_and_emails_the_owners(
    account, owner, server_admin, clock, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=account, used=1000)
    request = CreditPackRequestFactory(account=account, packs=2, requested_by=owner)

    with django_capture_on_commit_callbacks(execute=True):
        services.credit_pack_request_approve(
            credit_pack=request, actor=server_admin, note="Charged to the lab's fund."
        )

    request.refresh_from_db()
    assert (request.status, request.decided_by, request.decision_note) == (
        "approved",
        server_admin,
        "Charged to the lab's fund.",
    )
    period = UsagePeriod.objects.get(account=account)
    assert (period.credits, period.credits_left, period.available) == (2000, 2000, 2000)
    assert "credit_pack.approved" in audit_actions()
    [message] = mail.outbox
    assert message.to == [owner.email]
    assert "approved" in message.subject
    assert "2,000 credit messages were added" in message.body


def test_approving_twice_adds_the_credits_once(account, owner, server_admin):
    request = CreditPackRequestFactory(account=account, requested_by=owner)
    services.credit_pack_request_approve(credit_pack=request, actor=server_admin)
    with pytest.raises(ValidationError, match="already approved"):
        services.credit_pack_request_approve(credit_pack=request, actor=server_admin)
    assert UsagePeriod.objects.get(account=account).credits == 1000


def test_rejecting_needs_a_note_and_adds_nothing(
    account, owner, server_admin, django_capture_on_commit_callbacks
):
    request = CreditPackRequestFactory(account=account, requested_by=owner)
    with pytest.raises(ValidationError) as exc:
        services.credit_pack_request_reject(credit_pack=request, actor=server_admin, note=" ")
    assert "Say why" in exc.value.message_dict["note"][0]

    with django_capture_on_commit_callbacks(execute=True):
        services.credit_pack_request_reject(
            credit_pack=request, actor=server_admin, note="Use the Plus plan instead."
        )
    request.refresh_from_db()
    assert request.status == "rejected"
    assert not UsagePeriod.objects.exists()
    assert "Use the Plus plan instead." in mail.outbox[0].body


def test_only_a_server_administrator_decides(account, owner):
    request = CreditPackRequestFactory(account=account, requested_by=owner)
    with pytest.raises(PermissionDenied):
        services.credit_pack_request_approve(credit_pack=request, actor=owner)
    request.refresh_from_db()
    assert request.status == "requested"


# --- Plan changes -------------------------------------------------------------------------------


def test_a_plan_change_to_the_current_plan_is_refused(account, owner):
    with pytest.raises(ValidationError) as exc:
        services.plan_change_request_create(account=account, to_plan=account.plan, actor=owner)
    assert exc.value.message_dict["to_plan"] == [
        "“Sleep Lab” is already on the Basic plan. Choose a different plan."
    ]
    assert not PlanChangeRequest.objects.exists()


def test_a_downgrade_below_the_active_projects_is_refused_with_the_numbers(
    owner, instance, server_admin
):
    account = AccountFactory(name="Big Lab", plan=plus(), owners=[owner])
    for _ in range(6):
        ProjectFactory(account=account, redcap_instance=instance)
    ProjectFactory(account=account, redcap_instance=instance, status=Project.Status.ARCHIVED)
    basic = Plan.objects.get(name="Basic")

    with pytest.raises(ValidationError) as exc:
        services.plan_change_request_create(account=account, to_plan=basic, actor=owner)
    assert exc.value.message_dict["to_plan"] == [
        "The Basic plan allows 4 active projects and “Big Lab” has 6. Archive 2 projects "
        "first, or choose a larger plan."
    ]
    with pytest.raises(ValidationError):  # an administrator cannot force it either
        services.account_plan_set(account=account, plan=basic, actor=server_admin)
    account.refresh_from_db()
    assert account.plan == plus()


def test_archived_projects_do_not_count_against_a_downgrade(owner, instance):
    account = AccountFactory(plan=plus(), owners=[owner])
    for status in ["active"] * 4 + ["archived"] * 3:
        ProjectFactory(account=account, redcap_instance=instance, status=status)
    obj = services.plan_change_request_create(
        account=account, to_plan=Plan.objects.get(name="Basic"), actor=owner
    )
    assert obj.status == "requested"


def test_only_an_owner_asks_and_only_one_change_waits_at_a_time(account, owner, member):
    with pytest.raises(PermissionDenied):
        services.plan_change_request_create(account=account, to_plan=plus(), actor=member)
    services.plan_change_request_create(account=account, to_plan=plus(), actor=owner)
    with pytest.raises(ValidationError, match="already waiting"):
        services.plan_change_request_create(
            account=account, to_plan=Plan.objects.get(name="Pro"), actor=owner
        )


def test_approval_moves_the_account_and_raises_this_months_quota_at_once(
    account, owner, server_admin, clock, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=account, used=900)
    obj = services.plan_change_request_create(account=account, to_plan=plus(), actor=owner)

    with django_capture_on_commit_callbacks(execute=True):
        services.plan_change_request_approve(plan_change=obj, actor=server_admin)

    account.refresh_from_db()
    assert account.plan == plus()
    assert UsagePeriod.objects.get(account=account).included == 3000
    assert {"account.plan_changed", "plan_change.approved"} <= set(audit_actions())
    assert [m.to for m in mail.outbox] == [[owner.email]]


def test_a_smaller_quota_starts_next_month(owner, server_admin, clock):
    account = AccountFactory(plan=plus(), owners=[owner])
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=account, used=2500)
    services.account_plan_set(
        account=account, plan=Plan.objects.get(name="Basic"), actor=server_admin
    )
    assert UsagePeriod.objects.get(account=account).included == 3000
    clock.local(2026, 12, 1, 0, 0)
    assert services.usage_period_current(account=account).included == 1000


def test_approval_checks_the_projects_again(account, owner, server_admin, instance):
    obj = PlanChangeRequestFactory(
        account=account,
        from_plan=plus(),
        to_plan=account.plan,
        requested_by=owner,
    )
    account.plan = plus()
    account.save()
    for _ in range(5):  # more than Basic's 4, added after the request
        ProjectFactory(account=account, redcap_instance=instance)

    with pytest.raises(ValidationError, match="has 5"):
        services.plan_change_request_approve(plan_change=obj, actor=server_admin)
    obj.refresh_from_db()
    account.refresh_from_db()
    assert (obj.status, account.plan) == ("requested", plus())


def test_rejecting_a_plan_change_keeps_the_plan(account, owner, server_admin):
    obj = services.plan_change_request_create(account=account, to_plan=plus(), actor=owner)
    services.plan_change_request_reject(plan_change=obj, actor=server_admin, note="Not funded.")
    account.refresh_from_db()
    assert account.plan.name == "Basic"
