"""The sender loop: releases queued texts, paced per provider link, many links side by side.

One loop runs at a time (a lease in the database; a dead loop's lease expires), so every link's
pace is kept even with several worker hosts. Inside the loop each link has its own token bucket
(counting segments) and its own cap on calls in flight, and provider calls run on a thread pool:
a slow or rate-limited link never holds up another.
"""

import datetime
import logging
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from messaging.gateways import Reason, get_gateway
from messaging.models import Message, SenderLease
from messaging.services import sending
from projects.models import FieldMapping, Project

logger = logging.getLogger(__name__)
LEASE_NAME = "sender"
LEASE_SECONDS = 30


def lease_acquire(owner: str) -> bool:
    now = timezone.now()
    SenderLease.objects.get_or_create(name=LEASE_NAME)
    taken = (
        SenderLease.objects.filter(name=LEASE_NAME)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__lt=now))
        .update(owner=owner, expires_at=now + datetime.timedelta(seconds=LEASE_SECONDS))
    )
    return bool(taken)


def lease_renew(owner: str) -> bool:
    now = timezone.now()
    return bool(
        SenderLease.objects.filter(name=LEASE_NAME, owner=owner).update(
            expires_at=now + datetime.timedelta(seconds=LEASE_SECONDS)
        )
    )


def lease_release(owner: str) -> None:
    SenderLease.objects.filter(name=LEASE_NAME, owner=owner).update(expires_at=None, owner="")


def lease_alive() -> bool:
    return SenderLease.objects.filter(name=LEASE_NAME, expires_at__gt=timezone.now()).exists()


