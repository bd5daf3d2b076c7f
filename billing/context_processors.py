from dataclasses import dataclass, field

from django.utils.functional import SimpleLazyObject

from billing import selectors
from billing.models import UsagePeriod
from billing.services import quota_unit_label


@dataclass
class QuotaBanner:
    """What the banner shows. Every link in it opens for the person who sees it: an account's
    alert only reaches that account's members (who can see its usage page), the credit-pack link
    only its owners, and the all-accounts line only server administrators. A project member who
    is not on the project's billing account sees no banner for it (its page would be a 404); the
    project's own pages say when its texts are held."""

    alerts: list[UsagePeriod] = field(default_factory=list)  # the user's accounts at 80%+
    owned: set[int] = field(default_factory=set)  # ids of the alerting accounts the user owns
    accounts_near: int = 0  # for server administrators: every account at 80%+
    unit_label: str = "messages"

    def __bool__(self) -> bool:
        return bool(self.alerts or self.accounts_near)


def quota(request) -> dict:
    """`quota_banner`: the user's accounts at or past 80% of their included units this month
    (and, for server administrators, how many accounts are). Lazy: queried only when a page
    shows the banner; at most three queries, however many accounts alert."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def banner() -> QuotaBanner:
        alerts = selectors.quota_alerts_for_user(user=user)
        return QuotaBanner(
            alerts=alerts,
            owned=selectors.account_ids_owned_among(
                user=user, account_ids=[p.account_id for p in alerts]
            ),
            accounts_near=selectors.accounts_near_quota_count() if user.is_server_admin else 0,
            unit_label=quota_unit_label(),
        )

    return {"quota_banner": SimpleLazyObject(banner)}
