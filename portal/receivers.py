"""Signals from the lower apps that the portal acts on."""

from django.dispatch import receiver

from billing.signals import audit as billing_audit
from messaging.signals import audit as messaging_audit
from portal.audit import audit_record
from projects.signals import audit as projects_audit


@receiver(billing_audit)
@receiver(projects_audit)
@receiver(messaging_audit)
def record_audit_event(sender, *, actor, action, obj, message="", data=None, **kwargs) -> None:
    audit_record(actor=actor, action=action, obj=obj, message=message, data=data)
