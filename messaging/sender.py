"""The sender loop: releases queued texts, paced per provider link, many links side by side.

One loop runs at a time per shard (a lease in the database, messaging/shards.py; a dead loop's
lease expires), so every link's pace is kept even with several worker hosts. Inside the loop
each link has its own token bucket (counting segments) and its own cap on calls in flight, and
provider calls run on a thread pool: a slow or rate-limited link never holds up another.

Only the loop's own thread touches the database; the pool threads (and the REDCap threads) make
the HTTP calls and nothing else. So there is one writer (SQLite never makes it wait on itself,
and a sender holds one connection, not one per thread), and writes are batched:

    fill     the next ready messages, a bounded number per link, checked and rendered (prepare).
             What a link's texts need from REDCap (completion, survey links, the values they
             pipe: read when they go out, not from the synced copy) is fetched first on a
             REDCap thread, one fetch per link at a time (release.ReleaseData); the texts wait
             for it, still queued, while the other links go on
    claim    a link's next few messages (a quarter of a second of its pace) in one transaction:
             queued -> sending and their quota (claim.claim_batch)
    start    when the link's bucket will have a token within START_AHEAD: the attempt rows (one
             statement for all started together), then the calls go to the pool, each with the
             moment it may go out; the pool thread waits for it, and for one of the link's call
             slots. So the pace is kept to the millisecond even while this thread is busy
             reading or writing for a moment.
    record   the answers that came back: accepted ones together, every RECORD_WAIT
             (record.record_successes); refusals one by one (record.record_failure)

The last gate (docs/sending.md): `start` writes the attempt rows with ONE statement
(claim.attempts_start) that re-checks, from the database at that moment, pauses (of a rule, a
project or a provider link), the suppression list (STOP), consent and withdrawal, and the
participant's sending hours. A text the loop holds in memory (prepared, or claimed ahead of its
turn) that fails it goes back, its quota released: cancelled after an opt-out, waiting for the
next opening after the hours closed, queued again after a pause. Only calls already handed to
the pool (at most START_AHEAD ahead of their turn, and SLOT_WAIT for a call slot) may still
leave after a STOP; none leaves after the hours close (the pool thread checks the close
itself, CLOSE_MARGIN).

Claimed rows that were never called when the loop stops go back to the queue (claim.unclaim);
if the loop dies instead, the sweep does it (no attempt row: requeued; an attempt row: unknown,
then reconciled with the provider).
"""

import datetime
import gc
import logging
import math
import queue
import threading
import time
import uuid
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from django_q.conf import Conf

from messaging import shards
from messaging.gateways import GatewayError, Reason, get_gateway
from messaging.models import Message, MessageRule
from messaging.selectors import oldest_ready_text_due_by_shard, ready_texts
from messaging.services import claim, conversations, outbox, provider_links, record, release
from projects.models import FieldMapping, Participant, Project, RedcapLink

logger = logging.getLogger(__name__)
FILL_EVERY = 0.25  # seconds between two reads of the queue
CLAIM_AHEAD = 0.25  # seconds of a link's pace claimed in one transaction
# A link is claimed for when its claimed texts run out within CLAIM_AHEAD; the links whose texts
# run out within CLAIM_NEAR more are claimed for in the same transaction (claim.claim_batches):
# many slow links share one claim, not one transaction per text.
CLAIM_NEAR = 0.25
# A slow link claims its next MIN_CLAIM turns at once, as long as they fall within
# CLAIM_MAX_AHEAD seconds: the quota is reserved once for a few texts (docs/sending.md, "Many
# links"); the last gate still checks each text at its turn.
MIN_CLAIM = 10
CLAIM_MAX_AHEAD = 10.0
# When more than CROWD links claim together (a start), a link's first claim of the loop takes
# at most FIRST_CLAIM of its slow turns: each link's first text waits for the claims of every
# link before it (docs/sending.md, "Start-up").
FIRST_CLAIM = 2
CROWD = 10
MAX_CLAIM = 50  # messages of one link claimed at once, at most
BURST_SECONDS = 0.02  # a bucket holds this many seconds of its rate (at least one message)
START_AHEAD = 0.1  # seconds: a call is handed to its thread this long before its turn at most
# A text handed to a thread while the link has max_in_flight calls at the provider waits this long
# at most for one to end; then it goes back to the queue uncalled (so a STOP or a pause still
# catches every text that has not left within START_AHEAD + SLOT_WAIT of its handing over).
SLOT_WAIT = 0.1
# Texts handed to threads beyond a busy link's call slots, as a share of them: enough that a call
# that ends finds the next one waiting, few enough that they rarely wait longer than SLOT_WAIT.
HANDED_OVER = 0.5
# No call starts in the last second of a participant's sending hours: a call takes a moment to
# reach the provider, and the hours are a hard edge (docs/sending.md, "The last gate").
CLOSE_MARGIN = 1.0
# Calls of one link leave at least this fraction of their nominal gap apart, even when threads
# wake late together (the host was busy): late texts catch up at 4/3 of the pace, not in a burst.
MIN_SPACING = 0.75
# Without a Retry-After: a 429 says "slower, now" (a per-second limit); a full sender queue
# (Twilio 30001 / 21611) drains more slowly.
RATE_LIMITED_PAUSE = 1.0
QUEUE_FULL_PAUSE = 5.0
# Read-ahead (docs/sending.md, "Reading REDCap ahead"): a link keeps this share of
# SENDER_READ_AHEAD_SECONDS of its pace prepared (at most SENDER_READ_BATCH texts, read in one
# REDCap export), so its texts leave before their read is SENDER_READ_AHEAD_SECONDS old; a text
# whose read is older by then is read again.
READ_AHEAD_SHARE = 0.75
# A text is not claimed when its read would be this close to stale (it is read again first).
STALE_MARGIN = 2.0
MAX_READS = 5  # reads of the queue in one fill, at most (see _fill)
DISCOVER_ROWS = 200  # rows read beyond the known links' room, for links not seen yet
DISCOVER_EVERY = 2.0  # seconds: the queue is read at least this often (texts for new links)
# Accepted texts are recorded together (one transaction) once the oldest has waited RECORD_WAIT
# seconds or RECORD_BATCH are waiting, and whenever the loop stops: a slow link's texts share a
# transaction. A receipt that comes before its text is recorded is kept and applied later
# (receipts.receipt_apply, park=True; docs/sending.md, "Recording").
RECORD_WAIT = 2.0
RECORD_BATCH = 500
PREPARE_RETRY = datetime.timedelta(minutes=5)
# A REDCap fetch that took longer than this: its texts' participants are read again before they
# are prepared (a sync may have changed a number meanwhile); a quicker one's were read with them.
RECHECK_AFTER = 5.0
# REDCap exports at release in flight at once (one per link at most). Read ahead, a link needs
# one export every minute or so; this is for the start, when every link needs its first at once
# (docs/sending.md, "Start-up"). At stop 20 more than 16 seemed to cause a connection reset now
# and then: it was httpcore's pool closing a provider call's connection (client_limits in
# messaging/gateways/base.py).
REDCAP_THREADS = 32


