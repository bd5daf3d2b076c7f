from django.core.exceptions import ValidationError
from django.db import transaction

from billing.models import Account, AccountMembership, Plan
from billing.signals import audit


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


def account_assert_project_slot(*, account: Account) -> None:
    """Raise ValidationError unless the account's plan has room for one more active project.

    Call inside the transaction that adds the project; the account row is locked so two
    approvals cannot both take the last slot.
    """
    account = Account.objects.select_for_update().select_related("plan").get(pk=account.pk)
    active = account.projects.exclude(status="archived").count()
    limit = account.plan.project_limit
    if active >= limit:
        raise ValidationError(
            f"The account “{account.name}” is on the {account.plan.name} plan, which allows "
            f"{limit} active project{'s' if limit != 1 else ''}, and it already has {active}. "
            "Archive one of its projects or move the account to a larger plan first."
        )
