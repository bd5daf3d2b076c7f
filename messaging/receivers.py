"""Billing tells messaging that held texts may go: credits arrived, or a new period began."""

from django.dispatch import receiver

from billing.signals import credits_added, period_started
from messaging.services.outbox import held_release, project_archived_cancel
from projects.models import Project
from projects.signals import project_status_changed


@receiver(credits_added)
@receiver(period_started)
def release_held_messages(sender, *, account, **kwargs) -> None:
    held_release(account_id=account.pk)


@receiver(project_status_changed)
def cancel_texts_of_archived_project(sender, *, project, old, new, **kwargs) -> None:
    # Paused or suspended projects keep their queue (it goes out on resume); archived ones do not.
    if new == Project.Status.ARCHIVED:
        project_archived_cancel(project_id=project.pk)