class TokenBucket:
    """`rate` segments per second; holds at most BURST_SECONDS of it (and at least one text), so
    after a pause the sender never bursts past what a provider's own limiter allows.

    Tokens may go negative: a text taken before its turn (START_AHEAD) or longer than the bucket
    puts the next one further back, so every text has its own moment and the pace holds.
    """

    def __init__(self, rate: float, *, clock=time.monotonic) -> None:
        self.clock = clock
        self.rate = max(rate, 0.01)
        self.capacity = max(1.0, self.rate * BURST_SECONDS)
        self.tokens = 1.0
        self.updated = clock()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, cost: float) -> float:
        """Seconds until a text costing `cost` segments may go (0: now)."""
        self._refill(self.clock())
        return max(0.0, (min(cost, self.capacity) - self.tokens) / self.rate)

    def ahead(self, cost: float) -> float:
        """Seconds until `cost` segments (more than a burst, maybe) have gone at the pace."""
        self._refill(self.clock())
        return max(0.0, (cost - self.tokens) / self.rate)

    def take(self, cost: float) -> None:
        self._refill(self.clock())
        self.tokens -= cost

    def back_off(self, seconds: float) -> None:
        """Nothing more for `seconds` (the provider said slow down), then the usual pace."""
        self._refill(self.clock())
        self.tokens = min(self.tokens, 0.0) - seconds * self.rate


@dataclass
class LinkState:
    link: object
    gateway: object
    bucket: TokenBucket
    max_in_flight: int
    callback_url: str | None = None
    in_flight: int = 0
    paused: bool = False
    unreachable: bool = False  # the link shows "provider unreachable, retrying"
    read_ahead: float = 120.0  # settings.SENDER_READ_AHEAD_SECONDS
    read_batch: int = 200  # settings.SENDER_READ_BATCH
    spacing: threading.Lock = field(default_factory=threading.Lock)
    # The link's calls in flight at the provider (max_in_flight of them): a pool thread takes
    # one before its call and gives it back after. The loop may hand a busy link HANDED_OVER
    # more texts than that, so a call that ends lets the next start at once, not when the loop
    # comes round.
    slots: threading.Semaphore = field(init=False)
    last_call: float = -math.inf  # when the previous call left (pool threads only)
    backlog: deque = field(default_factory=deque)  # prepared, still queued in the database
    # The last read of the queue found every ready text of this link (it has them in hand): it
    # is read again with the others every DISCOVER_EVERY, not every FILL_EVERY.
    drained: bool = False
    claimed: deque = field(default_factory=deque)  # sending in the database, not called yet
    claimed_once: bool = False  # (FIRST_CLAIM)

    def __post_init__(self) -> None:
        self.slots = threading.Semaphore(self.max_in_flight)

    @property
    def rate(self) -> float:
        return self.bucket.rate

    @property
    def backlog_target(self) -> int:
        """Texts kept prepared: the read-ahead window of its pace, at most one REDCap batch."""
        wanted = math.ceil(self.rate * self.read_ahead * READ_AHEAD_SHARE)
        return max(1, min(wanted, self.read_batch))

    def claim_size(self, *, crowded: bool = False) -> int:
        slow = min(MIN_CLAIM, math.floor(self.rate * CLAIM_MAX_AHEAD) + 1)
        if crowded and not self.claimed_once:
            slow = min(slow, FIRST_CLAIM)
        return max(1, slow, min(MAX_CLAIM, math.ceil(self.rate * CLAIM_AHEAD)))

    def room(self) -> int:
        """Texts to read now: up to the read-ahead target."""
        return self.backlog_target - len(self.backlog)

    def claimed_ahead(self) -> float:
        """Seconds until the texts claimed now have all had their turn."""
        return self.bucket.ahead(sum(p.count.segments for p in self.claimed) + 1)

    def stale(self, prepared, now: float, margin: float = 0.0) -> bool:
        """Its REDCap read would be older than the read-ahead limit (`margin` seconds on)."""
        return now + margin - prepared.read_at > self.read_ahead


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


