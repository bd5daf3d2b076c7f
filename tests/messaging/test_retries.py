"""A short blip does not fail a send (docs/sending.md, "Retries"): texts that never reached the
provider are retried with capped, jittered backoff for SENDER_RETRY_MINUTES, the link shows
"provider unreachable, retrying", and only after the period does a text fail, the owners told
once. A text the provider confirms it never received goes back to the queue by itself, once.

The inline sender and the locmem gateway; time moves by editing the rows' times (the first
attempt's start), never by sleeping.
"""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.services.quota import usage_period_current
from messaging.gateways import Reason, locmem
from messaging.models import Attempt, Message
from messaging.services import outbox, record, sweep
from projects.models import ProviderLink
from tests.factories import MessageRuleFactory
from tests.messaging.test_outbox_and_sending import (  # noqa: F401 - fixtures
    people,
    project,
    redcap,
    run_sender,
)

pytestmark = pytest.mark.django_db
Status = Message.Status


def due_now() -> None:
    """The backoff has passed."""
    Message.objects.filter(status=Status.QUEUED).update(not_before=timezone.now())


def link_of(study) -> ProviderLink:
    return ProviderLink.objects.get(project=study)


@pytest.mark.parametrize("reason", [Reason.UNREACHABLE, Reason.RATE_LIMITED])
def test_a_blip_of_many_refusals_does_not_fail_a_text(
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
    reason,
    monkeypatch,
):
    delays = []
    real_backoff = record.backoff_delay

    def backoff(*args, **kwargs):
        delays.append(real_backoff(*args, **kwargs))
        return 30.0  # (not within this sender run: the test moves time itself)

    monkeypatch.setattr(record, "backoff_delay", backoff)
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    # Twelve refusals in a row: more than the old five tries, and no Retry-After.
    locmem.fail_next(reason, "connection refused", times=12)
    for _ in range(12):
        run_sender()
        message = Message.objects.get()
        assert message.status == Status.QUEUED  # waits for its backoff, never failed
        assert message.units == 0  # its quota given back meanwhile
        due_now()
    assert link_of(project).unreachable_since is not None
    # Capped, jittered backoff: growing, random, never more than a minute.
    assert len(delays) == 12 and max(delays) <= record.RETRY_CAP
    assert len(set(delays)) == 12
    run_sender()

    message = Message.objects.get()
    assert message.status == Status.SENT
    assert message.attempts == 13
    assert [m.body for m in locmem.outbox] == [message.body]  # once
    assert link_of(project).unreachable_since is None  # it answers again
    assert usage_period_current(account=project.account).used == 1


@pytest.fixture
def slow_backoff(monkeypatch):
    """A retry waits half a minute (the real jitter may be short enough for the same sender run
    to send the text again, which is right but not what these tests look at)."""
    monkeypatch.setattr(record, "backoff_delay", lambda *args, **kwargs: 30.0)


def test_the_link_page_says_the_provider_is_unreachable_and_retrying(
    as_user,
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
    slow_backoff,
):
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    locmem.fail_next(Reason.UNREACHABLE, "connection refused")
    run_sender()

    page = as_user(researcher).get(reverse("project-provider", args=[project.pk])).content.decode()
    assert "Provider unreachable, retrying" in page
    overview = as_user(researcher).get(reverse("rule-list", args=[project.pk])).content.decode()
    assert "Provider unreachable, retrying" in overview


def test_after_the_retry_period_a_text_fails_and_the_owners_are_told_once(
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
    mailoutbox,
    settings,
    django_capture_on_commit_callbacks,
    slow_backoff,
):
    settings.SENDER_RETRY_MINUTES = 60
    rule = MessageRuleFactory(project=project)
    outbox.send_now(rule=rule, actor=researcher)
    locmem.fail_next(Reason.UNREACHABLE, "connection refused", times=3)
    run_sender()  # each text refused once
    assert set(Message.objects.values_list("status", flat=True)) == {Status.QUEUED}
    # An hour and a minute later, still refused.
    Attempt.objects.update(started_at=timezone.now() - datetime.timedelta(minutes=61))
    due_now()
    locmem.fail_next(Reason.UNREACHABLE, "connection refused", times=3)
    with django_capture_on_commit_callbacks(execute=True):
        run_sender()

    failed = Message.objects.filter(status=Status.FAILED)
    assert failed.count() == 3
    assert all("could not be reached for 60 minutes" in m.error for m in failed)
    assert locmem.outbox == []
    assert len(mailoutbox) == 1  # once, not once per text
    assert "could not reach" in mailoutbox[0].subject
    assert usage_period_current(account=project.account).used == 0


def test_a_text_the_provider_never_received_goes_back_to_the_queue_once(
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
):
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    locmem.fail_next(Reason.AMBIGUOUS, "read timeout")  # not accepted: the provider has none
    run_sender()
    message = Message.objects.get()
    assert message.status == Status.UNKNOWN
    start = timezone.now()

    # Too soon to trust the provider's listing: ask again later, send nothing.
    assert sweep.sweep(now=start + datetime.timedelta(minutes=5))["resent"] == 0
    assert sweep.sweep(now=start + datetime.timedelta(minutes=40))["resent"] == 1
    message.refresh_from_db()
    assert message.status == Status.QUEUED and "never received" in message.error
    due_now()
    run_sender()

    message.refresh_from_db()
    assert message.status == Status.SENT
    assert len(locmem.outbox) == 1
    assert usage_period_current(account=project.account).used == 1


def test_a_text_unconfirmed_twice_is_not_sent_a_third_time(
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
):
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    start = timezone.now()
    for minutes in (40, 80):
        locmem.fail_next(Reason.AMBIGUOUS, "read timeout")
        due_now()
        run_sender()
        sweep.sweep(now=start + datetime.timedelta(minutes=minutes))
    message = Message.objects.get()
    assert message.status == Status.FAILED
    assert "no record of this text" in message.error
    assert message.attempt_log.count() == 2
    assert locmem.outbox == []
    assert usage_period_current(account=project.account).used == 0
