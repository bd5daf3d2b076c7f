from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"
    # Registered with django-q2 after migrate (portal/schedules.py).
    schedules = (
        {"name": "messaging-dispatch", "func": "messaging.tasks.dispatch", "minutes": 1},
        {"name": "messaging-retention", "func": "messaging.tasks.retention_purge", "every": "day"},
    )

    def ready(self) -> None:
        from messaging import (  # noqa: F401
            checks,  # SENDER_SHARDS at start-up
            receivers,  # billing's credits/period signals
        )
        from messaging.gateways import provider_choices
        from projects.models import ProviderLink

        # The providers a link can name come from the gateway registry, the one list of them.
        ProviderLink._meta.get_field("provider").choices = provider_choices()
