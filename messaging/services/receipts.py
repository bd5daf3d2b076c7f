"""Delivery receipts: a provider's status callback moves a text forward, never back."""

import datetime

from django.db import transaction
from django.utils import timezone

from messaging.gateways import Reason
from messaging.models import EarlyReceipt, Message, OptOut
from messaging.services.optouts import opt_out_record
from projects.models import Participant, ProviderLink

Status = Message.Status
EARLY_RECEIPT_KEEP = datetime.timedelta(hours=1)
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
    *,
    link: ProviderLink,
    provider_message_id: str,
    provider_status: str,
    reason=None,
    code=None,
    park: bool = False,
) -> bool:
    """Move a message forward on a delivery receipt. Duplicates and late receipts do nothing.

    `park`: a receipt for an id no text carries yet is kept (EarlyReceipt) and applied by the
    sweep once the sender has recorded the text (it records accepted texts a moment after the
    provider answered: docs/sending.md, "Recording"). For a provider's callbacks, which come
    once; a poll that reads the history again (Mosio) does not park."""
    target = RECEIPT_STATUS.get(provider_status)
    if target is None:
        return False
    message = (
        Message.objects.filter(project_id=link.project_id, provider_message_id=provider_message_id)
        .select_related("participant")
        .first()
    )
    if message is None:
        if park and provider_message_id:
            EarlyReceipt.objects.create(
                link=link,
                provider_message_id=provider_message_id[:64],
                provider_status=provider_status,
                reason=getattr(reason, "value", "") or "",
                code=str(code or "")[:32],
                received_at=timezone.now(),
            )
        return False
    return _apply(message, target, reason=reason, code=code)


def _apply(message: Message, target: str, *, reason, code) -> bool:
    if RANK.get(message.status, 9) >= RANK[target]:
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


def early_receipts_apply(*, now=None) -> int:
    """The sweep's step: apply the kept receipts whose texts are recorded now (in the order
    they came: "sent" before "delivered"), forget those older than EARLY_RECEIPT_KEEP. One
    query when there are none. Returns how many moved a text."""
    now = now or timezone.now()
    early = list(EarlyReceipt.objects.select_related("link").order_by("received_at", "id")[:500])
    if not early:
        return 0
    messages = {
        (m.project_id, m.provider_message_id): m
        for m in Message.objects.filter(
            provider_message_id__in={r.provider_message_id for r in early}
        ).select_related("participant")
    }
    moved, done = 0, []
    for receipt in early:
        message = messages.get((receipt.link.project_id, receipt.provider_message_id))
        if message is not None:
            reason = Reason(receipt.reason) if receipt.reason else None
            target = RECEIPT_STATUS[receipt.provider_status]
            if _apply(message, target, reason=reason, code=receipt.code or None):
                moved += 1
                message.status = target  # what _apply wrote: the next receipt compares to it
            done.append(receipt.pk)
        elif now - receipt.received_at > EARLY_RECEIPT_KEEP:
            done.append(receipt.pk)  # no text of ours carries that id
    EarlyReceipt.objects.filter(pk__in=done).delete()
    return moved
