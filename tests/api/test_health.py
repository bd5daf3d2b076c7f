"""GET /api/health/: 200 when the database, the broker and the background work are alive; 503 with
the reason when one is not, including a cluster that is up but wedged."""

import datetime
import re
import uuid
from unittest import mock

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.models import OrmQ, Schedule, Task
from django_q.signing import SignedPackage

from messaging import sender, shards
from messaging.models import SenderLease
from tests.api.conftest import call
from tests.factories import dispatcher_ran, dispatcher_working, text_waiting

pytestmark = pytest.mark.django_db
MINUTES = datetime.timedelta(minutes=1)


@pytest.fixture
def healthy(world):
    """A cluster that works: the dispatcher ran 30 s ago and is due again, the sender renewed its
    lease 5 s ago, nothing waits in the broker."""
    now = timezone.now()
    dispatcher_working(now)
    SenderLease.objects.update_or_create(
        name=shards.LEASE_NAME,
        defaults={
            "owner": "loop",
            "expires_at": now + datetime.timedelta(seconds=shards.LEASE_SECONDS - 5),
        },
    )
    return world


def _health():
    response = call(None, "GET", "/api/health/")
    assert response["Cache-Control"] == "no-store"
    return response.status_code, response.json()


def test_a_working_cluster_is_ok_with_its_numbers(healthy):
    status, body = _health()
    assert (status, body["status"], body["problems"]) == (200, "ok", [])
    assert body["database"]["ok"] and body["broker"]["ok"]
    assert 25 <= body["dispatcher_last_ran_seconds"] <= 120
    assert 0 <= body["sender_lease_renewed_seconds"] <= 60
    assert body["oldest_waiting_task_seconds"] is None


@pytest.fixture
def stale_task():
    """A task queued ten minutes ago and never taken, in whichever broker is configured."""
    broker = get_broker()
    started = timezone.now() - 10 * MINUTES
    if isinstance(broker, ORM):
        OrmQ.objects.create(key=broker.list_key, payload="x", lock=started)
        yield
        return
    package = SignedPackage.dumps({"id": uuid.uuid4().hex, "name": "t", "started": started})
    broker.connection.lpush(broker.list_key, package)  # the head: the oldest
    yield
    broker.connection.lrem(broker.list_key, 1, package)


def test_a_task_left_waiting_fails_the_check(healthy, stale_task):
    status, body = _health()
    assert status == 503 and body["status"] == "failing"
    assert body["oldest_waiting_task_seconds"] >= 590
    assert any("not taking tasks" in p for p in body["problems"])


def test_a_dispatcher_that_stopped_running_fails_the_check(healthy):
    Schedule.objects.filter(name="messaging-dispatch").update(next_run=timezone.now() - 9 * MINUTES)
    Task.objects.all().delete()
    dispatcher_ran(timezone.now() - 10 * MINUTES)
    status, body = _health()
    assert status == 503
    assert body["dispatcher_last_ran_seconds"] >= 590
    assert any("dispatcher" in p and "qcluster" in p for p in body["problems"])


def test_texts_waiting_with_no_sender_fail_and_a_live_sender_is_fine(healthy):
    world = healthy
    long_ago = timezone.now() - 10 * MINUTES
    text_waiting(world.project, world.participant, since=long_ago)
    SenderLease.objects.update(owner="", expires_at=long_ago)  # released ten minutes ago
    status, body = _health()
    assert status == 503
    assert body["oldest_ready_text_seconds"] >= 590
    assert any("sender has not run for" in p for p in body["problems"])
    SenderLease.objects.update(
        owner="loop", expires_at=timezone.now() + 25 * datetime.timedelta(seconds=1)
    )
    status, body = _health()
    assert status == 200, body["problems"]


def test_a_shard_whose_texts_wait_without_its_loop_fails_while_another_shard_sends(
    healthy, settings
):
    """Two shards: one loop sending does not hide the other shard's texts waiting for ten
    minutes with no loop (before, the check looked at the newest lease of any shard)."""
    settings.SENDER_SHARDS = "2"
    world = healthy
    long_ago = timezone.now() - 10 * MINUTES
    text_waiting(world.project, world.participant, since=long_ago)
    stuck = world.project.provider_link.pk % 2
    busy = shards.lease_name(1 - stuck, 2)
    assert shards.lease_acquire("sending", busy)  # the other shard's loop sends right now
    SenderLease.objects.create(name=shards.lease_name(stuck, 2), owner="", expires_at=long_ago)

    status, body = _health()

    assert status == 503
    assert body["sender_lease_renewed_seconds"] < 60  # a loop is alive...
    (problem,) = body["problems"]  # ...but not this shard's
    assert re.fullmatch(
        rf"Texts of sender shard {stuck + 1} of 2 have waited 60\d s to go out and its loop has "
        rf"not run for 60\d s \(limit {settings.HEALTH_SENDER_MAX_SECONDS} s\)\.",
        problem,
    ), problem
    assert shards.lease_acquire("taken over", shards.lease_name(stuck, 2))
    assert _health()[0] == 200


def test_texts_that_wait_for_a_paused_link_are_not_a_wedge(healthy):
    world = healthy
    long_ago = timezone.now() - 10 * MINUTES
    world.project.provider_link.is_paused = True
    world.project.provider_link.save()
    text_waiting(world.project, world.participant, since=long_ago)
    SenderLease.objects.update(owner="", expires_at=long_ago)
    assert _health()[0] == 200


def test_an_unreachable_database_fails_the_check(healthy):
    with mock.patch("portal.health.connection.cursor", side_effect=OperationalError("down")):
        status, body = _health()
    assert status == 503
    assert body["database"] == {
        "ok": False,
        "detail": "The database does not answer (OperationalError).",
    }


def test_an_unreachable_broker_fails_the_check(healthy):
    with mock.patch("django_q.brokers.get_broker", side_effect=ConnectionError("refused")):
        status, body = _health()
    assert status == 503
    assert body["broker"]["ok"] is False
    assert "task broker does not answer" in body["problems"][0]


def test_a_sender_that_finds_nothing_to_do_leaves_the_time_it_stopped(db):
    before = timezone.now()
    sender.run(max_seconds=0.1)
    lease = SenderLease.objects.get(name=shards.LEASE_NAME)
    assert lease.owner == ""
    assert lease.expires_at is not None and lease.expires_at >= before
    assert shards.lease_acquire("next") is True  # a released lease is free at once
