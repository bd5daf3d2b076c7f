"""The periodic tasks, registered with django-q2 after every migrate (docs/architecture.md,
"Scheduled work").

Each app lists its own on its AppConfig (`schedules`: a name, the task's dotted path, and how
often: `minutes`, or `every` "hour" or "day"); this one receiver registers them all, the same
way: one schedule per task, created when missing. An existing one is left as the administrators
set it (another interval, say). The portal does it because it may import every app, and every
app's schedules then register alike.
"""

from django.apps import apps as global_apps

# django-q2's Schedule.schedule_type values.
EVERY = {"minutes": "I", "hour": "H", "day": "D"}


def schedules_declared() -> list[dict]:
    """Every app's `schedules`, in INSTALLED_APPS order."""
    return [
        spec
        for config in global_apps.get_app_configs()
        for spec in getattr(config, "schedules", ())
    ]


def schedules_ensure(sender=None, *, apps=None, using: str = "default", **kwargs) -> int:
    """Create each declared schedule that is missing; return how many were created. A
    post_migrate receiver (`apps` is the migration state; `flush` sends none)."""
    try:
        schedule_model = (apps or global_apps).get_model("django_q", "Schedule")
    except LookupError:  # django_q is not migrated in this run
        return 0
    schedules = schedule_model.objects.using(using)
    created = 0
    for spec in schedules_declared():
        if schedules.filter(func=spec["func"]).exists():
            continue
        every = "minutes" if "minutes" in spec else spec["every"]
        schedules.create(
            name=spec["name"],
            func=spec["func"],
            schedule_type=EVERY[every],
            minutes=spec.get("minutes"),
            repeats=-1,
        )
        created += 1
    return created
