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
from projects.signals import project_status_changed, sending_hours_changed


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
