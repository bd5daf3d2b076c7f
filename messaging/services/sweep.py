"""The sweep: nothing is ever stranded (docs/sending.md, "Sweep"). Rows a dead sender left
`sending` go back to the queue (never called) or become `unknown` (maybe called), and unknown
rows are reconciled with the provider, never resent blindly."""

import datetime
import time

from django.db import transaction
from django.utils import timezone

from billing.services import quota_release
from messaging.gateways import GatewayError, get_gateway
from messaging.models import Attempt, Message
from messaging.services.receipts import early_receipts_apply
from projects.selectors import project_provider_link

Status = Message.Status
RECONCILE_AFTER = datetime.timedelta(minutes=2)
RECONCILE_GIVE_UP = datetime.timedelta(minutes=30)
STUCK_SENDING_AFTER = datetime.timedelta(minutes=5)
STUCK_WHILE_SENDER_RUNS = datetime.timedelta(minutes=15)
RECONCILE_BUDGET_SECONDS = 20.0
RESENT_NOTE = "The provider confirmed it never received this text; it goes out again (once)."


def sweep(*, now=None, lease_alive: bool = False) -> dict[str, int]:
    """Reconcile rows a dead sender left behind, and unknown rows with the provider; apply the
    delivery receipts that came before their texts were recorded."""
    now = now or timezone.now()
    counts = {"requeued": 0, "unknown": 0, "reconciled": 0, "resent": 0, "unconfirmed": 0}
    counts["receipts"] = early_receipts_apply(now=now)
    # While a sender runs (a long send keeps the lease nearly all the time), only rows stranded
    # for much longer than any live sender holds one: a live loop calls a claimed row within
    # seconds, and a call ends within the gateway's timeouts.
    stale = now - (STUCK_SENDING_AFTER if not lease_alive else STUCK_WHILE_SENDER_RUNS)
    stuck = Message.objects.filter(status=Status.SENDING, updated_at__lt=stale).select_related(
        "project", "project__account"
    )
    for message in stuck:
        # Every UPDATE below re-checks that the row is still sending and still stale, so a
        # row a new sender claimed (or recorded) since it was read here is left alone.
        still_stuck = Message.objects.filter(
            pk=message.pk, status=Status.SENDING, updated_at__lt=stale
        )
        with transaction.atomic():
            called = Attempt.objects.filter(
                message=message, outcome=Attempt.Outcome.STARTED
            ).exists()
            if called:
                # The provider call may have happened: never call again; ask the provider.
                n = still_stuck.update(
                    status=Status.UNKNOWN,
                    error="The sender stopped during the provider call; "
                    "checking with the provider.",
                    updated_at=now,
                )
                counts["unknown"] += n
            else:
                n = still_stuck.update(status=Status.QUEUED, units=0, updated_at=now)
                if n:
                    quota_release(
                        project=message.project,
                        units=message.units,
                        reserved_at=message.reserved_at,
                    )
                counts["requeued"] += n
    unknown = Message.objects.filter(
        status=Status.UNKNOWN, updated_at__lt=now - RECONCILE_AFTER
    ).select_related("project", "project__account", "participant", "project__provider_link")
    # Each reconciliation asks the provider; stop in time for the dispatcher's task timeout
    # (a provider that is down answers every question slowly). The rest wait for the next sweep.
    budget = time.monotonic() + RECONCILE_BUDGET_SECONDS
    for message in unknown.order_by("updated_at")[:200]:
        if time.monotonic() > budget:
            break
        result = reconcile(message, now=now)
        if result:
            counts[result] += 1
    return counts


def reconcile(message: Message, *, now) -> str | None:
    """Ask the provider whether an unconfirmed text went out. Never resends."""
    link = project_provider_link(project=message.project_id)
    if link is None:
        return None
    first_try = (
        Attempt.objects.filter(message=message)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
        or message.created_at
    )
    try:
        found = get_gateway(link).find_sent(
            to=message.to_phone,  # a test went to a staff member's phone
            body=message.body,
            since=first_try - datetime.timedelta(minutes=1),
        )
    except GatewayError:
        return None  # the provider cannot answer now; ask again next sweep
    with transaction.atomic():
        if found:
            Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(
                status=Status.SENT,
                provider_message_id=found[:64],
                sent_at=first_try,
                error="",
                updated_at=now,
            )
            return "reconciled"
        if now - message.updated_at < RECONCILE_GIVE_UP:
            return None  # the provider may still be catching up; ask again next sweep
        # The provider's listing can be trusted now, and it has no such text: it never got it.
        # It goes back to the queue by itself, once (a second unconfirmed call fails it).
        reached = Attempt.objects.filter(message=message).exclude(
            outcome__in=[Attempt.Outcome.RETRY, Attempt.Outcome.FAILED]
        )
        # A test text is never sent again (it was pressed by hand; docs/sending.md, Test texts).
        if not message.is_test and reached.count() <= 1:
            n = Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(
                status=Status.QUEUED,
                not_before=now,
                error=RESENT_NOTE,
                units=0,
                updated_at=now,
            )
            if n:
                quota_release(
                    project=message.project, units=message.units, reserved_at=message.reserved_at
                )
            return "resent"
        n = Message.objects.filter(pk=message.pk, status=Status.UNKNOWN).update(
            status=Status.FAILED,
            error="The provider has no record of this text, sent again once and still "
            "unconfirmed. StudyText does not send it a third time (to avoid a duplicate); send "
            "it again by hand if needed.",
            units=0,
            updated_at=now,
        )
        if n:
            quota_release(
                project=message.project, units=message.units, reserved_at=message.reserved_at
            )
        return "unconfirmed"