class TokenBucket:
    """`rate` segments per second, with a burst of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = max(rate, 0.01)
        self.capacity = max(self.rate, 1.0)
        self.tokens = 1.0
        self.updated = time.monotonic()
        self.blocked_until = 0.0

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, cost: float) -> float:
        """Seconds until a text of `cost` segments may start (0: now)."""
        now = time.monotonic()
        self._refill(now)
        wait = max(0.0, (min(cost, self.capacity) - self.tokens) / self.rate)
        return max(wait, self.blocked_until - now, 0.0)

    def take(self, cost: float) -> None:
        self._refill(time.monotonic())
        self.tokens -= cost  # may go negative for a long text: the next one waits longer

    def back_off(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)


@dataclass
class LinkState:
    link: object
    gateway: object
    bucket: TokenBucket
    max_in_flight: int
    in_flight: int = 0
    backlog: deque = field(default_factory=deque)


@dataclass
class SenderReport:
    sent: int = 0
    held: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    skipped_or_deferred: int = 0
    more_work: bool = False


def _in_flight_cap(rate: float) -> int:
    # Enough calls in flight to keep the pace at ~1 s provider latency, and not more.
    return max(2, min(int(rate) + 2, settings.SENDER_MAX_IN_FLIGHT_PER_LINK))


def _thread_send(message: Message, state: LinkState) -> sending.Outcome:
    try:
        return sending.deliver(message, state.link, state.gateway)
    finally:
        connection.close()  # each pool thread has its own connection; do not leak it


def run(*, max_seconds: float | None = None, batch_size: int = 200) -> SenderReport:
    """Send what is due until the queue is empty or `max_seconds` pass. One loop at a time."""
    owner = uuid.uuid4().hex
    report = SenderReport()
    if not lease_acquire(owner):
        return report
    max_seconds = settings.SENDER_MAX_SECONDS if max_seconds is None else max_seconds
    threads = settings.SENDER_THREADS
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sms") if threads else None
    deadline = time.monotonic() + max_seconds
    last_renew = time.monotonic()
    links: dict[int, LinkState] = {}
    futures: set[Future] = set()
    lock = threading.Lock()

    def done(state: LinkState, future: Future) -> None:
        with lock:
            state.in_flight -= 1
            futures.discard(future)
        try:
            outcome: sending.Outcome = future.result()
        except Exception:  # noqa: BLE001 - a bug must not kill the loop; the sweep recovers the row
            logger.exception("Sending a message failed unexpectedly.")
            return
        _count(report, outcome)
        if outcome.reason in (Reason.RATE_LIMITED, Reason.QUEUE_FULL):
            state.bucket.back_off(outcome.retry_after or 5.0)

    try:
        while time.monotonic() < deadline:
            if time.monotonic() - last_renew > 5:
                if not lease_renew(owner):
                    break
                last_renew = time.monotonic()
            fetched = _fill_backlogs(links, batch_size, report)
            progressed = _release(links, pool, futures, lock, done, report)
            idle = not any(s.backlog for s in links.values())
            if idle and not futures and not fetched:
                break
            if not progressed:
                time.sleep(_next_wake(links))
        report.more_work = any(s.backlog for s in links.values()) or ready_count() > 0
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        lease_release(owner)
    return report


def _count(report: SenderReport, outcome: sending.Outcome) -> None:
    if outcome.status == Message.Status.SENT:
        report.sent += 1
    elif outcome.status == Message.Status.QUEUED:
        report.retried += 1
    elif outcome.status == Message.Status.UNKNOWN:
        report.unknown += 1
    else:
        report.failed += 1


def _ready_queryset():
    """Queued and due, on an active project with a running link and a rule that is not paused."""
    return Message.objects.filter(
        status=Message.Status.QUEUED,
        not_before__lte=timezone.now(),
        project__status=Project.Status.ACTIVE,
        project__provider_link__is_paused=False,
    ).exclude(rule__status__in=["paused", "archived"])


def ready_count() -> int:
    return _ready_queryset().count()


def _fill_backlogs(links: dict, batch_size: int, report: SenderReport) -> bool:
    """Load the next ready messages into per-link backlogs, prepared (eligible and rendered)."""
    if sum(len(s.backlog) for s in links.values()) >= batch_size // 2:
        return False
    queued_ids = {p.message.pk for s in links.values() for p in s.backlog}
    batch = list(
        _ready_queryset()
        .exclude(pk__in=queued_ids)
        .select_related(
            "project", "project__provider_link", "participant", "rule", "project__account"
        )
        .order_by("not_before", "id")[:batch_size]
    )
    if not batch:
        return False
    now = timezone.now()
    surveys = sending.SurveyData()
    sent_counts = sending.sends_so_far(batch)
    suppressed = sending.suppressed_fingerprints(batch)
    project_ids = {m.project_id for m in batch}
    mappings = {m.project_id: m for m in FieldMapping.objects.filter(project_id__in=project_ids)}
    for message in batch:
        prepared = sending.prepare(
            message,
            now=now,
            surveys=surveys,
            sent_counts=sent_counts,
            suppressed=suppressed,
            mappings=mappings,
        )
        if prepared is None:
            report.skipped_or_deferred += 1
            continue
        link = message.project.provider_link
        state = links.get(link.pk)
        if state is None:
            rate = float(link.rate_per_second)
            state = LinkState(
                link=link,
                gateway=get_gateway(link),
                bucket=TokenBucket(rate),
                max_in_flight=_in_flight_cap(rate),
            )
            links[link.pk] = state
        state.backlog.append(prepared)
    return True


def _release(links, pool, futures, lock, done, report) -> bool:
    """Claim and start every message whose link has a token and room in flight."""
    progressed = False
    for state in links.values():
        while state.backlog and state.in_flight < state.max_in_flight:
            prepared = state.backlog[0]
            cost = prepared.count.segments
            if state.bucket.wait(cost) > 0:
                break
            state.backlog.popleft()
            result = sending.claim(prepared, provider=state.link.provider)
            if result == "held":
                report.held += 1
                continue
            if result != "sending":
                continue
            state.bucket.take(cost)
            progressed = True
            message = prepared.message
            if pool is None:
                _count(report, sending.deliver(message, state.link, state.gateway))
                continue
            with lock:
                state.in_flight += 1
            future = pool.submit(_thread_send, message, state)
            with lock:
                futures.add(future)
            future.add_done_callback(lambda f, s=state: done(s, f))
    return progressed


def _next_wake(links: dict) -> float:
    waits = [
        s.bucket.wait(s.backlog[0].count.segments)
        for s in links.values()
        if s.backlog and s.in_flight < s.max_in_flight
    ]
    return min([0.05, *[max(w, 0.001) for w in waits]]) if waits else 0.02


def run_and_reschedule() -> SenderReport:
    """The task body: run, and queue another run if work remains."""
    report = run()
    if report.more_work:
        from django_q.tasks import async_task

        async_task("messaging.tasks.send_queued", task_name="sender")
    return report
