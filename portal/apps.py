from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import (  # noqa: F401
            checks,  # registers the deploy checks
            receivers,  # connects the apps' audit signals and the admin-group receiver
        )
