"""Sender shards (docs/sending.md, "Shards"): SENDER_SHARDS loops side by side, each serving the
provider links whose id % N is its shard, under a lease of its own.

The loops race on PostgreSQL (row locks, SKIP LOCKED, several connections at once), so these
tests skip unless DATABASE_URL is a PostgreSQL one (CI's second leg, with the Redis broker):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> pytest tests/messaging/test_shards.py
The check of the setting itself runs everywhere.
"""

import collections
import datetime
import threading
import time

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.utils import timezone

from messaging import sender, shards
from messaging.gateways.twilio import TwilioGateway
from messaging.models import Message, SenderLease
from tests.conftest import ON_POSTGRES
from tests.messaging.test_reliability import (  # noqa: F401 - fixtures
    outbox_send_now_without_kick,
    provider,
    race,
    redcap,
    statuses,
    study,
    threaded_sender,
)

Status = Message.Status
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="sender loops racing need PostgreSQL (DATABASE_URL=postgres://...)",
)


# --- The setting ---------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-2", "two", "", "1.5"])
def test_a_shard_count_that_is_not_a_whole_number_of_one_or_more_is_refused_at_start_up(
    settings, value
):
    settings.SENDER_SHARDS = value

    errors = [e for e in run_checks() if e.id == "messaging.E001"]

    assert len(errors) == 1
    assert f"SENDER_SHARDS is “{value}”: it must be a whole number of sender loops" in errors[0].msg
    with pytest.raises(ImproperlyConfigured):
        shards.shard_count()


def test_a_good_shard_count_passes_the_check_and_names_its_leases(settings):
    settings.SENDER_SHARDS = " 3 "
    assert not [e for e in run_checks() if e.id == "messaging.E001"]
    assert shards.shard_count() == 3
    assert [shards.lease_name(i, 3) for i in range(3)] == ["sender:0/3", "sender:1/3", "sender:2/3"]
    assert shards.lease_name(0, 1) == "sender"  # one loop: the lease it always had


@pytest.mark.django_db
def test_the_dispatcher_starts_a_loop_for_each_shard_without_one(settings, monkeypatch):
    from django_q import tasks as q_tasks

    from messaging import tasks

    settings.SENDER_SHARDS = "3"
    started = []
    monkeypatch.setattr(q_tasks, "async_task", lambda func, **kw: started.append(func))
    monkeypatch.setattr(sender, "ready_count", lambda shard=None: 5)
    assert shards.lease_acquire("busy", "sender:1/3")  # shard 1 has a loop

    tasks.dispatch()

    assert started == ["messaging.tasks.send_queued"] * 2
    assert shards.shards_idle() == 2


@pytest.mark.django_db
def test_the_health_check_sees_the_loops_of_every_shard(settings):
    from portal.health import _leases_seen

    settings.SENDER_SHARDS = "2"
    assert _leases_seen() == {}
    assert shards.lease_acquire("loop", "sender:1/2")
    (name, seen), *others = _leases_seen().items()
    assert name == "sender:1/2" and not others
    assert abs((timezone.now() - seen).total_seconds()) < 5


# --- Loops side by side (PostgreSQL) -------------------------------------------------------------
def record_calls(monkeypatch) -> list:
    """Every provider call a loop made: (loop owner, its shard, link id, when)."""
    calls = []
    lock = threading.Lock()
    original = sender._Loop._call

    def call(self, state, prepared, at, closes_at):
        original(self, state, prepared, at, closes_at)
        with lock:
            calls.append((self.owner, self.shard, state.link.pk, time.monotonic()))

    monkeypatch.setattr(sender._Loop, "_call", call)
    return calls


def assert_each_link_served_by_one_loop_at_a_time(calls) -> None:
    """Per link, the calls of one loop all come before those of the next: never interleaved."""
    by_link = collections.defaultdict(list)
    for owner, _, link, at in calls:
        by_link[link].append((at, owner))
    for link, seen in by_link.items():
        owners = [owner for _, owner in sorted(seen)]
        runs = [o for i, o in enumerate(owners) if i == 0 or owners[i - 1] != o]
        assert len(runs) == len(set(runs)), (link, runs)  # a loop never came back to it


def record_provider_calls(monkeypatch) -> dict:
    """Per link, the moments its provider calls began (the gateway's send, called by
    sender._Loop._call_in_slot after the pace's spacing), in order."""
    moments = collections.defaultdict(list)
    lock = threading.Lock()
    calling = threading.local()  # the link whose call this pool thread is making
    original_call = sender._Loop._call_in_slot
    original_send = TwilioGateway.send

    def call_in_slot(self, state, prepared, closes_at):
        calling.link = state.link.pk
        original_call(self, state, prepared, closes_at)

    def send(self, **kwargs):
        with lock:
            moments[calling.link].append(time.monotonic())
        return original_send(self, **kwargs)

    monkeypatch.setattr(sender._Loop, "_call_in_slot", call_in_slot)
    monkeypatch.setattr(TwilioGateway, "send", send)
    return moments


