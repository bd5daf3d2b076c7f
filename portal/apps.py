from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_statistics_schedule(sender, *, using: str = "default", **kwargs) -> None:
    """Register the hourly refresh of the query planner's statistics, and refresh them now: a
    migration may have added indexes the planner has no statistics for yet."""
    from django_q.models import Schedule

    from portal.services.database import database_statistics_refresh
    from portal.tasks import STATISTICS_SCHEDULE

    Schedule.objects.using(using).update_or_create(
        name=STATISTICS_SCHEDULE,
        defaults={
            "func": "portal.tasks.refresh_statistics",
            "schedule_type": Schedule.HOURLY,
            "repeats": -1,
        },
    )
    database_statistics_refresh(using=using)


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import (  # noqa: F401
            checks,  # registers the deploy checks
            receivers,  # connects the apps' audit signals and the admin-group receiver
        )

        post_migrate.connect(ensure_statistics_schedule, sender=self)
