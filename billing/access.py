"""Who may see a billing account. Every account-scoped view goes through here."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from billing.models import Account, AccountMembership

ADMIN = "admin"  # a server administrator who is not a member of the account


def account_role(*, user, account: Account) -> str | None:
    """ "owner" or "member" for people on the account, "admin" for other server administrators."""
    if not user.is_authenticated:
        return None
    role = (
        AccountMembership.objects.filter(account=account, user=user)
        .values_list("role", flat=True)
        .first()
    )
    if role:
        return role
    return ADMIN if user.is_server_admin else None


def account_get_for_user(*, user, pk: int, owner_required: bool = False) -> tuple[Account, str]:
    """Return (account, role). Outsiders get 404; members asking for an owner's action get 403."""
    account = Account.objects.select_related("plan").filter(pk=pk).first()
    if account is None:
        raise Http404("No such account.")
    role = account_role(user=user, account=account)
    if role is None:
        raise Http404("No such account.")
    if owner_required and role != AccountMembership.Role.OWNER:
        raise PermissionDenied(
            f"Only an owner of the account “{account.name}” can do this. Members can see its "
            "usage; ask one of its owners."
        )
    return account, role
