"""Billing tells messaging that held texts may go (credits arrived, a new period began); projects
tell it that a project was archived or that its sending hours changed."""

from django.dispatch import receiver

from billing.signals import credits_added, period_started
from messaging.services.outbox import (
    held_release,
    project_archived_cancel,
    waiting_release_recompute,
)
from projects.models import Project
from projects.signals import (
    participants_synced,
    project_status_changed,
    record_saved,
    sending_hours_changed,
)


@receiver(credits_added)
@receiver(period_started)
def release_held_messages(sender, *, account, **kwargs) -> None:
    held_release(account_id=account.pk)


@receiver(project_status_changed)
def cancel_texts_of_archived_project(sender, *, project, old, new, **kwargs) -> None:
    # Paused or suspended projects keep their queue (it goes out on resume); archived ones do not.
    if new == Project.Status.ARCHIVED:
        project_archived_cancel(project_id=project.pk)


@receiver(sending_hours_changed)
def recompute_waiting_texts(sender, *, project, **kwargs) -> None:
    waiting_release_recompute(project_id=project.pk)


@receiver(record_saved)
def evaluate_triggers_of_saved_record(sender, *, project_id, participant_id, **kwargs) -> None:
    # REDCap said this record was saved (and it was read again): its logic and follow-up
    # triggers are evaluated in a task of their own (docs/sending.md, "Triggers").
    from django_q.tasks import async_task

    async_task(
        "messaging.tasks.triggers_evaluate",
        project_id,
        participant_id,
        task_name=f"triggers-{project_id}-{participant_id}",
    )


@receiver(participants_synced)
def evaluate_triggers_after_sync(sender, *, project_id, **kwargs) -> None:
    from django_q.tasks import async_task

    async_task("messaging.tasks.triggers_evaluate", project_id, task_name=f"triggers-{project_id}")
