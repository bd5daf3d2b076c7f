"""Accounts, their plans and plan changes."""

from functools import partial

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing import emails
from billing.models import Account, AccountMembership, Plan, PlanChangeRequest, UsagePeriod
from billing.services.common import (
    assert_owner,
    assert_server_admin,
    decide,
    lock_open,
    plural,
)
from billing.services.quota import open_periods_raise_included
from billing.signals import audit

Status = PlanChangeRequest.Status


def account_create(*, name: str, plan: Plan, time_zone: str, owner, actor=None) -> Account:
    """Create a billing account with `owner` as its first owner."""
    with transaction.atomic():
        account = Account(name=name, plan=plan, time_zone=time_zone)
        account.full_clean()
        account.save()
        AccountMembership.objects.create(
            account=account, user=owner, role=AccountMembership.Role.OWNER
        )
        audit.send(
            sender=Account,
            actor=actor or owner,
            action="account.created",
            obj=account,
            message=f"Account created on the {plan.name} plan with {owner} as owner.",
        )
    return account


def _active_projects(account: Account) -> int:
    return account.projects.exclude(status="archived").count()


def account_assert_project_slot(*, account: Account) -> None:
    """Raise ValidationError unless the account's plan has room for one more active project.

    Call inside the transaction that adds the project; the account row is locked so two
    approvals cannot both take the last slot.
    """
    account = (
        Account.objects.select_for_update(of=("self",), no_key=True)
        .select_related("plan")
        .get(pk=account.pk)
    )
    active = _active_projects(account)
    limit = account.plan.project_limit
    if active >= limit:
        raise ValidationError(
            f"The account “{account.name}” is on the {account.plan.name} plan, which allows "
            f"{limit} active project{'s' if limit != 1 else ''}, and it already has {active}. "
            "Archive one of its projects or move the account to a larger plan first."
        )


def assert_plan_fits(*, account: Account, plan: Plan, active: int | None = None) -> None:
    """Raise ValidationError (on `to_plan`) if the account has more active projects than `plan`
    allows, with the numbers."""
    if active is None:
        active = _active_projects(account)
    if active > plan.project_limit:
        raise ValidationError(
            {
                "to_plan": (
                    f"The {plan.name} plan allows {plural(plan.project_limit, 'active project')}"
                    f" and “{account.name}” has {active:,}. Archive "
                    f"{plural(active - plan.project_limit, 'project')} first, or choose a "
                    "larger plan."
                )
            }
        )


def account_plan_set(*, account: Account, plan: Plan, actor) -> Account:
    """Move the account to `plan`. Refused when it has more active projects than the plan allows.

    A larger monthly quota applies to the current month at once; a smaller one from the next
    month (this month may already have used more than the smaller quota).
    """
    with transaction.atomic():
        account = (
            Account.objects.select_for_update(of=("self",), no_key=True)
            .select_related("plan")
            .get(pk=account.pk)
        )
        if plan.pk == account.plan_id:
            return account
        assert_plan_fits(account=account, plan=plan, active=_active_projects(account))
        old = account.plan
        account.plan = plan
        account.save(update_fields=["plan"])
        open_periods_raise_included(
            periods=UsagePeriod.objects.filter(account=account), included=plan.monthly_messages
        )
        audit.send(
            sender=Account,
            actor=actor,
            action="account.plan_changed",
            obj=account,
            message=f"Plan changed from {old.name} to {plan.name}.",
            data={"from_plan": old.pk, "to_plan": plan.pk},
        )
    return account


def plan_save(*, plan: Plan, actor, changed: list[str] | None = None) -> Plan:
    """Save an administrator's edit of a plan. A larger monthly quota reaches the accounts on the
    plan at once; a smaller one (or a smaller project limit) is allowed and applies from each
    account's next month, or to the next project that joins. List who is affected before saving
    (`billing.selectors.plan_accounts_over`)."""
    with transaction.atomic():
        created = plan.pk is None
        plan.full_clean()
        plan.save()
        if not created:
            open_periods_raise_included(
                periods=UsagePeriod.objects.filter(account__plan=plan),
                included=plan.monthly_messages,
            )
        audit.send(
            sender=Plan,
            actor=actor,
            action="plan.created" if created else "plan.changed",
            obj=plan,
            message=(
                f"Plan {plan.name}: {plural(plan.project_limit, 'project')}, "
                f"{plan.monthly_messages:,} units a month, packs of {plan.pack_size:,}."
            ),
            data={"changed": changed or []},
        )
    return plan


def plan_change_request_create(
    *, account: Account, to_plan: Plan, actor, note: str = ""
) -> PlanChangeRequest:
    """An owner asks to move the account to another plan; the administrators are e-mailed."""
    assert_owner(account=account, actor=actor, doing="request a plan change")
    if to_plan.pk == account.plan_id:
        raise ValidationError(
            {
                "to_plan": (
                    f"“{account.name}” is already on the {to_plan.name} plan. Choose a different "
                    "plan."
                )
            }
        )
    if not to_plan.is_active:
        raise ValidationError({"to_plan": f"The {to_plan.name} plan is no longer offered."})
    assert_plan_fits(account=account, plan=to_plan, active=_active_projects(account))
    pending = account.plan_change_requests.filter(status=Status.REQUESTED).first()
    if pending is not None:
        raise ValidationError(
            f"A change to the {pending.to_plan.name} plan is already waiting for review. "
            "Wait for the administrators' decision before asking for another."
        )
    try:
        with transaction.atomic():
            obj = PlanChangeRequest.objects.create(
                account=account,
                from_plan=account.plan,
                to_plan=to_plan,
                note=note.strip(),
                requested_by=actor,
            )
            audit.send(
                sender=PlanChangeRequest,
                actor=actor,
                action="plan_change.requested",
                obj=obj,
                message=f"Asked to move from {account.plan.name} to {to_plan.name}.",
            )
            transaction.on_commit(
                partial(emails.plan_change_requested, request_id=obj.pk), robust=True
            )
    except IntegrityError as exc:  # a twin request committed between our check and insert
        raise ValidationError("A plan change for this account is already waiting.") from exc
    return obj


def plan_change_request_approve(
    *, plan_change: PlanChangeRequest, actor, note: str = ""
) -> PlanChangeRequest:
    """Approve: the account moves to the plan (checked again against its active projects now)."""
    assert_server_admin(actor)
    with transaction.atomic():
        obj = lock_open(PlanChangeRequest, plan_change)
        account_plan_set(account=obj.account, plan=obj.to_plan, actor=actor)
        decide(obj, Status.APPROVED, actor, note)
        audit.send(
            sender=PlanChangeRequest,
            actor=actor,
            action="plan_change.approved",
            obj=obj,
            message=f"Approved the move to {obj.to_plan.name}." + (f" {note}" if note else ""),
        )
        transaction.on_commit(partial(emails.plan_change_decided, request_id=obj.pk), robust=True)
    return obj


def plan_change_request_reject(
    *, plan_change: PlanChangeRequest, actor, note: str
) -> PlanChangeRequest:
    assert_server_admin(actor)
    if not note.strip():
        raise ValidationError({"note": "Say why, so the owners know what to do next."})
    with transaction.atomic():
        obj = lock_open(PlanChangeRequest, plan_change)
        decide(obj, Status.REJECTED, actor, note)
        audit.send(
            sender=PlanChangeRequest,
            actor=actor,
            action="plan_change.rejected",
            obj=obj,
            message=f"Rejected the move to {obj.to_plan.name}: {note.strip()}",
        )
        transaction.on_commit(partial(emails.plan_change_decided, request_id=obj.pk), robust=True)
    return obj
