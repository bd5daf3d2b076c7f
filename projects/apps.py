from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects"
    # Registered with django-q2 after migrate (portal/schedules.py).
    schedules = (
        {
            "name": "participant-sync-all",
            "func": "projects.tasks.participant_sync_all",
            "minutes": 15,
        },
    )

    def ready(self) -> None:
        from projects import checks  # noqa: F401  (registers the deploy checks)