def _count(report: SenderReport, status: str) -> None:
    if status == Message.Status.SENT:
        report.sent += 1
    elif status == Message.Status.QUEUED:
        report.retried += 1
    elif status == Message.Status.UNKNOWN:
        report.unknown += 1
    elif status == Message.Status.FAILED:
        report.failed += 1


def _ready_rows(shard: tuple[int, int] | None = None):
    """The ready messages with their participant (their projects and rules: _with_projects)."""
    return ready_texts(shard).select_related("participant")


def _with_projects(
    messages: list[Message], projects: dict[int, Project], rules: dict[int, MessageRule]
) -> list[Message]:
    """Give each message its project, with the provider link, account and REDCap instance that
    preparing and claiming read, and its rule: one query each for the projects and rules not
    in `projects` and `rules` yet, and one object per project and per rule (a read of hundreds
    of texts of a few rules builds a few, not one rule per text)."""
    missing = {m.project_id for m in messages} - set(projects)
    if missing:
        projects.update(
            Project.objects.select_related("provider_link", "account", "redcap_instance").in_bulk(
                missing
            )
        )
    missing = {m.rule_id for m in messages if m.rule_id is not None} - set(rules)
    if missing:
        rules.update(MessageRule.objects.in_bulk(missing))
    for message in messages:
        message.project = projects[message.project_id]
        if message.rule_id is not None:
            message.rule = rules[message.rule_id]
    return messages


def ready_count(shard: tuple[int, int] | None = None) -> int:
    return ready_texts(shard).count()


def ready_shards(count: int) -> list[int]:
    """The shards (of `count`) with texts ready now: one query, none for an unsharded site."""
    return [0] if count == 1 else sorted(oldest_ready_text_due_by_shard(count))


def orphaned_shards(count: int) -> list[int]:
    """The shards (of `count`) with texts ready now and no loop: their loop died and its lease
    ran out, or none was started. Two queries; none for an unsharded site."""
    if count == 1:
        return []
    held = shards.shards_held(count)
    return [shard for shard in ready_shards(count) if shard not in held]


def _sender_task() -> None:
    """Ask the cluster for one more sender loop (it takes a free shard, or returns at once)."""
    from django_q.tasks import async_task

    async_task("messaging.tasks.send_queued", task_name="sender")


def run(*, max_seconds: float | None = None, batch_size: int = 200) -> SenderReport:
    """Send what is due until the queue is empty or `max_seconds` pass. One loop per shard
    (SENDER_SHARDS; docs/sending.md, "Shards"): it serves the links of the shard it took."""
    owner = uuid.uuid4().hex
    report = SenderReport()
    count = shards.shard_count()
    shard = shards.shard_acquire(owner, count, ready=ready_shards(count))
    if shard is None:
        return report
    name = shards.lease_name(shard, count)
    max_seconds = settings.SENDER_MAX_SECONDS if max_seconds is None else max_seconds
    loop = _Loop(
        owner,
        report,
        threads=settings.SENDER_THREADS,
        batch_size=batch_size,
        shard=(shard, count),
    )
    orderly = False
    # The objects alive now (Django, the app, earlier tasks' leftovers) are left out of the
    # collector's full passes while the loop runs: one such pass over the whole heap held the
    # loop ~0.1 s while a send to many links was starting (docs/sending.md, "Start-up").
    # unfreeze() hands them back: garbage among them is collected later as usual.
    gc.freeze()
    try:
        loop.run(deadline=time.monotonic() + max_seconds)
        orderly = True
    except Exception:
        orderly = True  # a bug or a database error: still record what came back
        raise
    finally:
        # Not after a BaseException (the worker is being killed): a dead worker records
        # nothing, and the sweep then finds its rows (that is what it is for).
        try:
            loop.close(orderly=orderly)
        finally:
            gc.unfreeze()
            shards.lease_release(owner, name)
    # More for this loop's shard, or a shard whose loop died while this one ran: one more run.
    report.more_work = (
        any(s.backlog for s in loop.links.values())
        or ready_count(loop.shard) > 0
        or bool(orphaned_shards(count))
    )
    return report


