"""Helpers shared by the billing services."""

from typing import TypeVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from billing.models import (
    Account,
    AccountMembership,
    CreditPackRequest,
    PlanChangeRequest,
    RequestStatus,
)

T = TypeVar("T", CreditPackRequest, PlanChangeRequest)


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def assert_owner(*, account: Account, actor, doing: str) -> None:
    is_owner = AccountMembership.objects.filter(
        account=account, user=actor, role=AccountMembership.Role.OWNER
    ).exists()
    if not is_owner:
        raise PermissionDenied(f"Only an owner of the account “{account.name}” can {doing}.")


def assert_server_admin(actor) -> None:
    if not getattr(actor, "is_server_admin", False):
        raise PermissionDenied("Only a server administrator can decide on this request.")


def lock_open(model: type[T], obj: T) -> T:
    """Lock a credit-pack or plan-change request that must still be waiting for a decision."""
    locked = model.objects.select_for_update(no_key=True).select_related("account").get(pk=obj.pk)
    if locked.status != RequestStatus.REQUESTED:
        raise ValidationError(
            f"This request was already {locked.get_status_display().lower()}"
            f"{' by ' + str(locked.decided_by) if locked.decided_by_id else ''}."
        )
    return locked


def decide(obj: T, status: str, actor, note: str) -> None:
    obj.status = status
    obj.decided_by = actor
    obj.decided_at = timezone.now()
    obj.decision_note = note.strip()
    obj.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
