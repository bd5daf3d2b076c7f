from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"
    # Registered with django-q2 after migrate (portal/schedules.py).
    schedules = (
        {"name": "messaging-dispatch", "func": "messaging.tasks.dispatch", "minutes": 1},
        {"name": "messaging-surveys", "func": "messaging.tasks.conversations_tick", "minutes": 1},
        {"name": "messaging-retention", "func": "messaging.tasks.retention_purge", "every": "day"},
        # Each Mosio link is polled every MOSIO_POLL_SECONDS (messaging/services/poll.py).
        {"name": "messaging-mosio-poll", "func": "messaging.tasks.mosio_poll", "minutes": 1},
        # Members who asked get a daily e-mail when replies wait (messaging/services/notices.py).
        {"name": "messaging-reply-digest", "func": "messaging.tasks.reply_digest", "every": "day"},
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
