from dataclasses import dataclass, field

from django.conf import settings
from django.utils.functional import SimpleLazyObject

from billing import selectors
from billing.models import UsagePeriod


@dataclass
class QuotaBanner:
    alerts: list[UsagePeriod] = field(default_factory=list)  # the user's accounts at 80%+
    accounts_near: int = 0  # for server administrators: every account at 80%+
    unit_label: str = "messages"

    def __bool__(self) -> bool:
        return bool(self.alerts or self.accounts_near)


def quota(request) -> dict:
    """`quota_banner`: the user's accounts at or past 80% of their included units this month
    (and, for server administrators, how many accounts are). Lazy: queried only when a page
    shows the banner."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def banner() -> QuotaBanner:
        return QuotaBanner(
            alerts=selectors.quota_alerts_for_user(user=user),
            accounts_near=selectors.accounts_near_quota_count() if user.is_server_admin else 0,
            unit_label="segments" if settings.QUOTA_UNIT == "segment" else "messages",
        )

    return {"quota_banner": SimpleLazyObject(banner)}
