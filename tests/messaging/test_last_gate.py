"""The last gate before the provider (docs/sending.md): STOP and the close of the sending hours
win every race with the real threaded sender.

The sender runs on its own thread with its pool of provider threads against the loopback fake
provider (tests/fakes/provider.py), which notes when each send request arrived. A STOP (or
the close of the hours) commits while texts are in flight; then the provider calls are counted
by the time they arrived, the attempt rows by the time they were written. Only a call already
handed to a pool thread may still leave after a STOP: at most START_AHEAD of the link's pace.
"""

import datetime
import math
import threading
import time
import zoneinfo

import pytest
from django.db import transaction
from django.utils import timezone

from messaging import sender
from messaging.models import Attempt, Message
from messaging.scheduling import local_to_utc
from messaging.services import optouts
from projects import crypto
from projects.models import Participant, Project
from tests.messaging.test_reliability import (  # noqa: F401, F811 - fixtures
    assert_quota_matches,
    outbox_send_now_without_kick,
    provider,
    race,
    redcap,
    statuses,
    study,
    threaded_sender,
)

pytestmark = pytest.mark.django_db(transaction=True)
Status = Message.Status


def sending_in_background(**kwargs) -> threading.Thread:
    running = threading.Thread(target=race, args=([lambda: sender.run(**kwargs)],))
    running.start()
    return running


def wait_for(fake, accepted: int, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while fake.stats()["accepted"] < accepted and time.monotonic() < deadline:
        time.sleep(0.005)
    assert fake.stats()["accepted"] >= accepted, fake.stats()


@pytest.mark.parametrize(("rate", "texts"), [(10, 30), (100, 300)])
def test_a_stop_mid_send_stops_every_later_call(study, provider, rate, texts):  # noqa: F811
    fake = provider()
    s = study(texts, rate=rate)
    outbox_send_now_without_kick(s)
    running = sending_in_background(max_seconds=30)
    wait_for(fake, texts // 10)

    # STOP, in one transaction (one commit moment), from the participants whose texts are in
    # flight (claimed by the sender, maybe handed to a pool thread) and the last ten in line.
    theirs = Message.objects.filter(project=s.project)
    in_flight = list(theirs.filter(status=Status.SENDING).values_list("participant_id", flat=True))
    last = list(
        theirs.filter(status=Status.QUEUED).order_by("-id").values_list("participant_id", flat=True)
    )[:10]
    with transaction.atomic():
        stopped = list(Participant.objects.filter(pk__in=in_flight + last))
        for participant in stopped:
            optouts.opt_out_record(participant=participant, source="keyword")
    committed = time.time()
    committed_at = timezone.now()
    running.join(timeout=60)
    assert not running.is_alive()

    numbers = {p.phone for p in stopped}
    ids = [p.pk for p in stopped]
    assert in_flight and len(last) == 10
    # No attempt was recorded after the STOP committed...
    late = Attempt.objects.filter(message__participant_id__in=ids, started_at__gt=committed_at)
    assert late.count() == 0
    # ...and only calls already handed to a pool thread still reached the provider.
    handed = math.ceil(sender.START_AHEAD * rate) + 1
    assert fake.calls_since(committed, numbers) <= handed
    # A stopped participant's text left before the STOP, or was cancelled; none waits. The last
    # in line were far from their turn: cancelled, every one.
    stopped_texts = Message.objects.filter(participant_id__in=ids)
    assert set(stopped_texts.values_list("status", flat=True)) <= {Status.SENT, Status.CANCELLED}
    assert set(stopped_texts.filter(participant_id__in=last).values_list("status", flat=True)) == {
        Status.CANCELLED
    }
    counts = statuses(s.project)
    assert set(counts) <= {Status.SENT, Status.CANCELLED}, counts
    assert counts[Status.SENT] == texts - counts[Status.CANCELLED]
    assert fake.stats()["duplicates"] == 0
    assert_quota_matches(s, units=counts[Status.SENT])  # the cancelled ones' quota released


def zone_at_midday() -> tuple[str, str]:
    """A fixed-offset zone where it is between 6 a.m. and 5 p.m. now, and the zone an hour east
    of it (Etc/GMT-N is UTC+N)."""
    hour = timezone.now().hour
    offset = next(h for h in range(-12, 13) if 6 <= (hour + h) % 24 < 17 and h < 13)
    east = offset + 1

    def name(h: int) -> str:
        return "Etc/GMT" if h == 0 else f"Etc/GMT{'-' if h > 0 else '+'}{abs(h)}"

    return name(offset), name(east)


def test_a_burst_with_the_sending_hours_closing_mid_send_starts_no_call_after_the_close(
    study,  # noqa: F811
    provider,  # noqa: F811
):
    fake = provider()
    here, east = zone_at_midday()
    s = study(0, rate=1000)
    # 7,500 texts; a fifth of the participants live an hour east, where the hours closed.
    people = []
    for i in range(7500):
        phone = f"+1{310 + i // 10000:03d}55{i % 10000:05d}"
        people.append(
            Participant(
                project=s.project,
                record_id=str(i + 1),
                phone_encrypted=crypto.encrypt(phone),
                phone_fingerprint=crypto.fingerprint(phone, purpose="phone"),
                phone_last4=phone[-4:],
                consented=True,
                time_zone=east if i % 5 == 0 else "",
            )
        )
    Participant.objects.bulk_create(people, batch_size=1000)
    tz = zoneinfo.ZoneInfo(here)

    def close_in(seconds: int) -> datetime.datetime:
        local_now = timezone.now().astimezone(tz)
        closes_local = (local_now + datetime.timedelta(seconds=seconds)).time()
        Project.objects.filter(pk=s.project.pk).update(
            time_zone=here,
            send_window_start=datetime.time(0, 0),
            send_window_end=closes_local,
            send_days=list(range(7)),
        )
        return local_to_utc(local_now.date(), closes_local, tz)

    # Open here (closed an hour east) while the 7,500 texts are written, however long that takes
    # on a busy machine; then the hours close 6 s into the send (the sender reads them as it goes).
    close_in(600)
    outbox_send_now_without_kick(s)
    close = close_in(6)

    sender.run(max_seconds=12)

    # Not one call after the close, and not one attempt recorded after it.
    assert fake.calls_since(close.timestamp()) == 0
    assert not Attempt.objects.filter(started_at__gte=close).exists()
    sent = Message.objects.filter(project=s.project, status=Status.SENT)
    assert sent.count() > 0  # it was sending when the hours closed
    assert not sent.filter(participant__time_zone=east).exists()  # closed there all along
    counts = statuses(s.project)
    assert set(counts) <= {Status.SENT, Status.QUEUED}, counts  # nothing left claimed
    # What was caught by the close waits for the next opening, with its quota released.
    caught = Message.objects.filter(project=s.project, status=Status.QUEUED, attempts=0)
    assert caught.exclude(error="").filter(not_before__gt=close).exists()
    assert not caught.filter(error__startswith="Waits until", not_before__lte=close).exists()
    assert fake.stats()["duplicates"] == 0
    assert_quota_matches(s, units=counts[Status.SENT])
