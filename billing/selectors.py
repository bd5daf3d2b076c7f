from django.db.models import QuerySet

from billing.models import Account, Plan


def accounts_for_user(*, user) -> QuerySet[Account]:
    """Accounts the user belongs to (owner or member)."""
    return Account.objects.filter(memberships__user=user).select_related("plan").distinct()


def plans_offered() -> QuerySet[Plan]:
    return Plan.objects.filter(is_active=True)
