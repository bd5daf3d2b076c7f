"""Reading REDCap ahead (docs/sending.md, "Reading REDCap ahead"): a slow link's next texts are
read from REDCap in one export, not one per text, and no text pipes a read older than
SENDER_READ_AHEAD_SECONDS when it leaves.

Real sender, real HTTP: the Twilio gateway and the record export go to the loopback
FakeProvider (tests/fakes/provider.py), which notes when each export arrived.
"""

import datetime
import threading
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from messaging import sender
from messaging.models import Message
from tests.messaging.test_reliability import (  # noqa: F401 - fixtures
    outbox_send_now_without_kick,
    provider,
    redcap,
    statuses,
    study,
    threaded_sender,
)

pytestmark = pytest.mark.django_db(transaction=True)
Status = Message.Status


def sent_in_order(project) -> list[Message]:
    return list(
        Message.objects.filter(project=project, status=Status.SENT)
        .select_related("participant")
        .order_by("sent_at")
    )


def test_a_slow_link_reads_its_twenty_texts_from_redcap_in_one_export(
    study,  # noqa: F811
    provider,  # noqa: F811
    redcap,  # noqa: F811
):
    fake = provider()
    s = study(20, rate=1)  # a US long code: one text a second
    outbox_send_now_without_kick(s)

    sender.run(max_seconds=40)

    assert statuses(s.project) == {Status.SENT: 20}
    assert len(redcap.redcap_calls) <= 2, redcap.redcap_calls  # not one export per text
    assert sum(len(c["records"]) for c in redcap.redcap_calls) == 20
    arrived = sorted(at for at, _ in fake.calls)  # at the provider
    # Its own pace: 19 gaps of a second, not faster (and not much slower).
    assert 18.5 <= arrived[-1] - arrived[0] <= 20.5
    stats = fake.stats()
    assert stats["duplicates"] == 0 and stats["accepted"] == 20


@pytest.mark.slow
def test_thirty_slow_links_read_redcap_once_or_twice_each_and_keep_their_pace(
    study,  # noqa: F811
    provider,  # noqa: F811
    redcap,  # noqa: F811
):
    fake = provider()
    links = [study(20, rate=1) for _ in range(30)]
    for s in links:
        outbox_send_now_without_kick(s)

    started = time.monotonic()
    with CaptureQueriesContext(connection) as queries:
        sender.run(max_seconds=60)
    elapsed = time.monotonic() - started

    assert {status for s in links for status in statuses(s.project)} == {Status.SENT}
    assert fake.stats()["accepted"] == 600 and fake.stats()["duplicates"] == 0
    assert len(redcap.redcap_calls) <= 60, len(redcap.redcap_calls)  # was ~446
    # 19 s of pace each, side by side: the 30 links together take about as long as one (36 s
    # before they were read ahead; the margin is for a busy test machine).
    assert elapsed < 27, elapsed
    for s in links:
        numbers = {p.phone for p in s.participants}
        arrived = sorted(at for at, to in fake.calls if to in numbers)  # at the provider
        gaps = [b - a for a, b in zip(arrived, arrived[1:], strict=False)]
        assert min(gaps) >= 0.7, gaps  # never faster than its pace (MIN_SPACING)
    # The claims and attempt rows of the 30 links are shared: the loop's own queries per text
    # stay low (the pool threads' answers are recorded on the loop's connection too).
    assert len(queries) / 600 <= 6, len(queries) / 600


def test_a_read_older_than_the_limit_is_done_again_and_the_text_pipes_the_new_value(
    study,  # noqa: F811
    provider,  # noqa: F811
    redcap,  # noqa: F811
    settings,
    monkeypatch,
):
    provider()
    settings.SENDER_READ_AHEAD_SECONDS = 2
    # Keep more prepared than the limit allows (a link held back, say): the texts whose read
    # has grown too old before their turn must be read again, not sent with the old value.
    monkeypatch.setattr(sender, "READ_AHEAD_SHARE", 4.0)
    monkeypatch.setattr(sender, "STALE_MARGIN", 0.0)
    s = study(7, rate=1)
    outbox_send_now_without_kick(s)
    changed = {}

    def rename_after_the_first_text() -> None:
        while not Message.objects.filter(project=s.project, status=Status.SENT).exists():
            time.sleep(0.05)
        for person in s.participants:
            redcap.redcap_records[person.record_id] = {"name": "Renamed"}
        changed["at"] = datetime.datetime.now(datetime.UTC)
        connection.close()

    renamer = threading.Thread(target=rename_after_the_first_text)
    renamer.start()
    sender.run(max_seconds=30)
    renamer.join(10)

    sent = sent_in_order(s.project)
    assert len(sent) == 7
    assert len(redcap.redcap_calls) >= 2  # read again, not all from the first export
    for message in sent:
        record = message.participant.record_id
        sent_ts = message.sent_at.timestamp()
        calls = redcap.redcap_calls
        reads = [c["at"] for c in calls if record in c["records"] and c["at"] < sent_ts]
        # What it pipes was read at most the limit (and the call's own latency) before it left.
        assert sent_ts - max(reads) <= 2 + 0.5, (record, sent_ts - max(reads))
        if message.sent_at > changed["at"] + datetime.timedelta(seconds=2.5):
            # Renamed in REDCap before its read-ahead window: the new name is what it says.
            assert message.body.startswith("Hi Renamed,"), message.body
    assert sent[0].body.startswith("Hi name ")  # read before the change
    assert any(m.body.startswith("Hi Renamed,") for m in sent)
