"""Billing tells messaging that held texts may go: credits arrived, or a new period began."""

from django.dispatch import receiver

from billing.signals import credits_added, period_started
from messaging.services.outbox import held_release


@receiver(credits_added)
@receiver(period_started)
def release_held_messages(sender, *, account, **kwargs) -> None:
    held_release(account_id=account.pk)
