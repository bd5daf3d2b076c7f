"""The sending contract under failure (docs/sending.md).

Real pipeline, real HTTP: Twilio provider links with fake credentials talk to the loopback
FakeProvider (tests/fakes/provider.py), which fails calls on demand and counts every text it
accepted, so "never twice" is checked where it matters: at the provider. Transactional database
tests, because the sender's pool threads and the racing workers have connections of their own.
Time for the sweep and the reconciliation is advanced with their `now=` parameter.
"""

import collections
import datetime
import os
import random
import secrets
import threading
import time
from types import SimpleNamespace

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from billing.models import DailyUsage, ProjectUsage, UsagePeriod
from billing.services import credits_add
from messaging import sender, shards, tasks
from messaging.gateways import base
from messaging.models import Attempt, Message, MessageRule, OptOut, SenderLease
from messaging.services import claim, outbox, record, sweep
from projects import crypto
from projects.models import FieldMapping, ProviderLink, RedcapInstance, RedcapLink
from tests.factories import (
    AccountFactory,
    ParticipantFactory,
    PlanFactory,
    ProjectFactory,
    ProviderLinkFactory,
)
from tests.fakes.provider import FakeProvider

pytestmark = pytest.mark.django_db(transaction=True)

# Gateway read timeouts: short where "timeout" failures are wanted (the fake answers after it, so
# they are fast); generous elsewhere, so that a busy test machine causes no unexpected "unknown".
SHORT_READ_TIMEOUT = 0.3
READ_TIMEOUT = 5.0
Status = Message.Status
OUTCOME = Attempt.Outcome


class Killed(BaseException):
    """What a worker killed mid-task looks like to the code it was running: nothing after it."""


