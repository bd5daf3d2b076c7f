import sys

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class StudyTextAdminConfig(admin_apps.AdminConfig):
    """Django's admin, served by a site that asks for a verified second factor (admin_site.py).
    Named in INSTALLED_APPS in place of django.contrib.admin."""

    default = False  # PortalConfig is this module's default for "portal"

    default_site = "portal.admin_site.StudyTextAdminSite"


# Commands that are the portal's long-running processes: they refuse an unsafe configuration
# at start (portal/runtime_guards.py), as portal/wsgi.py and portal/asgi.py do.
SERVING_COMMANDS = frozenset({"qcluster", "runserver", "devserver"})


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import (  # noqa: F401
            checks,  # registers the deploy checks
            receivers,  # connects the apps' audit signals and the admin-group receiver
        )

        if len(sys.argv) > 1 and sys.argv[1] in SERVING_COMMANDS:
            from portal.runtime_guards import refuse_unsafe_runtime

            refuse_unsafe_runtime()
