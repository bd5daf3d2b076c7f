"""Is StudyText working? What the load balancer and monitoring ask (`GET /api/health/`).

django-q2 can stop taking tasks while its processes stay up (a worker died mid-task, the broker
went away), and then nothing is sent although every page still answers. So besides the
database and the broker, the report measures the work itself (docs/architecture.md,
"Health"):

- the age of the oldest task waiting in the broker: a live cluster takes a task within seconds;
- seconds since the dispatcher last ran: it runs every minute (its schedule), so a dispatcher
  that has not run for HEALTH_DISPATCHER_MAX_SECONDS means the scheduler or the cluster stopped;
- seconds since the sender loop last held its lease, against how long a text ready to go has
  waited: texts waiting longer than HEALTH_SENDER_MAX_SECONDS with no sender alive is a wedge.

Any of these, or an unreachable database or broker, makes the report "failing" (HTTP 503), each
with its reason in words. Reads only, a handful of queries on indexes.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

DISPATCH_FUNC = "messaging.tasks.dispatch"
DISPATCH_SCHEDULE = "messaging-dispatch"


def _seconds(now: datetime.datetime, then: datetime.datetime | None) -> float | None:
    return None if then is None else round(max((now - then).total_seconds(), 0.0), 1)


def _database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return False, f"The database does not answer ({type(exc).__name__})."
    return True, f"{connection.vendor} answers."


def _broker(now: datetime.datetime) -> tuple[bool, str, datetime.datetime | None]:
    """(reachable, words, when the oldest waiting task was queued)."""
    from django_q.brokers import get_broker
    from django_q.brokers.orm import ORM
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    try:
        broker = get_broker()
        if isinstance(broker, ORM):
            oldest = (
                OrmQ.objects.using(broker.get_connection().db)
                .filter(key=broker.list_key, lock__lte=now)
                .order_by("lock")
                .values_list("lock", flat=True)
                .first()
            )
            return True, "The ORM broker (the database) answers.", oldest
        broker.ping()
        head = broker.connection.lindex(broker.list_key, 0)
        oldest = SignedPackage.loads(head).get("started") if head else None
        return True, f"{broker.info()} answers.", oldest
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable"
        return False, f"The task broker does not answer ({type(exc).__name__}).", None


def _dispatcher(now: datetime.datetime) -> tuple[datetime.datetime | None, bool]:
    """(when the dispatcher last finished, whether its schedule is overdue)."""
    from django_q.models import Schedule, Task

    last = (
        Task.objects.filter(func=DISPATCH_FUNC)
        .order_by("-stopped")
        .values_list("stopped", flat=True)
        .first()
    )
    next_run = (
        Schedule.objects.filter(name=DISPATCH_SCHEDULE).values_list("next_run", flat=True).first()
    )
    limit = datetime.timedelta(seconds=settings.HEALTH_DISPATCHER_MAX_SECONDS)
    overdue = next_run is not None and next_run < now - limit
    return last, overdue


def _leases_seen() -> dict[str, datetime.datetime]:
    """Each sender loop's lease (one per shard, SENDER_SHARDS) by name, with its last sign of
    life: its last renewal, or the moment it was let go."""
    from messaging.shards import lease_rows, lease_seen

    return {name: lease_seen(**row) for name, row in lease_rows().items()}


def _stalled_shards(
    now: datetime.datetime, oldest: datetime.datetime, seen: dict[str, datetime.datetime]
) -> list[str]:
    """Each shard whose texts have waited longer than HEALTH_SENDER_MAX_SECONDS while its loop
    has not run for as long (with several shards, one loop may send while another's shard is
    stuck). Unsharded: the one sender, whichever lease it last held."""
    from messaging import shards
    from messaging.selectors import oldest_ready_text_due_by_shard

    count = shards.shard_count()
    limit = settings.HEALTH_SENDER_MAX_SECONDS
    problems = []
    dues = {0: oldest} if count == 1 else oldest_ready_text_due_by_shard(count)
    for shard, due in sorted(dues.items()):
        waiting = _seconds(now, due)
        if count == 1:
            texts, who, last = "Texts have", "the sender has", max(seen.values(), default=None)
        else:
            texts = f"Texts of sender shard {shard + 1} of {count} have"
            who, last = "its loop has", seen.get(shards.lease_name(shard, count))
        since = _seconds(now, last)
        if waiting > limit and (since is None or since > limit):
            problems.append(
                f"{texts} waited {waiting:.0f} s to go out and {who} "
                + ("never run" if since is None else f"not run for {since:.0f} s")
                + f" (limit {limit} s)."
            )
    return problems


def health_report(*, now: datetime.datetime | None = None) -> dict:
    """Everything `GET /api/health/` answers; `status` is "ok" or "failing" with `problems`."""
    now = now or timezone.now()
    problems: list[str] = []
    report: dict = {
        "status": "ok",
        "problems": problems,
        "oldest_waiting_task_seconds": None,
        "dispatcher_last_ran_seconds": None,
        "sender_lease_renewed_seconds": None,
        "oldest_ready_text_seconds": None,
        "checked_at": now,
    }
    db_ok, db_words = _database()
    report["database"] = {"ok": db_ok, "detail": db_words}
    if not db_ok:
        problems.append(db_words)
        report["broker"] = {"ok": False, "detail": "Not checked: the database does not answer."}
        report["status"] = "failing"
        return report

    broker_ok, broker_words, oldest_task = _broker(now)
    report["broker"] = {"ok": broker_ok, "detail": broker_words}
    if not broker_ok:
        problems.append(broker_words)
    task_age = _seconds(now, oldest_task)
    report["oldest_waiting_task_seconds"] = task_age
    if task_age is not None and task_age > settings.HEALTH_TASK_MAX_SECONDS:
        problems.append(
            f"The task cluster is not taking tasks: the oldest has waited {task_age:.0f} s "
            f"(limit {settings.HEALTH_TASK_MAX_SECONDS} s)."
        )

    last_dispatch, overdue = _dispatcher(now)
    since_dispatch = _seconds(now, last_dispatch)
    report["dispatcher_last_ran_seconds"] = since_dispatch
    if overdue or (
        since_dispatch is not None and since_dispatch > settings.HEALTH_DISPATCHER_MAX_SECONDS
    ):
        problems.append(
            "The dispatcher (every minute) has not run for "
            + (f"{since_dispatch:.0f} s" if since_dispatch is not None else "longer than allowed")
            + f" (limit {settings.HEALTH_DISPATCHER_MAX_SECONDS} s): is qcluster running?"
        )

    from messaging.selectors import oldest_ready_text_due

    seen = _leases_seen()
    report["sender_lease_renewed_seconds"] = _seconds(now, max(seen.values(), default=None))
    oldest = oldest_ready_text_due()
    waiting = _seconds(now, oldest)
    report["oldest_ready_text_seconds"] = waiting
    if waiting is not None and waiting > settings.HEALTH_SENDER_MAX_SECONDS:
        problems.extend(_stalled_shards(now, oldest, seen))
    if problems:
        report["status"] = "failing"
    return report
