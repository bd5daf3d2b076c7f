from django.apps import AppConfig
from django.core import checks


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"
    # Registered with django-q2 after migrate (portal/schedules.py): new usage periods start
    # soon after each account's midnight (billing.tasks.usage_periods_start).
    schedules = (
        {
            "name": "Start monthly usage periods",
            "func": "billing.tasks.usage_periods_start",
            "minutes": 15,
        },
    )

    def ready(self) -> None:
        checks.register(check_quota_unit)


def check_quota_unit(app_configs, **kwargs) -> list[checks.CheckMessage]:
    from django.conf import settings

    if settings.QUOTA_UNIT not in ("message", "segment"):
        return [
            checks.Error(
                f"QUOTA_UNIT is {settings.QUOTA_UNIT!r}; it must be 'message' or 'segment'.",
                id="billing.E001",
            )
        ]
    return []