class _Loop:
    def __init__(
        self,
        owner: str,
        report: SenderReport,
        *,
        threads: int,
        batch_size: int,
        shard: tuple[int, int] = (0, 1),
    ):
        self.owner = owner
        self.shard = shard
        self.lease = shards.lease_name(*shard)
        self.report = report
        self.batch_size = batch_size
        self.threads = threads
        self.pool = _started_pool(threads, "sms") if threads else None
        # REDCap exports at release run here, not on the loop's thread: a slow REDCap holds up
        # neither the pace of calls already claimed nor the other links (nor the lease).
        self.redcap_pool = _started_pool(REDCAP_THREADS, "redcap") if threads else None
        # Per link: messages read from the queue whose REDCap data is being fetched (still
        # queued in the database; prepared when the data is in).
        self.fetching: dict[int, tuple[list[Message], release.ReleaseData, Future]] = {}
        self.results: queue.SimpleQueue = queue.SimpleQueue()
        # Accepted by the provider, not recorded yet: (message, result, when it came back).
        self.accepted: list[tuple[Message, object, datetime.datetime]] = []
        self.accepted_since = math.inf  # time.monotonic() when the oldest came back
        self.links: dict[int, LinkState] = {}
        self.in_flight = 0
        self.last_fill = -math.inf
        self.quiet = False  # the last read of the queue found nothing, and nothing happened since
        self.more_ready = False  # the last fill left ready texts of links not seen yet unread
        self.last_renew = time.monotonic()
        self.kicked: set[int] = set()  # the orphaned shards a task was asked for last time

    # --- the loop ------------------------------------------------------------------------------
    def run(self, *, deadline: float) -> None:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if now - self.last_renew >= shards.RENEW_EVERY:
                if not shards.lease_renew(self.owner, self.lease):
                    logger.warning("The sender lost its lease; stopping.")
                    return
                self.last_renew = now
                self._kick_orphans()
            self._collect()
            if not self.in_flight and not self._pending():
                if not self.quiet:
                    self._fill()  # (the queue was not read since the last change)
                if self.quiet:
                    return  # nothing in hand, and a read since the last change found nothing
            elif self._fill_due(now):
                self._fill()
            self._claim()
            started = self._start()
            recorded = self._record(self._drain(timeout=0))
            if not (started or recorded):
                self._record(self._drain(timeout=self._next_wake()))
            self._record_accepted()

    def _kick_orphans(self) -> None:
        """A shard with texts and no loop (its loop died and its lease ran out) gets a loop now,
        not at the dispatcher's next run: at each renewal, one task is asked for each time the
        set of such shards grows (docs/sending.md, "Shards")."""
        if self.shard[1] == 1 or Conf.SYNC:
            return  # (sync: no cluster, as in the tests; the task would run inside this loop)
        orphans = set(orphaned_shards(self.shard[1]))
        if orphans - self.kicked:
            logger.info("Sender shard(s) %s have texts and no loop; asking for one.", orphans)
            _sender_task()
        self.kicked = orphans

    def close(self, *, orderly: bool) -> None:
        if self.redcap_pool is not None:
            # Texts waiting for REDCap are still queued in the database: nothing to give back.
            self.redcap_pool.shutdown(wait=False, cancel_futures=True)
            self.fetching.clear()
        if self.pool is not None:
            if not orderly:
                self.pool.shutdown(wait=False, cancel_futures=True)
                return
            self.pool.shutdown(wait=True)  # the calls in flight finish (the gateway has timeouts)
        if orderly:
            self._record(self._drain(timeout=0))  # what came back (or was called inline)
            self._record_accepted(now=True)
            claimed = [p for s in self.links.values() for p in s.claimed]
            for state in self.links.values():
                state.claimed.clear()
            claim.unclaim(claimed)

    def _pending(self) -> bool:
        return bool(self.fetching) or any(s.backlog or s.claimed for s in self.links.values())

    # --- fill: read the queue, check and render -------------------------------------------
    def _fill_due(self, now: float) -> bool:
        since = now - self.last_fill
        if since >= DISCOVER_EVERY:
            return True  # texts for a link not seen yet
        return since >= FILL_EVERY and (
            self.more_ready
            or any(
                not s.paused
                and not s.drained
                and pk not in self.fetching
                and len(s.backlog) <= s.backlog_target // 2
                for pk, s in self.links.items()
            )
        )

    def _fill(self) -> None:
        """Load the next ready messages into per-link backlogs, prepared (eligible, rendered).

        A read asks for what the links have room for (and a few rows for links not seen yet); a
        link with enough in hand is left out. When a read comes back full, the queue is read
        again without the links that are full now: the oldest texts of one long queue never hide
        another link's texts (no head-of-line blocking).
        """
        self.last_fill = time.monotonic()
        skip = {
            pk for pk, s in self.links.items() if s.paused or len(s.backlog) >= s.backlog_target
        }
        skip |= set(self.fetching)  # one REDCap fetch per link at a time
        # What the links read again have in hand (the links left out are left out whole).
        in_hand = [
            p.message.pk
            for pk, s in self.links.items()
            if pk not in skip
            for p in (*s.backlog, *s.claimed)
        ]
        room: dict[int, int] = {}
        projects: dict[int, Project] = {}
        rules: dict[int, MessageRule] = {}
        self.quiet = True
        after = Q()  # each read goes on after the last row of the one before (same order)
        for _ in range(MAX_READS):
            # Read what the known links have room for, and a few rows for links not seen yet.
            wanted = sum(room.get(pk, s.room()) for pk, s in self.links.items() if pk not in skip)
            limit = min(self.batch_size, wanted + DISCOVER_ROWS)
            rows = _with_projects(
                list(
                    _ready_rows(self.shard)
                    .filter(after)
                    .exclude(project__provider_link__in=skip)
                    .exclude(pk__in=in_hand)
                    .order_by("not_before", "id")[:limit]
                ),
                projects,
                rules,
            )
            if rows:
                last = rows[-1]
                after = Q(not_before__gt=last.not_before) | Q(
                    not_before=last.not_before, id__gt=last.pk
                )
            self.quiet = self.quiet and not rows
            crowded = set()
            batch: list[Message] = []
            for message in rows:
                link = message.project.provider_link
                if link.pk not in room:
                    state = self._state(link)
                    room[link.pk] = state.room()
                # A link whose REDCap fetch went out with an earlier read of this fill: the
                # rest of its texts wait for the next fill (one fetch per link at a time).
                if room[link.pk] > 0 and link.pk not in self.fetching:
                    room[link.pk] -= 1
                    batch.append(message)
                else:
                    crowded.add(link.pk)
            # REDCap is asked for this read's texts now, while the queue is read on.
            self._plan(batch)
            if len(rows) < limit:
                self.more_ready = False
                for pk, state in self.links.items():
                    # This read returned every ready text of the links it read: those that
                    # had room for them all have every one in hand.
                    state.drained = pk not in skip and pk not in crowded
                break  # every ready text (of the links not left out) was seen
            skip |= crowded  # read again: without the links that are full now, and with the
            # room of the links this read found
        else:
            self.more_ready = True  # read again soon (FILL_EVERY): links not seen yet may wait
            for state in self.links.values():
                state.drained = False

    def _plan(self, batch: list[Message]) -> None:
        """What a read's texts need from REDCap: one fetch per link, on a REDCap thread (the
        texts are prepared when it is in: _collect); texts that need nothing are prepared now."""
        if not batch:
            return
        project_ids = {m.project_id for m in batch}
        mappings = {
            m.project_id: m for m in FieldMapping.objects.filter(project_id__in=project_ids)
        }
        redcap = release.ReleaseData.for_batch(batch, mappings)
        # The REDCap tokens of the projects whose texts ask REDCap: one query, not one each.
        tokens = {
            link.project_id: link
            for link in RedcapLink.objects.filter(
                project_id__in=[pk for pk, data in redcap.items() if data.needed]
            )
        }
        now_ready = []
        for message in batch:
            data = redcap[message.project_id]
            if self.redcap_pool is None or not data.needed:
                now_ready.append(message)  # (inline: the REDCap calls are made as it is prepared)
                continue
            link_pk = message.project.provider_link.pk
            if link_pk not in self.fetching:
                link = tokens.get(message.project_id)  # (none: connect says so)
                data.connect(token=None if link is None else link.token)  # (on this thread)
                future = self.redcap_pool.submit(self._fetch, data)
                self.fetching[link_pk] = ([], data, future)
            self.fetching[link_pk][0].append(message)
        self._prepare(now_ready, redcap)

    def _fetch(self, data: release.ReleaseData) -> None:
        """On a REDCap thread: what a link's texts need from REDCap (HTTP only, no database)."""
        try:
            data.fetch()
        finally:
            self.results.put(None)  # wake the loop

    def _collect(self) -> None:
        """Prepare the texts whose REDCap data came in. They are checked again first: REDCap may
        have taken seconds, and meanwhile a text may have been cancelled, its rule, project or
        link paused (still ready: one light query), and when the fetch took longer than
        RECHECK_AFTER its participant withdrawn or renumbered (the participants read again: one
        query), for every fetch that is done together. (The last gate checks consent,
        withdrawal and opt-outs again at the call, whatever this found.)"""
        done = [pk for pk, (_, _, future) in self.fetching.items() if future.done()]
        if not done:
            return
        self.quiet = False
        arrived = []
        for link_pk in done:
            messages, data, future = self.fetching.pop(link_pk)
            if not self.links[link_pk].paused:  # paused: still queued; they go when resumed
                arrived.append((messages, data, future))
        if not arrived:
            return
        wanted = [m.pk for messages, _, _ in arrived for m in messages]
        still = set(ready_texts(self.shard).filter(pk__in=wanted).values_list("pk", flat=True))
        now = time.monotonic()
        people = Participant.objects.in_bulk(
            {
                m.participant_id
                for messages, data, _ in arrived
                if now - data.planned_at > RECHECK_AFTER
                for m in messages
                if m.pk in still
            }
        )
        ready, redcap, answering = [], {}, []
        for messages, data, future in arrived:
            messages = [m for m in messages if m.pk in still]
            if now - data.planned_at > RECHECK_AFTER:
                messages = [m for m in messages if m.participant_id in people]
                for message in messages:
                    message.participant = people[message.participant_id]
            error = future.exception()
            if error is not None:
                logger.error(
                    "REDCap data for %d messages could not be fetched; retrying later.",
                    len(messages),
                    exc_info=error,
                )
                later = timezone.now() + PREPARE_RETRY
                for message in messages:
                    release.defer(message, later, "It could not be prepared; retrying.")
                self.report.skipped_or_deferred += len(messages)
                continue
            failed = data.failure()
            if failed is not None:  # shown to the team; the texts wait (prepare defers them)
                outbox.redcap_failing(project=data.project, error=failed, now=timezone.now())
            else:
                answering.append(data.project.pk)
            ready += messages
            redcap[data.project.pk] = data
        outbox.redcap_answering(project_ids=answering)
        self._prepare(ready, redcap)

    def _prepare(self, messages: list[Message], redcap: dict) -> None:
        """Check and render (release.prepare) into the links' backlogs."""
        if not messages:
            return
        now = timezone.now()
        # Texts prepared earlier and still waiting in a backlog count as sends (stop after N).
        backlog = [p.message for s in self.links.values() for p in s.backlog]
        sent_counts = release.sends_so_far(messages, pending=backlog)
        suppressed = release.suppressed_fingerprints(messages)
        surveying = conversations.surveying_fingerprints(messages)
        for message in messages:
            data = redcap[message.project_id]
            try:
                prepared = release.prepare(
                    message,
                    now=now,
                    redcap=redcap[message.project_id],
                    sent_counts=sent_counts,
                    suppressed=suppressed,
                    surveying=surveying,
                )
            except Exception:  # noqa: BLE001 - one bad row must not stop every other text
                logger.exception("Message %s could not be prepared; retrying later.", message.pk)
                release.defer(message, now + PREPARE_RETRY, "It could not be prepared; retrying.")
                prepared = None
            if prepared is None:
                self.report.skipped_or_deferred += 1
                continue
            # (Nothing read from REDCap: the moment it was checked and rendered.)
            prepared.read_at = data.read_at if data.read_at is not None else time.monotonic()
            self.links[message.project.provider_link.pk].backlog.append(prepared)

    def _state(self, link) -> LinkState:
        state = self.links.get(link.pk)
        if state is None:
            rate = float(link.rate_per_second)
            state = LinkState(
                link=link,
                gateway=get_gateway(link),
                bucket=TokenBucket(rate),
                max_in_flight=_in_flight_cap(rate),
                callback_url=record.status_callback_url(link),
                unreachable=link.unreachable_since is not None,
                read_ahead=float(settings.SENDER_READ_AHEAD_SECONDS),
                read_batch=settings.SENDER_READ_BATCH,
            )
            self.links[link.pk] = state
            # Build the HTTP client now: its first use would otherwise hold the first calls
            # back together (~0.1 s), and they would reach the provider as one burst.
            getattr(state.gateway, "client", None)
        return state

    # --- claim: a few at a time, just ahead of their turn, many links together -------------
    def _claim(self) -> None:
        """Claim for every link whose claimed texts run out within CLAIM_AHEAD, and in the same
        transaction for the links whose texts run out within CLAIM_NEAR after that."""
        now = time.monotonic()
        due = False
        wanting: list[LinkState] = []
        for state in self.links.values():
            if state.paused or not state.backlog:
                continue
            ahead = state.claimed_ahead()
            if ahead > CLAIM_AHEAD + CLAIM_NEAR:
                continue  # enough claimed; (backing off after a 429: nothing held meanwhile)
            due = due or ahead <= CLAIM_AHEAD
            wanting.append(state)
        if not due:
            return
        groups: list[tuple[LinkState, list[release.Prepared]]] = []
        crowded = len(wanting) > CROWD
        for state in wanting:
            batch = []
            size = state.claim_size(crowded=crowded)
            while state.backlog and len(batch) < size:
                prepared = state.backlog.popleft()
                if state.stale(prepared, now, STALE_MARGIN):
                    self.quiet = False  # still queued: the next fill reads it again
                    continue
                batch.append(prepared)
            if batch:
                groups.append((state, batch))
        if not groups:
            return
        # The gateway that carries them (the override's fake, when one is set): the phone
        # simulator shows the texts the sandbox carried, whatever the link's provider.
        answers = claim.claim_batches([(batch, s.gateway.slug) for s, batch in groups])
        for (state, _), (claimed, held) in zip(groups, answers, strict=True):
            state.claimed.extend(claimed)
            state.claimed_once = True
            self.report.held += len(held)
        self.quiet = False

    # --- start: paced by each link's bucket ------------------------------------------------
    def _start(self) -> bool:
        starting: list[tuple[LinkState, release.Prepared, float]] = []
        stale: list[release.Prepared] = []
        # Each link with work gets a fair share of the pool: a slow provider cannot take every
        # thread while another link's texts wait.
        busy = sum(1 for s in self.links.values() if s.claimed or s.in_flight)
        share = max(1, self.threads // max(1, busy))
        # Without a pool (SENDER_THREADS = 0, as in the tests) the same steps run with one call
        # at a time, made on this thread when its turn has come.
        capacity = self.threads or 1
        ahead = START_AHEAD if self.pool is not None else 0.0
        for state in self.links.values():
            # With a pool, a busy link is handed a few texts more than it has call slots
            # (HANDED_OVER; see LinkState.slots).
            handed = state.max_in_flight
            if self.pool is not None:
                handed += int(state.max_in_flight * HANDED_OVER)
            while (
                state.claimed
                and state.in_flight < min(handed, share)
                and self.in_flight + len(starting) < capacity
            ):
                cost = state.claimed[0].count.segments
                wait = state.bucket.wait(cost)
                if wait > ahead:
                    break
                if state.stale(state.claimed[0], time.monotonic(), wait):
                    stale.append(state.claimed.popleft())  # read it again first
                    continue
                state.bucket.take(cost)
                prepared = state.claimed.popleft()
                state.in_flight += 1
                starting.append((state, prepared, time.monotonic() + wait))
        if stale:  # held claimed past the read-ahead limit (a long back-off): read again
            claim.unclaim(stale)
            self.quiet = False
        if not starting:
            return bool(stale)
        self.quiet = False
        try:
            mine = {m.pk for m in claim.attempts_start([p.message for _, p, _ in starting])}
        except BaseException:
            for state, prepared, _ in reversed(starting):  # nothing was called: still claimed
                state.in_flight -= 1
                state.claimed.appendleft(prepared)
            raise
        clock_now, wall_now = time.monotonic(), timezone.now()
        for state, prepared, at in starting:
            if prepared.message.pk not in mine:  # refused by the last gate, or not ours
                state.in_flight -= 1
                continue
            closes = prepared.message.window_closes_at
            # The sending hours' close on this thread's clock: the pool thread calls before it
            # or not at all (a text handed over just before the close must not leave after it).
            closes_at = None if closes is None else clock_now + (closes - wall_now).total_seconds()
            self.in_flight += 1
            if self.pool is not None:
                self.pool.submit(self._call, state, prepared, at, closes_at)
            else:
                self._call(state, prepared, at, closes_at)
        return True

    @sensitive_variables()
    def _call(
        self, state: LinkState, prepared: release.Prepared, at: float, closes_at: float | None
    ) -> None:
        """On a pool thread (or on the loop's own, without a pool): wait for the text's turn and
        for one of the link's call slots (SLOT_WAIT at most: else NotCalled(late)), then THE
        provider call, and nothing else (no database); the answer goes to `results`, recorded
        by `_record`. Not after `closes_at` (the participant's sending hours close: the text
        goes back to waiting, NotCalled). A crash report shows no value of this frame or any
        below it (the number, the provider's credentials)."""
        _sleep_until(at)
        if not state.slots.acquire(timeout=SLOT_WAIT):
            self.results.put((state, prepared, None, NotCalled(late=True)))
            return
        try:
            self._call_in_slot(state, prepared, closes_at)
        finally:
            state.slots.release()

    @sensitive_variables()
    def _call_in_slot(
        self, state: LinkState, prepared: release.Prepared, closes_at: float | None
    ) -> None:
        message = prepared.message
        gap = MIN_SPACING * prepared.count.segments / state.rate
        with state.spacing:
            at = max(time.monotonic(), state.last_call + gap)
            state.last_call = at
        _sleep_until(at)
        if closes_at is not None and time.monotonic() >= closes_at - CLOSE_MARGIN:
            self.results.put((state, prepared, None, NotCalled()))
            return
        try:
            result = state.gateway.send(
                to=message.participant.phone, body=message.body, status_callback=state.callback_url
            )
            prepared.accepted_at = timezone.now()  # recorded a moment later (RECORD_WAIT)
        except Exception as exc:  # GatewayError, or a bug (logged, and left to the sweep)
            self.results.put((state, prepared, None, exc))
        except BaseException as exc:
            if self.pool is None:
                raise  # the worker itself is being stopped: the sweep finds the row
            self.results.put((state, prepared, None, exc))  # the loop must still hear of it
        else:
            self.results.put((state, prepared, result, None))

    # --- record ----------------------------------------------------------------------------
    def _drain(self, *, timeout: float) -> list:
        items = []
        try:
            first = self.results.get(timeout=timeout) if timeout else self.results.get_nowait()
            items.append(first)
            while True:
                items.append(self.results.get_nowait())
        except queue.Empty:
            pass
        return items

    def _record(self, items: list) -> bool:
        if not items:
            return False
        self.quiet = False
        woken = len(items)
        items = [item for item in items if item is not None]  # None: a REDCap fetch is done
        if not items:
            return bool(woken)
        successes, not_called, late = [], [], []
        for state, prepared, result, exc in items:
            state.in_flight -= 1
            self.in_flight -= 1
            if result is not None:
                successes.append((prepared.message, result, prepared.accepted_at))
            elif isinstance(exc, NotCalled):
                (late if exc.late else not_called).append(prepared.message)
            elif not isinstance(exc, GatewayError):
                logger.error(
                    "Sending message %s failed unexpectedly; the sweep will reconcile it.",
                    prepared.message.pk,
                    exc_info=exc,
                )
        if successes and not self.accepted:
            self.accepted_since = time.monotonic()
        self.accepted += successes
        for state in {id(s): s for s, _, result, _ in items if result is not None}.values():
            self._reachable(state)
        self.report.skipped_or_deferred += claim.attempts_not_called(not_called)
        claim.attempts_not_called(late, hours_closed=False)  # queued again, read afresh
        for state, prepared, result, exc in items:
            if result is None and isinstance(exc, GatewayError):
                outcome = record.record_failure(prepared.message, exc, state.link)
                self._after(state, outcome.status, outcome.reason, outcome.retry_after)
        return True

    def _record_accepted(self, *, now: bool = False) -> None:
        """Record the texts the provider accepted, together: once the oldest has waited
        RECORD_WAIT or RECORD_BATCH are waiting, or `now` (the loop stops)."""
        if not self.accepted or not (
            now
            or len(self.accepted) >= RECORD_BATCH
            or time.monotonic() - self.accepted_since >= RECORD_WAIT
        ):
            return
        accepted, self.accepted, self.accepted_since = self.accepted, [], math.inf
        record.record_successes(
            [(message, result) for message, result, _ in accepted],
            accepted_at={message.pk: at for message, _, at in accepted},
        )
        self.report.sent += len(accepted)

    def _reachable(self, state: LinkState) -> None:
        if state.unreachable:  # the provider answers again
            state.unreachable = False
            provider_links.provider_link_reachable(link_id=state.link.pk)

    def _after(self, state: LinkState, status: str, reason, retry_after) -> None:
        _count(self.report, status)
        if status == Message.Status.SENT:
            self._reachable(state)
        elif reason is not None and reason.safe_to_retry:
            state.unreachable = True
        if reason in (Reason.RATE_LIMITED, Reason.QUEUE_FULL):
            pause = RATE_LIMITED_PAUSE if reason == Reason.RATE_LIMITED else QUEUE_FULL_PAUSE
            state.bucket.back_off(retry_after or pause)
            if state.bucket.wait(1) > 2:  # a long pause: do not keep texts claimed meanwhile
                claimed, state.claimed = list(state.claimed), deque()
                claim.unclaim(claimed)
        elif reason == Reason.BAD_CREDENTIALS and not state.paused:
            state.paused = True  # the link is paused now: give back what it holds
            state.backlog.clear()
            claimed, state.claimed = list(state.claimed), deque()
            claim.unclaim(claimed)

    def _next_wake(self) -> float:
        now = time.monotonic()
        waits = [
            max(0.0, FILL_EVERY - (now - self.last_fill)),
            self.accepted_since + RECORD_WAIT - now,
        ]
        if self.pool is None or self.in_flight < self.threads:
            for state in self.links.values():
                if state.claimed and state.in_flight < state.max_in_flight:
                    # Wake when the next text is half START_AHEAD from its turn, and start every
                    # text due within START_AHEAD together: one attempt INSERT for a few texts.
                    cost = state.claimed[0].count.segments
                    waits.append(state.bucket.wait(cost) - START_AHEAD / 2)
                if state.backlog and not state.paused:
                    waits.append(max(0.0, state.claimed_ahead() - CLAIM_AHEAD))
        return min(max(min(waits), 0.0005), 0.1)


class NotCalled(Exception):
    """A pool thread did not make the call: the participant's sending hours closed first, or
    (`late`) no call of the link ended within SLOT_WAIT to make room for it."""

    def __init__(self, *, late: bool = False) -> None:
        super().__init__()
        self.late = late


def _started_pool(threads: int, name: str) -> ThreadPoolExecutor:
    """A thread pool whose threads are all started now, while nothing else runs. (Started on
    first use instead, each new thread would make the loop wait for it while the others hold
    the interpreter lock: ~20 ms a thread, seconds at the start of a busy send.)"""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
    everyone = threading.Barrier(threads + 1)
    for _ in range(threads):  # each waits for all: a new thread for each
        pool.submit(everyone.wait, 10)
    everyone.wait(10)
    return pool


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def run_and_reschedule() -> SenderReport:
    """The task body: run, and queue another run if work remains. (django-q2's worker closes
    stale database connections around every task.)"""
    report = run()
    if report.more_work:
        _sender_task()
    return report
