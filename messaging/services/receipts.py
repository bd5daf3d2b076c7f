"""Delivery receipts: a provider's status callback moves a text forward, never back."""

from django.db import transaction
from django.utils import timezone

from messaging.gateways import Reason
from messaging.models import Message, OptOut
from messaging.services.optouts import opt_out_record
from projects.models import Participant, ProviderLink

Status = Message.Status
RECEIPT_STATUS = {
    "delivered": Status.DELIVERED,
    "undelivered": Status.UNDELIVERED,
    "failed": Status.FAILED,
    "sent": Status.SENT,
}
RANK = {
    Status.QUEUED: 0,
    Status.HELD: 0,
    Status.SENDING: 1,
    Status.UNKNOWN: 2,
    Status.SENT: 3,
    Status.DELIVERED: 4,
    Status.UNDELIVERED: 4,
    Status.FAILED: 4,
}


def receipt_apply(
    *, link: ProviderLink, provider_message_id: str, provider_status: str, reason=None, code=None
) -> bool:
    """Move a message forward on a delivery receipt. Duplicates and late receipts do nothing."""
    target = RECEIPT_STATUS.get(provider_status)
    if target is None:
        return False
    message = (
        Message.objects.filter(project_id=link.project_id, provider_message_id=provider_message_id)
        .select_related("participant")
        .first()
    )
    if message is None or RANK.get(message.status, 9) >= RANK[target]:
        return False
    update = {"status": target, "updated_at": timezone.now()}
    if target == Status.DELIVERED:
        update["delivered_at"] = timezone.now()
    if target in (Status.UNDELIVERED, Status.FAILED) and code:
        update.update(error_code=str(code)[:32], error=f"The carrier reported error {code}.")
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=message.status).update(**update)
        if moved and message.is_test:
            pass  # a test's number is a staff member's: no participant to flag
        elif moved and reason == Reason.INVALID_NUMBER:
            Participant.objects.filter(pk=message.participant_id).update(number_invalid=True)
        elif moved and reason == Reason.OPTED_OUT:
            opt_out_record(participant=message.participant, source=OptOut.Source.PROVIDER)
    return bool(moved)