def arrivals_by_link(fake, links) -> dict:
    return {
        s.link.pk: sorted(at for at, to in fake.calls if to in {p.phone for p in s.participants})
        for s in links
    }


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_loops_send_forty_links_each_text_once_each_link_by_its_shard_at_its_pace(
    study,  # noqa: F811
    provider,  # noqa: F811
    settings,
    monkeypatch,
):
    settings.SENDER_SHARDS = "2"
    fake = provider(latency_ms=20)
    rate = 2.0
    links = [study(4, rate=rate) for _ in range(40)]  # 160 texts; 1.5 s of pace per link
    for s in links:
        outbox_send_now_without_kick(s)
    calls = record_calls(monkeypatch)
    started = record_provider_calls(monkeypatch)

    reports = race([lambda: sender.run(max_seconds=30)] * 2)

    assert sorted(r.sent > 0 for r in reports) == [True, True]  # side by side
    assert sum(r.sent for r in reports) == 160
    assert {st for s in links for st in statuses(s.project)} == {Status.SENT}
    stats = fake.stats()
    assert (stats["send_attempts"], stats["accepted"], stats["duplicates"]) == (160, 160, 0)
    # Each link by the loop of its shard, and only by it.
    shard_of = collections.defaultdict(set)
    for _, (shard, count), link, _ in calls:
        assert count == 2 and link % 2 == shard
        shard_of[link].add(shard)
    assert all(len(v) == 1 for v in shard_of.values()) and len(shard_of) == 40
    # No link faster than its pace (MIN_SPACING of the gap, as the loop allows), timed where
    # the loop makes each provider call: the fake runs in this process, and its own arrival
    # times lag when its threads wait for the interpreter (a link's first call, on a new
    # connection among forty, once arrived 0.2 s late, so its next came "early").
    assert set(started) == {s.link.pk for s in links}
    for link, moments in started.items():
        gaps = [b - a for a, b in zip(moments, moments[1:], strict=False)]
        assert len(moments) == 4 and min(gaps) >= 0.7 / rate, (link, gaps)
    assert {link: len(v) for link, v in arrivals_by_link(fake, links).items()} == {
        s.link.pk: 4 for s in links
    }
    assert not SenderLease.objects.filter(expires_at__gt=timezone.now()).exists()  # let go


@pytest.mark.django_db(transaction=True)
def test_a_loop_takes_a_shard_with_texts_before_an_empty_one(
    study,  # noqa: F811
    provider,  # noqa: F811
    settings,
):
    """With fewer workers than shards, loops start one after another; each must take a shard
    whose texts wait, never an empty one while such a shard is free. (A random pick among
    four shards would take the right one four times running once in 256 tries.)"""
    settings.SENDER_SHARDS = "4"
    fake = provider(latency_ms=5)
    links = [study(2, rate=100) for _ in range(4)]
    assert {s.link.pk % 4 for s in links} == {0, 1, 2, 3}  # one link in each shard
    for s in links:  # texts in one shard at a time; one loop, which must take that shard
        outbox_send_now_without_kick(s)
        assert sender.ready_shards(4) == [s.link.pk % 4]

        report = sender.run(max_seconds=10)

        assert report.sent == 2 and not report.more_work
        assert statuses(s.project) == {Status.SENT: 2}
    assert sender.ready_shards(4) == []
    assert fake.stats()["accepted"] == 8


@pytest.mark.django_db(transaction=True)
def test_a_running_loop_asks_for_a_loop_for_a_shard_whose_loop_died_once_its_lease_runs_out(
    study,  # noqa: F811
    provider,  # noqa: F811
    settings,
    monkeypatch,
):
    """The dispatcher starts a loop for a dead loop's shard within about two minutes; a loop
    still running for another shard notices at its next renewal and asks for one at once."""
    from django_q import tasks as q_tasks
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)  # a real cluster (tests run tasks inline)
    settings.SENDER_SHARDS = "2"
    provider(latency_ms=5)
    busy, orphan = study(8, rate=2), study(2, rate=100)  # busy: about 3.5 s of pace
    if busy.link.pk % 2 == orphan.link.pk % 2:
        orphan = study(2, rate=100)  # consecutive ids: this one is in the other shard
    assert busy.link.pk % 2 != orphan.link.pk % 2
    dead = shards.lease_name(orphan.link.pk % 2, 2)
    monkeypatch.setattr(shards, "LEASE_SECONDS", 1)
    assert shards.lease_acquire("killed", dead)  # its loop died: the lease ends in 1 s
    monkeypatch.setattr(shards, "LEASE_SECONDS", 30)
    expires = SenderLease.objects.get(name=dead).expires_at
    monkeypatch.setattr(shards, "RENEW_EVERY", 0.2)
    for s in (busy, orphan):
        outbox_send_now_without_kick(s)
    asked = []
    monkeypatch.setattr(
        q_tasks, "async_task", lambda func, **kw: asked.append((timezone.now(), func))
    )

    report = sender.run(max_seconds=20)  # takes the busy shard, the other one's lease is live

    assert report.sent == 8 and statuses(orphan.project) == {Status.QUEUED: 2}
    assert statuses(busy.project) == {Status.SENT: 8}
    # Asked once, within a renewal of the lease's end, not before it (not every renewal since).
    (moment, func), *_ = asked
    assert func == "messaging.tasks.send_queued" and len(asked) == 1
    assert expires <= moment <= expires + datetime.timedelta(seconds=1)
    assert report.more_work  # and the loop asks for one more run as it ends
    assert sender.orphaned_shards(2) == [orphan.link.pk % 2]

    asked_for = sender.run(max_seconds=10)  # the task it asked for

    assert asked_for.sent == 2 and not asked_for.more_work
    assert statuses(orphan.project) == {Status.SENT: 2}
    assert sender.orphaned_shards(2) == []


