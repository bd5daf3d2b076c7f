from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_migrate


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        post_migrate.connect(register_schedule, sender=self)
        checks.register(check_quota_unit)


def register_schedule(sender, *, apps=None, using: str = "default", **kwargs) -> None:
    """Register the q2 schedule that starts new usage periods, once. Idempotent: an edited
    schedule (another interval, say) is left as the administrators set it."""
    from billing.tasks import SCHEDULE_FUNC, SCHEDULE_MINUTES, SCHEDULE_NAME

    if apps is None:  # `flush` sends post_migrate without the migration state
        from django.apps import apps

    try:
        schedule_model = apps.get_model("django_q", "Schedule")
    except LookupError:  # django_q is not migrated in this run
        return
    schedules = schedule_model.objects.using(using)
    if not schedules.filter(func=SCHEDULE_FUNC).exists():
        schedules.create(
            name=SCHEDULE_NAME,
            func=SCHEDULE_FUNC,
            schedule_type="I",  # Schedule.MINUTES
            minutes=SCHEDULE_MINUTES,
            repeats=-1,
        )


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
