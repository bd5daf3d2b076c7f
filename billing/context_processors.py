from django.conf import settings
from django.utils.functional import SimpleLazyObject

from billing import selectors


def quota(request) -> dict:
    """`quota_alerts` (the user's accounts at 80% or more this month) and, for server
    administrators, `accounts_near_quota`. Lazy: queried only when a page shows the banner."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "quota_unit_label": "segments" if settings.QUOTA_UNIT == "segment" else "messages",
        "quota_alerts": SimpleLazyObject(lambda: selectors.quota_alerts_for_user(user=user)),
        "accounts_near_quota": SimpleLazyObject(
            lambda: selectors.accounts_near_quota_count() if user.is_server_admin else 0
        ),
    }
