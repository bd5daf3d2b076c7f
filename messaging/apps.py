from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_schedules(sender, **kwargs) -> None:
    """Register the dispatcher (every minute) and the retention purge (daily) with django-q2."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="messaging-dispatch",
        defaults={
            "func": "messaging.tasks.dispatch",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    Schedule.objects.update_or_create(
        name="messaging-retention",
        defaults={
            "func": "messaging.tasks.retention_purge",
            "schedule_type": Schedule.DAILY,
            "repeats": -1,
        },
    )


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from messaging import receivers  # noqa: F401  (billing's credits/period signals)
        from messaging.gateways import provider_choices
        from projects.models import ProviderLink

        # The providers a link can name come from the gateway registry, the one list of them.
        ProviderLink._meta.get_field("provider").choices = provider_choices()

        post_migrate.connect(ensure_schedules, sender=self)