class FlakyTransport(httpx.BaseTransport):
    """Refuses a share of connections before anything is sent (httpx.ConnectError): the
    "never reached the provider" failure, which the fake itself cannot produce."""

    def __init__(self, share: float, seed: int) -> None:
        self.inner = httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=20)
        )
        self.share = share
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.refused = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            refuse = request.method == "POST" and self.random.random() < self.share
            self.refused += refuse
        if refuse:
            raise httpx.ConnectError("Connection refused (test)", request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(autouse=True)
def threaded_sender(settings):
    """These tests are about the real sender: its provider calls on a thread pool (the test
    settings send inline, for tests inside a transaction)."""
    settings.SENDER_THREADS = 16


@pytest.fixture
def provider(settings, monkeypatch):
    """provider(**FakeProvider options) -> a started fake that the Twilio gateway talks to over
    HTTP; `refuse` is the share of connections refused before anything is sent (counted in
    fake.transport.refused)."""
    settings.SMS_GATEWAY_OVERRIDE = ""
    started = []
    clients = []

    def start(
        *, refuse: float = 0.0, seed: int = 1, read_timeout: float = READ_TIMEOUT, **options
    ) -> FakeProvider:
        timeout = httpx.Timeout(connect=2.0, read=read_timeout, write=2.0, pool=2.0)
        fake = FakeProvider(seed=seed, hang_s=read_timeout + 0.7, **options).start()
        settings.TWILIO_API_BASE = fake.twilio_api_base
        transport = FlakyTransport(refuse, seed)
        client = base.new_client(timeout=timeout, transport=transport)
        monkeypatch.setattr(base, "_shared", (os.getpid(), client))
        fake.transport = transport
        started.append(fake)
        clients.append(client)
        return fake

    yield start
    for fake in started:
        fake.stop()
    for client in clients:
        client.close()


@pytest.fixture
def redcap():
    """A fake REDCap the studies' texts pipe the first name from when they go out."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def study(researcher, redcap):
    """study(n) -> a project texting through Twilio (fake credentials), open all day every day,
    with n consented participants and a rule sent by hand that pipes their first name (from
    the fake REDCap, at release)."""
    made = []

    def make(n: int, *, monthly: int = 100_000, rate: float = 500) -> SimpleNamespace:
        k = len(made) + 1
        plan = PlanFactory(name=f"Reliability {k}", monthly_messages=monthly, project_limit=10)
        account = AccountFactory(plan=plan, owners=[researcher])
        project = ProjectFactory(
            account=account,
            owner=researcher,
            time_zone="UTC",
            always_open=True,
        )
        FieldMapping.objects.create(
            project=project, phone_field="phone", consent_field="consent", first_name_field="name"
        )
        project.redcap_instance = RedcapInstance.objects.create(
            name=f"Fake REDCap {k}", api_url=redcap.redcap_api_url
        )
        project.save(update_fields=["redcap_instance"])
        token = secrets.token_hex(16).upper()
        RedcapLink.objects.create(
            project=project,
            token_encrypted=crypto.encrypt(token),
            token_last4=crypto.last4(token),
            token_fingerprint=crypto.fingerprint(token, purpose="redcap-token"),
            linked_by=researcher,
        )
        link = ProviderLinkFactory(
            project=project,
            twilio=True,
            sender_number=f"+1415555{k:04d}",
            rate_per_second=rate,
            linked_by=researcher,
        )
        rule = MessageRule.objects.create(
            project=project,
            kind=MessageRule.Kind.REMINDER,
            name="Diary reminder",
            body="Hi [first_name], please fill in today's sleep diary.",
            schedule=MessageRule.Schedule.MANUAL,
            status=MessageRule.Status.ACTIVE,
            created_by=researcher,
        )
        participants = ParticipantFactory.create_batch(n, project=project)
        made.append(project)
        return SimpleNamespace(
            account=account, project=project, link=link, rule=rule, participants=participants
        )

    return make


def schedule_due_now(rule: MessageRule) -> datetime.datetime:
    """Make `rule` a one-off that fell due a minute ago and that the dispatcher has not seen."""
    now = timezone.now()
    due = now - datetime.timedelta(minutes=1)
    MessageRule.objects.filter(pk=rule.pk).update(
        schedule=MessageRule.Schedule.ONCE,
        once_date=due.date(),
        send_time=due.time().replace(microsecond=0),
        materialized_through=due - datetime.timedelta(minutes=1),
    )
    return now


def statuses(project) -> dict[str, int]:
    return collections.Counter(
        Message.objects.filter(project=project).values_list("status", flat=True)
    )


def period_of(account) -> UsagePeriod:
    return UsagePeriod.objects.get(account=account, closed_at__isnull=True)


def assert_quota_matches(study, *, units: int) -> None:
    """The period, the project counter and the daily counters all say `units`, and every
    message still holding units is one that went out."""
    assert period_of(study.account).used == units
    assert ProjectUsage.objects.get(project=study.project).units == units
    daily = DailyUsage.objects.filter(account=study.account).values_list("units", flat=True)
    assert sum(daily) == units
    holding = Message.objects.filter(project=study.project, units__gt=0)
    assert set(holding.values_list("status", flat=True)) <= {Status.SENT}
    assert sum(holding.values_list("units", flat=True)) == units


def run_until_quiescent(*, seconds: float = 60) -> None:
    """Dispatch (which kicks the sender) until nothing is queued or sending; retries wait for
    their backoff, so sleep until the next one is due."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tasks.dispatch()
        sender.run(max_seconds=20)
        waiting = Message.objects.filter(status__in=[Status.QUEUED, Status.SENDING])
        if not waiting.exists():
            return
        next_due = waiting.order_by("not_before").values_list("not_before", flat=True).first()
        time.sleep(min(2.0, max(0.05, (next_due - timezone.now()).total_seconds())))
    left = collections.Counter(Message.objects.values_list("status", flat=True))
    raise AssertionError(f"Still queued or sending after {seconds} s: {left}")


# --- Random failures ------------------------------------------------------------------------
def test_with_a_third_of_calls_failing_every_text_ends_sent_or_failed_once_with_exact_quota(
    study, provider
):
    fake = provider(
        failure_rate=0.3, latency_ms=5, refuse=0.05, seed=20261127, read_timeout=SHORT_READ_TIMEOUT
    )
    s = study(300)
    now = schedule_due_now(s.rule)

    run_until_quiescent()
    # Unconfirmed rows: ask the provider once they are old enough. Those it has no record of
    # once its listing can be trusted go out again, once; a second unconfirmed call fails.
    first = sweep.sweep(now=now + datetime.timedelta(minutes=5))
    last = sweep.sweep(now=now + datetime.timedelta(minutes=45))
    # (45 minutes later on the sweep's clock: the texts it put back are due now.)
    Message.objects.filter(status=Status.QUEUED).update(not_before=timezone.now())
    run_until_quiescent()
    again = sweep.sweep(now=now + datetime.timedelta(minutes=50))
    final = sweep.sweep(now=now + datetime.timedelta(minutes=95))

    stats = fake.stats()
    counts = statuses(s.project)
    assert sum(counts.values()) == 300
    assert set(counts) <= {Status.SENT, Status.FAILED}, counts
    assert not Message.objects.filter(project=s.project, status=Status.FAILED, error="").exists()

    # The provider never took the same text twice, and took every text that ended sent.
    assert stats["duplicates"] == 0
    sent = Message.objects.filter(project=s.project, status=Status.SENT).select_related(
        "participant"
    )
    by_sid = {m["sid"]: m for m in fake.messages}
    assert {m.provider_message_id for m in sent} == set(by_sid)
    for message in sent:
        accepted = by_sid[message.provider_message_id]
        assert (accepted["to"], accepted["body"]) == (message.participant.phone, message.body)

    # Every call is on record: the ones the fake saw, and the ones refused before reaching it.
    attempts = list(Attempt.objects.filter(message__project=s.project).order_by("started_at", "id"))
    assert len(attempts) == stats["send_attempts"] + fake.transport.refused
    assert not [a for a in attempts if a.outcome == OUTCOME.STARTED]
    # No call after a call that may have reached the provider (ambiguous or accepted), except
    # once, after the provider confirmed it never received the text.
    by_message = collections.defaultdict(list)
    for attempt in attempts:
        by_message[attempt.message_id].append(attempt.outcome)
    for outcomes in by_message.values():
        assert sum(o != OUTCOME.RETRY for o in outcomes[:-1]) <= 1, outcomes
        assert OUTCOME.ACCEPTED not in outcomes[:-1], outcomes

    # Quota: the sent texts hold one unit each; everything else was released.
    assert_quota_matches(s, units=counts[Status.SENT])

    # The run exercised every path of the contract.
    # Every unconfirmed call was settled: found at the provider, sent again once (the provider
    # had no record of it), or, unconfirmed a second time, failed.
    ambiguous_calls = sum(o.count(OUTCOME.AMBIGUOUS) for o in by_message.values())
    settled = sum(
        sweep[key]
        for sweep in (first, last, again, final)
        for key in ("reconciled", "resent", "unconfirmed")
    )
    assert settled == ambiguous_calls
    assert first["reconciled"] > 0 and last["resent"] > 0
    assert sum(1 for o in by_message.values() if OUTCOME.RETRY in o) > 0
    assert stats["failures"].keys() >= {"drop", "429", "500", "500-accepted", "timeout"}
    twice = [m for m, o in by_message.items() if o.count(OUTCOME.AMBIGUOUS) == 2]
    unconfirmed = Message.objects.filter(project=s.project, status=Status.FAILED, pk__in=twice)
    assert all("no record of this text" in m.error for m in unconfirmed)


# --- A worker killed mid-send ---------------------------------------------------------------
def kill_after_the_provider_accepts(s, monkeypatch) -> None:
    """Send the study's text with a sender that dies once the provider has accepted it."""
    monkeypatch.setattr(outbox, "kick_sender", lambda: None)
    outbox.send_now(rule=s.rule, actor=s.project.memberships.get().user)

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(record, "record_successes", killed)
    with pytest.raises(Killed):
        sender.run()
    monkeypatch.undo()  # the next worker is healthy


def test_a_worker_killed_after_the_provider_accepted_is_reconciled_without_a_second_call(
    study, provider, monkeypatch
):
    fake = provider()
    s = study(1)
    kill_after_the_provider_accepts(s, monkeypatch)

    message = Message.objects.get(project=s.project)
    assert message.status == Status.SENDING
    assert [a.outcome for a in message.attempt_log.all()] == [OUTCOME.STARTED]
    assert fake.stats()["accepted"] == 1
    # The dead worker's lease runs out.
    SenderLease.objects.update(owner="dead", expires_at=timezone.now() - datetime.timedelta(1))

    tasks.dispatch()  # too soon for the sweep: the row stays as it is, and nothing is sent
    assert fake.stats()["send_attempts"] == 1
    later = timezone.now() + sweep.STUCK_SENDING_AFTER + datetime.timedelta(seconds=1)
    assert sweep.sweep(now=later, lease_alive=shards.lease_alive())["unknown"] == 1
    message.refresh_from_db()
    assert message.status == Status.UNKNOWN
    sender.run()  # an unknown text is never released again
    tasks.dispatch()

    reconciled = sweep.sweep(now=later + sweep.RECONCILE_AFTER + datetime.timedelta(seconds=1))

    assert reconciled["reconciled"] == 1
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert message.provider_message_id == fake.messages[0]["sid"]
    stats = fake.stats()
    assert (stats["send_attempts"], stats["accepted"], stats["duplicates"]) == (1, 1, 0)
    assert message.attempt_log.count() == 1
    assert_quota_matches(s, units=1)


def test_a_row_a_dead_sender_left_is_recovered_even_while_another_sender_runs(
    study, provider, monkeypatch
):
    fake = provider()
    s = study(1)
    kill_after_the_provider_accepts(s, monkeypatch)
    # A long send elsewhere keeps the lease taken whenever the dispatcher looks.
    SenderLease.objects.update(owner="another", expires_at=timezone.now() + datetime.timedelta(1))
    assert shards.lease_alive()
    now = timezone.now()

    soon = sweep.sweep(now=now + datetime.timedelta(minutes=6), lease_alive=True)
    later = sweep.sweep(now=now + datetime.timedelta(minutes=16), lease_alive=True)
    found = sweep.sweep(now=now + datetime.timedelta(minutes=19), lease_alive=True)

    assert (soon["unknown"], later["unknown"], found["reconciled"]) == (0, 1, 1)
    assert statuses(s.project) == {Status.SENT: 1}
    assert fake.stats()["send_attempts"] == 1
    assert_quota_matches(s, units=1)


def test_a_worker_killed_after_claiming_but_before_calling_is_requeued_and_sent_once(
    study, provider, monkeypatch
):
    fake = provider()
    s = study(3)
    monkeypatch.setattr(outbox, "kick_sender", lambda: None)
    outbox.send_now(rule=s.rule, actor=s.project.memberships.get().user)

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(claim, "attempts_start", killed)
    with pytest.raises(Killed):
        sender.run()
    monkeypatch.undo()
    assert statuses(s.project) == {Status.SENDING: 3}
    assert period_of(s.account).used == 3  # reserved by the claim
    assert fake.stats()["send_attempts"] == 0

    later = timezone.now() + sweep.STUCK_SENDING_AFTER + datetime.timedelta(seconds=1)
    assert sweep.sweep(now=later)["requeued"] == 3
    assert period_of(s.account).used == 0
    sender.run()

    assert statuses(s.project) == {Status.SENT: 3}
    stats = fake.stats()
    assert (stats["send_attempts"], stats["accepted"], stats["duplicates"]) == (3, 3, 0)
    assert_quota_matches(s, units=3)


def test_a_sender_frozen_holding_claimed_texts_does_not_call_them_when_it_wakes(
    study, provider, monkeypatch
):
    fake = provider()
    s = study(5)
    outbox_send_now_without_kick(s)
    healthy = claim.attempts_start
    frozen_with = []

    def frozen_then_woken(messages):
        # Just before its calls this sender froze (a laptop asleep). Meanwhile its lease ran
        # out, the dispatcher's sweep found its claimed texts stranded, and a new sender sent
        # them. Then it wakes up and carries on where it was.
        frozen_with.extend(messages)
        monkeypatch.setattr(claim, "attempts_start", healthy)
        SenderLease.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
        later = timezone.now() + sweep.STUCK_SENDING_AFTER + datetime.timedelta(seconds=1)
        assert sweep.sweep(now=later, lease_alive=shards.lease_alive())["requeued"] == 5
        assert sender.run().sent == 5
        return healthy(messages)

    monkeypatch.setattr(claim, "attempts_start", frozen_then_woken)
    sender.run()

    assert len(frozen_with) == 5
    assert statuses(s.project) == {Status.SENT: 5}
    stats = fake.stats()
    assert (stats["send_attempts"], stats["accepted"], stats["duplicates"]) == (5, 5, 0)
    assert Attempt.objects.filter(message__project=s.project).count() == 5
    assert_quota_matches(s, units=5)


def test_a_sender_stopping_at_its_deadline_gives_back_what_it_claimed_ahead(
    study, provider, monkeypatch
):
    fake = provider()
    s = study(40, rate=20)  # claims five texts (a quarter of a second) ahead of their turn
    outbox_send_now_without_kick(s)
    given_back = []
    unclaim = claim.unclaim
    monkeypatch.setattr(claim, "unclaim", lambda batch: given_back.append(unclaim(batch)))

    sender.run(max_seconds=0.5)

    counts = statuses(s.project)
    assert sum(given_back) > 0
    assert counts[Status.SENT] == fake.stats()["accepted"] >= 1
    assert set(counts) == {Status.SENT, Status.QUEUED}  # nothing left claimed
    assert_quota_matches(s, units=counts[Status.SENT])


def outbox_send_now_without_kick(s) -> None:
    from unittest import mock

    with mock.patch.object(outbox, "kick_sender", lambda: None):
        outbox.send_now(rule=s.rule, actor=s.project.memberships.get().user)


# --- A pause while the sender runs ----------------------------------------------------------
@pytest.mark.parametrize("what", ["rule", "project", "link"])
def test_a_pause_while_the_sender_runs_stops_the_texts_it_holds_before_the_provider(
    study, provider, what
):
    from messaging.services import rules
    from messaging.services.provider_links import provider_link_pause, provider_link_resume
    from projects.services import project_set_status

    fake = provider()
    # Five texts a second: the loop holds a couple of seconds of them in memory (prepared, and
    # claimed ahead of their turn) while it paces the calls.
    s = study(30, rate=5)
    owner = s.project.memberships.get().user
    outbox_send_now_without_kick(s)
    running = threading.Thread(target=race, args=([sender.run],))
    running.start()
    deadline = time.monotonic() + 20
    while fake.stats()["accepted"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    if what == "rule":
        rules.rule_set_status(rule=s.rule, status=MessageRule.Status.PAUSED, actor=owner)
    elif what == "project":
        project_set_status(project=s.project, status=s.project.Status.PAUSED, actor=owner)
    else:
        provider_link_pause(link=s.link, reason="Paused by the team.", actor=owner)
    paused_at = timezone.now()  # the pause is committed
    running.join(timeout=60)
    assert not running.is_alive()

    # No call started after the pause; what was in flight then may have landed, nothing more.
    attempts = Attempt.objects.filter(message__project=s.project)
    assert not attempts.filter(started_at__gt=paused_at).exists()
    counts = statuses(s.project)
    assert set(counts) == {Status.SENT, Status.QUEUED}, counts  # the rest wait, unclaimed
    assert 3 <= counts[Status.SENT] == fake.stats()["accepted"] == attempts.count() < 30
    assert_quota_matches(s, units=counts[Status.SENT])  # the claimed ones' quota released

    # Resumed: the rest go out, each once.
    ProviderLink.objects.filter(pk=s.link.pk).update(rate_per_second=500)
    if what == "rule":
        MessageRule.objects.filter(pk=s.rule.pk).update(status=MessageRule.Status.ACTIVE)
    elif what == "project":
        project_set_status(project=s.project, status=s.project.Status.ACTIVE, actor=owner)
    else:
        provider_link_resume(link=s.link, actor=owner)
    sender.run(max_seconds=30)
    assert statuses(s.project) == {Status.SENT: 30}
    assert (fake.stats()["accepted"], fake.stats()["duplicates"]) == (30, 0)
    assert_quota_matches(s, units=30)


# --- Duplicated tasks and racing loops ------------------------------------------------------
def race(functions) -> list:
    """Run the functions together on threads of their own (own database connections)."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)
    errors: list[BaseException] = []

    def run(i, function):
        try:
            barrier.wait(timeout=30)
            results[i] = function()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def test_a_duplicated_send_task_makes_no_twin_call(study, provider):
    fake = provider(latency_ms=20)
    s = study(60)
    outbox_send_now_without_kick(s)

    reports = race([tasks.send_queued, tasks.send_queued])

    assert statuses(s.project) == {Status.SENT: 60}
    assert sorted(r["sent"] for r in reports) == [0, 60]  # the second found the lease taken
    stats = fake.stats()
    assert (stats["send_attempts"], stats["duplicates"]) == (60, 0)


def test_two_sender_loops_at_once_claim_each_text_once_even_without_the_lease(
    study, provider, monkeypatch
):
    # Paced so that the three loops overlap for a while (each keeps its own pace).
    fake = provider(latency_ms=10)
    s = study(150, rate=40)
    outbox_send_now_without_kick(s)
    monkeypatch.setattr(shards, "lease_acquire", lambda owner, name=None: True)
    monkeypatch.setattr(shards, "lease_renew", lambda owner, name=None: True)

    reports = race([sender.run, sender.run, sender.run])

    assert statuses(s.project) == {Status.SENT: 150}
    assert sum(r.sent for r in reports) == 150
    assert sum(1 for r in reports if r.sent) >= 2  # they really did run side by side
    stats = fake.stats()
    assert (stats["send_attempts"], stats["accepted"], stats["duplicates"]) == (150, 150, 0)
    assert Attempt.objects.filter(message__project=s.project).count() == 150
    assert_quota_matches(s, units=150)


def test_re_running_or_racing_the_dispatcher_creates_no_twin_rows(study, provider, monkeypatch):
    provider()
    s = study(40)
    monkeypatch.setattr(tasks.sender, "ready_count", lambda: 0)  # materialise only: no sender
    now = schedule_due_now(s.rule)
    stale = MessageRule.objects.get(pk=s.rule.pk)  # as a slow second dispatcher read it

    race([lambda: outbox.dispatch(now=now)] * 3)
    tasks.dispatch()
    outbox.dispatch(now=now)
    outbox._materialize(stale, now, outbox.DispatchReport())

    assert Message.objects.filter(project=s.project).count() == 40
    assert set(Message.objects.values_list("status", flat=True)) == {Status.QUEUED}
    assert len(set(Message.objects.values_list("participant_id", flat=True))) == 40


# --- Over quota -------------------------------------------------------------------------------
def test_texts_over_quota_are_held_then_released_in_order_when_credits_arrive(study, provider):
    fake = provider()
    s = study(8, monthly=5)
    outbox_send_now_without_kick(s)
    messages = Message.objects.filter(project=s.project).order_by("id")
    ids = list(messages.values_list("pk", flat=True))

    sender.run()

    held = Message.objects.filter(project=s.project, status=Status.HELD).order_by("id")
    assert statuses(s.project) == {Status.SENT: 5, Status.HELD: 3}
    assert list(held.values_list("pk", flat=True)) == ids[5:]  # the first five went
    assert all("quota" in m.error for m in held)
    assert_quota_matches(s, units=5)

    # Billing approves two units of credit: its signal releases the held texts, oldest first,
    # and kicks the sender (q2 runs it inline in tests). The third waits again.
    credits_add(account=s.account, units=2)

    assert statuses(s.project) == {Status.SENT: 7, Status.HELD: 1}
    assert Message.objects.get(project=s.project, status=Status.HELD).pk == ids[7]
    credits_add(account=s.account, units=10)
    assert statuses(s.project) == {Status.SENT: 8}
    stats = fake.stats()
    assert (stats["accepted"], stats["duplicates"]) == (8, 0)
    assert_quota_matches(s, units=8)


# --- Pace and fairness ------------------------------------------------------------------------
def test_a_slow_link_with_a_long_queue_does_not_hold_up_another_link(study, provider):
    fake = provider()
    slow = study(40, rate=1)  # a US long code: one text a second
    fast = study(30, rate=100)
    outbox_send_now_without_kick(slow)  # queued first, and more than one read of the queue
    outbox_send_now_without_kick(fast)

    started = time.monotonic()
    sender.run(max_seconds=2.5, batch_size=20)
    elapsed = time.monotonic() - started

    assert statuses(fast.project) == {Status.SENT: 30}
    slow_sent = statuses(slow.project)[Status.SENT]
    assert 1 <= slow_sent <= elapsed + 1  # its own pace, not faster
    assert set(statuses(slow.project)) == {Status.SENT, Status.QUEUED}
    assert fake.stats()["duplicates"] == 0
    assert_quota_matches(slow, units=slow_sent)


def test_a_link_paces_segments_so_a_three_segment_text_takes_three_turns(study, provider):
    fake = provider()
    rate = 10  # segments a second: a three-segment text every 0.3 s
    s = study(8, rate=rate)
    body = "Please fill in today's sleep diary before you go to bed tonight. " * 6
    MessageRule.objects.filter(pk=s.rule.pk).update(body=body)
    outbox_send_now_without_kick(s)

    sender.run(max_seconds=20)

    assert statuses(s.project) == {Status.SENT: 8}
    assert set(Message.objects.filter(project=s.project).values_list("segments", flat=True)) == {3}
    stats = fake.stats()
    segments_per_second = 3 * stats["accepted_per_second"]
    # The link's pace in segments: not faster (a text counted as one unit would go three times
    # as fast), and not much slower.
    assert 0.6 * rate <= segments_per_second <= 1.1 * rate, stats
    assert stats["duplicates"] == 0
    assert_quota_matches(s, units=8)


def test_the_bucket_charges_each_segment_of_a_text():
    now = [100.0]
    bucket = sender.TokenBucket(2, clock=lambda: now[0])  # 2 segments a second
    assert bucket.wait(3) == 0
    bucket.take(3)  # a three-segment text goes
    assert bucket.wait(3) == pytest.approx(1.5)  # the next waits 3 / rate, not 1 / rate
    now[0] += 1.5
    assert bucket.wait(1) == 0
    bucket.take(1)
    assert bucket.wait(1) == pytest.approx(0.5)


def test_a_slow_redcap_holds_up_only_the_texts_that_wait_for_it(study, provider, redcap):
    fake = provider()
    piping = study(20)  # pipes the first name: it is fetched from REDCap as the texts go out
    plain = study(20)
    MessageRule.objects.filter(pk=plain.rule.pk).update(body="Please fill in your sleep diary.")
    redcap.redcap_latency_s = 2.0
    outbox_send_now_without_kick(piping)  # queued first: read first
    outbox_send_now_without_kick(plain)

    asked = timezone.now()
    report = sender.run(max_seconds=20)

    assert report.sent == 40
    assert fake.stats()["duplicates"] == 0

    def sent_at(s):
        return sorted(Message.objects.filter(project=s.project).values_list("sent_at", flat=True))

    # The plain texts went while the piped ones waited for REDCap (on a thread of its own).
    assert sent_at(plain)[-1] < asked + datetime.timedelta(seconds=1.5) < sent_at(piping)[0]
    assert len(redcap.redcap_calls) == 1  # one export for the batch's 20 records
    bodies = {
        m.participant.record_id: m.body for m in Message.objects.filter(project=piping.project)
    }
    assert all(
        body == f"Hi name {r}, please fill in today's sleep diary." for r, body in bodies.items()
    )


def test_with_no_sender_threads_the_loop_calls_the_provider_itself(study, provider, settings):
    settings.SENDER_THREADS = 0
    fake = provider(failure_rate=0.5, failure_kinds=("429",), seed=3)
    s = study(6)
    outbox_send_now_without_kick(s)

    run_until_quiescent(seconds=30)

    assert statuses(s.project) == {Status.SENT: 6}
    assert fake.stats()["duplicates"] == 0
    assert_quota_matches(s, units=6)


# --- Permanent refusals -----------------------------------------------------------------------
def test_refused_credentials_pause_the_link_keep_the_texts_and_mail_the_owner_once(
    study, provider, mailoutbox
):
    fake = provider(auth_token="not-the-links-token")
    s = study(30)
    outbox_send_now_without_kick(s)

    sender.run()

    s.link.refresh_from_db()
    assert s.link.is_paused and "refused the credentials" in s.link.paused_reason
    assert statuses(s.project) == {Status.QUEUED: 30}  # nothing lost: they wait for new ones
    assert fake.stats()["accepted"] == 0
    assert fake.stats()["send_attempts"] <= 16  # the ones already in flight, then it stopped
    assert len(mailoutbox) == 1 and "paused" in mailoutbox[0].subject
    assert_quota_matches(s, units=0)
    sender.run()  # a paused link releases nothing
    assert fake.stats()["send_attempts"] <= 16


def test_an_invalid_or_unsubscribed_number_fails_flags_and_releases_its_quota(study, provider):
    fake = provider()
    s = study(3)
    invalid, unsubscribed, fine = s.participants
    for participant, number in ((invalid, "+15005550001"), (unsubscribed, "+15005550004")):
        participant.phone_encrypted = crypto.encrypt(number)
        participant.phone_fingerprint = crypto.fingerprint(number, purpose="phone")
        participant.save()
    outbox_send_now_without_kick(s)

    sender.run()

    by_participant = {m.participant_id: m for m in Message.objects.filter(project=s.project)}
    assert by_participant[fine.pk].status == Status.SENT
    for participant in (invalid, unsubscribed):
        message = by_participant[participant.pk]
        assert message.status == Status.FAILED and message.error
        assert message.attempt_log.get().outcome == OUTCOME.FAILED
    invalid.refresh_from_db()
    assert invalid.number_invalid
    assert OptOut.objects.filter(project=s.project, participant=unsubscribed).exists()
    assert fake.stats()["accepted"] == 1
    assert_quota_matches(s, units=1)


# --- A busy link's call slots (docs/sending.md, section 4) -----------------------------------
def test_texts_handed_to_a_busy_link_beyond_its_slots_go_back_uncalled_when_they_wait_too_long(
    study, provider, settings, monkeypatch
):
    """A link with every call slot busy is handed a few texts more (sender.HANDED_OVER), so a
    call that ends lets the next start at once. One that waits longer than SLOT_WAIT for a slot
    is not called: its attempt row goes, it is queued again and sent later, once."""
    settings.SENDER_MAX_IN_FLIGHT_PER_LINK = 2
    fake = provider(latency_ms=400)  # each call holds its slot longer than SLOT_WAIT
    s = study(12)
    late = []
    original = claim.attempts_not_called

    def spy(messages, *, hours_closed=True):
        if not hours_closed:
            late.extend(m.pk for m in messages)
        return original(messages, hours_closed=hours_closed)

    monkeypatch.setattr(claim, "attempts_not_called", spy)
    outbox_send_now_without_kick(s)

    while sender.run(max_seconds=30).more_work:
        pass

    assert statuses(s.project) == {Status.SENT: 12}
    stats = fake.stats()
    assert stats["max_in_flight"] <= 2  # the slots held at the provider
    assert stats["accepted"] == 12 and stats["duplicates"] == 0
    assert late, "no text waited past SLOT_WAIT: the hand-over was not exercised"
    # Every text has exactly one attempt row: the given-back ones' rows were removed.
    attempts = Attempt.objects.filter(message__project=s.project)
    assert attempts.count() == 12 and {a.outcome for a in attempts} == {OUTCOME.ACCEPTED}
    assert_quota_matches(s, units=12)
