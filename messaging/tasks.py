"""django-q2 tasks: thin, take ids (or nothing), call services."""

import logging

from messaging import sender
from messaging.services import outbox, sweep

logger = logging.getLogger(__name__)


def dispatch() -> dict:
    """Every minute: materialise due texts, sweep stranded rows, make sure the sender runs."""
    try:
        report = outbox.dispatch()
    except Exception:  # noqa: BLE001 - the sweep and the sender must run all the same
        logger.exception("The dispatcher failed; the sweep and the sender run all the same.")
        report = outbox.DispatchReport(errors=["The dispatcher failed."])
    alive = sender.lease_alive()
    # Kick the sender before the sweep: reconciling asks providers, which may be slow or down,
    # and a dispatch killed by its timeout meanwhile must not leave the queue without a sender.
    # One task per shard without a loop (SENDER_SHARDS; each takes a free shard).
    idle = sender.shards_idle()
    if idle and sender.ready_count():
        from django_q.tasks import async_task

        for _ in range(idle):
            async_task("messaging.tasks.send_queued", task_name="sender")
    swept = sweep.sweep(lease_alive=alive)
    return {"queued": report.queued, "skipped": report.skipped, **swept}


def send_queued() -> dict:
    """The sender loop (one at a time; a second copy finds the lease taken and returns)."""
    report = sender.run_and_reschedule()
    return {"sent": report.sent, "held": report.held, "failed": report.failed}


def retention_purge() -> int:
    """Daily: blank the text of messages older than MESSAGE_RETENTION_DAYS (metadata stays)."""
    return outbox.retention_purge()