@pytest.mark.django_db
def test_a_loop_takes_a_free_shard_when_none_has_texts_and_none_when_all_are_taken(settings):
    settings.SENDER_SHARDS = "2"
    assert shards.shard_acquire("first", 2, ready=[]) in {0, 1}
    assert shards.shard_acquire("second", 2, ready=[0, 1]) in {0, 1}
    assert shards.shard_acquire("third", 2, ready=[0, 1]) is None  # both taken
    assert shards.shards_idle() == 0


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_killed_loops_shard_is_taken_over_when_its_lease_runs_out(
    study,  # noqa: F811
    provider,  # noqa: F811
    settings,
    monkeypatch,
):
    settings.SENDER_SHARDS = "2"
    monkeypatch.setattr(shards, "LEASE_SECONDS", 2)
    fake = provider(latency_ms=10)
    links = [study(3, rate=50) for _ in range(6)]
    for s in links:
        outbox_send_now_without_kick(s)
    # A loop took shard 0 and was killed (its worker died): its lease is left to run out.
    assert shards.lease_acquire("killed", "sender:0/2")

    first = sender.run(max_seconds=10)  # takes the free shard: 1

    mine = {s.link.pk for s in links if s.link.pk % 2 == 1}
    assert first.sent == 3 * len(mine)
    for s in links:
        expected = {Status.SENT: 3} if s.link.pk in mine else {Status.QUEUED: 3}
        assert statuses(s.project) == expected  # shard 0's links wait for a loop of their own
    time.sleep(2.1)  # the killed loop's lease runs out

    later = sender.run(max_seconds=10)  # both shards are free: it takes 0, the one with texts

    assert later.sent == 18 - first.sent
    assert {st for s in links for st in statuses(s.project)} == {Status.SENT}
    assert fake.stats()["duplicates"] == 0


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_shard_count_changed_while_loops_run_stops_them_before_any_link_is_served_twice(
    study,  # noqa: F811
    provider,  # noqa: F811
    settings,
    monkeypatch,
):
    settings.SENDER_SHARDS = "2"
    monkeypatch.setattr(shards, "LEASE_SECONDS", 1.5)
    monkeypatch.setattr(shards, "RENEW_EVERY", 0.2)
    fake = provider(latency_ms=10)
    links = [study(12, rate=4) for _ in range(6)]  # 3 s of pace per link
    for s in links:
        outbox_send_now_without_kick(s)
    calls = record_calls(monkeypatch)
    old_loops = []

    def old_loop():
        try:
            old_loops.append(sender.run(max_seconds=20))
        finally:
            connection.close()

    loop = threading.Thread(target=old_loop)
    loop.start()
    while len(calls) < 3:  # the loop of 2 shards is sending
        time.sleep(0.02)
    settings.SENDER_SHARDS = "3"  # a host started with another count

    refused = sender.run(max_seconds=10)  # an old loop holds a lease of the other count
    assert refused.sent == 0
    new_started = time.monotonic()
    deadline = time.monotonic() + 30
    new_reports = []
    while time.monotonic() < deadline:
        new_reports.append(sender.run(max_seconds=10))
        if not Message.objects.filter(status__in=[Status.QUEUED, Status.SENDING]).exists():
            break
        time.sleep(0.1)
    loop.join(30)

    (old,) = old_loops
    assert old.sent < 36  # it stopped: its lease was taken from it
    assert {st for s in links for st in statuses(s.project)} == {Status.SENT}
    stats = fake.stats()
    assert (stats["accepted"], stats["duplicates"]) == (72, 0)
    # The new loops (3 shards) only called once the old one had stopped calling.
    old_owners = {owner for owner, (_, count), _, _ in calls if count == 2}
    last_old = max(at for owner, _, _, at in calls if owner in old_owners)
    first_new = min(at for owner, (_, count), _, at in calls if count == 3)
    assert last_old < first_new and new_started < first_new
    assert_each_link_served_by_one_loop_at_a_time(calls)
