"""The steps of tests/test_background.py, each run in its own process, as the real site would be:
`python -m tests.background_steps <step> [args]` with DJANGO_SETTINGS_MODULE=portal.settings and
the database, broker and gateway chosen by the environment. Each step prints one JSON line.

Not a test module (pytest does not collect it): the test starts these processes.
"""

import json
import os
import sys
import time

import django


def seed(participants: str, rate: str = "100") -> dict:
    """A project ready to text: account, owner, sandbox provider link (the console gateway
    overrides it), mapping, textable participants and two manual rules that ask nothing of
    REDCap at release (no survey link, no piped name: the project has no REDCap here)."""
    from tests.factories import (
        AccountFactory,
        FieldMappingFactory,
        MessageRuleFactory,
        ParticipantFactory,
        ProjectFactory,
        ProviderLinkFactory,
        UserFactory,
    )

    owner = UserFactory(email="owner@background.test")
    account = AccountFactory(owners=[owner])
    # Sending hours open all day, every day: the test must not depend on when it runs.
    project = ProjectFactory(account=account, owner=owner, always_open=True)
    FieldMappingFactory(project=project)
    ProviderLinkFactory(project=project, linked_by=owner, rate_per_second=float(rate))
    ParticipantFactory.create_batch(int(participants), project=project)
    rules = [
        MessageRuleFactory(
            project=project, created_by=owner, name=name, body="Reminder for [record_id]."
        ).pk
        for name in ("Before the cluster starts", "While the cluster runs")
    ]
    return {"owner": owner.pk, "rules": rules}


def send(owner_id: str, rule_id: str) -> dict:
    """Send now, through the service a coordinator's click calls; then list what the broker
    holds (the sender task queued by transaction.on_commit)."""
    from messaging.models import MessageRule
    from messaging.services.outbox import send_now
    from portal.models import User

    rule = MessageRule.objects.get(pk=rule_id)
    batch = send_now(rule=rule, actor=User.objects.get(pk=owner_id))
    return {"send": batch.pk, "total": batch.total, "queued_tasks": queued_funcs()}


def queued_funcs() -> list[str]:
    """The functions of the tasks waiting in the broker (ORM or Redis), without taking them."""
    from django_q.brokers import get_broker
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    broker = get_broker()
    if hasattr(broker.connection, "lrange"):  # Redis
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    else:
        payloads = OrmQ.objects.filter(key=broker.list_key).values_list("payload", flat=True)
    return [SignedPackage.loads(payload)["func"] for payload in payloads]


def wait(expected: str, timeout: str, schedules: str = "") -> dict:
    """Poll until `expected` texts are sent (and, with `schedules`, every schedule ran once)."""
    deadline = time.monotonic() + float(timeout)
    while True:
        state = status()
        done = state["by_status"].get("sent", 0) >= int(expected) and (
            not schedules or state["all_schedules_ran"]
        )
        if done or time.monotonic() > deadline:
            return {**state, "done": done}
        time.sleep(0.5)


def status() -> dict:
    from django.db import connection
    from django.db.models import Count
    from django_q.models import Schedule, Task

    from messaging.models import Message

    by_status = dict(Message.objects.values_list("status").annotate(n=Count("id")))
    last_tasks = list(Schedule.objects.values_list("task", flat=True))
    ran = Task.objects.filter(id__in=[t for t in last_tasks if t], success=True).count()
    state = {"by_status": by_status, "all_schedules_ran": ran == len(last_tasks)}
    connection.close()  # a fresh connection per poll, as separate requests would have
    return state


def report() -> dict:
    """Everything the test asserts on, after the cluster stopped."""
    from django.db import connection
    from django.db.models import Count
    from django_q.brokers import get_broker
    from django_q.models import Schedule, Task

    from messaging.models import Attempt, Message

    journal_mode = ""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            journal_mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    messages = Message.objects.all()
    attempts = Attempt.objects.all()
    schedules = {
        s.name: {
            "func": s.func,
            "ran": bool(s.task) and Task.objects.filter(id=s.task, success=True).exists(),
        }
        for s in Schedule.objects.all()
    }
    return {
        "database": connection.vendor,
        "journal_mode": journal_mode,
        "broker": type(get_broker()).__name__,
        "messages": messages.count(),
        "by_status": dict(messages.values_list("status").annotate(n=Count("id"))),
        "message_attempts": sorted(set(messages.values_list("attempts", flat=True))),
        "provider_ids": messages.exclude(provider_message_id="")
        .values("provider_message_id")
        .distinct()
        .count(),
        "attempt_rows": attempts.count(),
        "attempt_outcomes": dict(attempts.values_list("outcome").annotate(n=Count("id"))),
        "attempts_per_message": sorted(
            set(attempts.values("message_id").annotate(n=Count("id")).values_list("n", flat=True))
        ),
        "failures": [
            f"{t.func}: {str(t.result)[:500]}" for t in Task.objects.filter(success=False)
        ],
        "successes": sorted(set(Task.objects.filter(success=True).values_list("func", flat=True))),
        "schedules": schedules,
        "queued_tasks": queued_funcs(),
    }


