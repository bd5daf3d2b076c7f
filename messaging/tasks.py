"""django-q2 tasks: thin, take ids (or nothing), call services."""

import logging

from messaging import sender, shards
from messaging.services import conversations, notices, outbox, poll, sweep

logger = logging.getLogger(__name__)


def dispatch() -> dict:
    """Every minute: materialise due texts, sweep stranded rows, make sure the sender runs."""
    try:
        report = outbox.dispatch()
    except Exception:  # noqa: BLE001 - the sweep and the sender must run all the same
        logger.exception("The dispatcher failed; the sweep and the sender run all the same.")
        report = outbox.DispatchReport(errors=["The dispatcher failed."])
    try:
        from messaging.services.alerts import team_alerts_hand_out_due

        team_alerts_hand_out_due()  # alerts to the team whose delay is over
    except Exception:  # noqa: BLE001 - the sender and the sweep must run all the same
        logger.exception("Team alerts could not be handed out; retrying next run.")
    alive = shards.lease_alive()
    # Kick the sender before the sweep: reconciling asks providers, which may be slow or down,
    # and a dispatch killed by its timeout meanwhile must not leave the queue without a sender.
    # One task per shard without a loop (SENDER_SHARDS; each takes a free shard).
    idle = shards.shards_idle()
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


def mosio_poll() -> dict:
    """Every minute: read the history of each Mosio link that is due (docs/mosio.md)."""
    reports = poll.mosio_poll_all()
    return {
        "links": len(reports),
        "failed": sum(1 for r in reports if not r.ok),
        "replies": sum(r.replies for r in reports),
    }


def reply_digest() -> int:
    """Daily: members who asked are told how many replies wait in their projects' inboxes."""
    return notices.reply_digest_send()


def conversations_tick() -> dict:
    """Every minute: text-survey reminders, expiry, and answers REDCap did not take yet."""
    return conversations.conversations_tick()


def conversation_write_back(conversation_id: int) -> bool:
    """Write a conversation's new answers to REDCap (retried by conversations_tick)."""
    return conversations.conversation_write_back(conversation_id=conversation_id)


def triggers_evaluate(project_id: int, participant_id: int | None = None) -> dict:
    """A record was saved in REDCap (or the project synced): fire the logic and follow-up
    triggers that became due (messaging/services/triggers.py)."""
    from messaging.services.triggers import triggers_evaluate as evaluate

    report = evaluate(
        project_id=project_id,
        participant_ids=None if participant_id is None else [participant_id],
    )
    return {
        "fired": report.fired,
        "skipped": report.skipped,
        "alerts": report.alerts,
        "errors": report.errors,
    }


def team_alert_send(alert_id: int) -> dict:
    """E-mail (and text) one alert to a study team (messaging/services/alerts.py)."""
    from messaging.services.alerts import team_alert_deliver

    alert = team_alert_deliver(alert_id=alert_id)
    return {"emails": alert.emails, "texts": alert.texts} if alert else {}


def recipient_count(
    key: str, project_id: int, recipients: str, filter_logic: str, record_ids: list
) -> dict:
    """The message form's recipient count, after the REDCap filter (polled by the form)."""
    from messaging.services.recipient_count import recipient_count_execute

    return recipient_count_execute(
        key=key,
        project_id=project_id,
        recipients=recipients,
        filter_logic=filter_logic,
        record_ids=record_ids,
    )
