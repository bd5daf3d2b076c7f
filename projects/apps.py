from django.apps import AppConfig
from django.db.models.signals import post_migrate


def ensure_schedules(sender, **kwargs) -> None:
    """Register the periodic participant sync with django-q2 (idempotent)."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="participant-sync-all",
        defaults={
            "func": "projects.tasks.participant_sync_all",
            "schedule_type": Schedule.MINUTES,
            "minutes": 15,
            "repeats": -1,
        },
    )


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects"

    def ready(self) -> None:
        from projects import checks  # noqa: F401  (registers the deploy checks)

        post_migrate.connect(ensure_schedules, sender=self)
