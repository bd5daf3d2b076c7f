"""django-q2 tasks: thin, take ids, call services."""

from projects.services import sync


def participant_sync(run_id: int) -> None:
    """Run one queued participant sync (a duplicate delivery finds it claimed and stops)."""
    sync.sync_run_execute(run_id=run_id)


def participant_sync_all() -> int:
    """Scheduled every 15 minutes: queue syncs for linked, mapped, active projects."""
    return sync.sync_all_due()