def seed_links(links: str, texts: str, rate: str) -> dict:
    """`links` projects, each with a Twilio link at `rate` texts a second (TWILIO_API_BASE: the
    test's fake) and `texts` textable participants, and a manual rule that asks nothing of
    REDCap. Returns each link's numbers, so the test can tell its calls at the fake apart."""
    from tests.factories import (
        AccountFactory,
        FieldMappingFactory,
        MessageRuleFactory,
        ParticipantFactory,
        PlanFactory,
        ProjectFactory,
        ProviderLinkFactory,
        UserFactory,
    )

    owner = UserFactory(email="owner@background.test")
    plan = PlanFactory(name="Background", project_limit=int(links), monthly_messages=100_000)
    account = AccountFactory(owners=[owner], plan=plan)
    rules, numbers = [], {}
    for k in range(int(links)):
        project = ProjectFactory(account=account, owner=owner, always_open=True)
        FieldMappingFactory(project=project)
        link = ProviderLinkFactory(
            project=project,
            twilio=True,
            sender_number=f"+1415555{k:04d}",
            rate_per_second=float(rate),
            linked_by=owner,
        )
        participants = ParticipantFactory.create_batch(int(texts), project=project)
        numbers[link.pk] = [p.phone for p in participants]
        rules.append(
            MessageRuleFactory(
                project=project, created_by=owner, body="Reminder for [record_id]."
            ).pk
        )
    return {"owner": owner.pk, "rules": rules, "numbers": numbers}


def send_all(owner_id: str, *rule_ids: str) -> dict:
    totals = [send(owner_id, rule_id)["total"] for rule_id in rule_ids]
    return {"total": sum(totals)}


def settled(expected: str, timeout: str) -> dict:
    """Poll until no text is queued and no sender loop holds a lease (what is left `sending` is
    what a killed loop had claimed), or until `expected` texts are sent."""
    from django.db import connection

    from messaging import shards

    deadline = time.monotonic() + float(timeout)
    while True:
        state = status()
        idle = not state["by_status"].get("queued") and not shards.lease_alive()
        connection.close()
        done = idle or state["by_status"].get("sent", 0) >= int(expected)
        if done or time.monotonic() > deadline:
            return {**state, "done": done}
        time.sleep(0.5)


def sweep_stranded() -> dict:
    """What the dispatcher's sweep does to a killed loop's rows once they are old enough (five
    minutes; here at once): claimed but not called -> queued again; called -> unknown, then
    asked of the provider (found: sent; not found: queued again, once). Then the sender is
    kicked, as the dispatcher would."""
    import datetime

    from messaging.services import outbox, sweep

    sweep.STUCK_SENDING_AFTER = datetime.timedelta(0)
    sweep.RECONCILE_AFTER = datetime.timedelta(0)
    sweep.RECONCILE_GIVE_UP = datetime.timedelta(0)
    first = sweep.sweep(lease_alive=False)
    second = sweep.sweep(lease_alive=False)
    outbox.kick_sender()
    return {"first": first, "second": second}


STEPS = {
    "seed": seed,
    "send": send,
    "wait": wait,
    "report": report,
    "seed_links": seed_links,
    "send_all": send_all,
    "settled": settled,
    "sweep_stranded": sweep_stranded,
}

if __name__ == "__main__":
    if os.environ.get("DJANGO_SETTINGS_MODULE") != "portal.settings":
        sys.exit("Run with DJANGO_SETTINGS_MODULE=portal.settings (the real, unsynchronous queue).")
    django.setup()
    step, *args = sys.argv[1:]
    print(json.dumps(STEPS[step](*args)), flush=True)
