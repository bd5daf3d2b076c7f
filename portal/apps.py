import sys

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class StudyTextAdminConfig(admin_apps.AdminConfig):
    """Django's admin, served by a site that asks for a verified second factor (admin_site.py).
    Named in INSTALLED_APPS in place of django.contrib.admin."""

    default = False  # PortalConfig is this module's default for "portal"

    default_site = "portal.admin_site.StudyTextAdminSite"


# Commands that are the portal's long-running processes: they refuse an unsafe configuration
# at start (portal/runtime_guards.py), as portal/wsgi.py and portal/asgi.py do.
SERVING_COMMANDS = frozenset({"qcluster", "runserver", "devserver"})


def statistics_refresh_after_migrate(sender, *, using: str = "default", **kwargs) -> None:
    """Refresh the query planner's statistics: a migration may have added indexes the planner
    has no statistics for yet (the hourly task keeps them fresh afterwards)."""
    from portal.services.database import database_statistics_refresh

    database_statistics_refresh(using=using)


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"
    # Registered with django-q2 after migrate, with every app's (portal/schedules.py).
    schedules = (
        {
            "name": "portal-database-statistics",
            "func": "portal.tasks.refresh_statistics",
            "every": "hour",
        },
    )

    def ready(self) -> None:
        from portal import (  # noqa: F401
            checks,  # registers the deploy checks
            receivers,  # connects the apps' audit signals and the admin-group receiver
        )

        if len(sys.argv) > 1 and sys.argv[1] in SERVING_COMMANDS:
            from portal.runtime_guards import refuse_unsafe_runtime

            refuse_unsafe_runtime()
        from portal.schedules import schedules_ensure

        post_migrate.connect(schedules_ensure, sender=self)
        post_migrate.connect(statistics_refresh_after_migrate, sender=self)
