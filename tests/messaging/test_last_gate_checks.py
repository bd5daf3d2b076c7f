"""The last gate's checks one by one (docs/sending.md): a text claimed by the sender is not
called when, between the claim and the call, its participant withdrew or stopped consenting or
its project's sending hours were narrowed; each goes back (cancelled, or waiting for the next
opening) with its quota released."""

import pytest
from django.db import connection
from django.utils import timezone

from billing.services.quota import usage_period_current
from messaging import eligibility
from messaging.gateways import locmem
from messaging.models import Attempt, Message
from messaging.services import claim, outbox, release
from projects.models import Participant, Project
from tests.factories import MessageRuleFactory, ParticipantFactory
from tests.messaging.test_outbox_and_sending import (  # noqa: F401 - fixtures
    people,
    project,
    redcap,
    run_sender,
)
from tests.messaging.test_sending_hours import closed_days

pytestmark = pytest.mark.django_db
Status = Message.Status


@pytest.fixture
def claimed(project, people, researcher, monkeypatch):  # noqa: F811
    """One text, claimed by a sender (quota reserved), not yet called."""
    monkeypatch.setattr(outbox, "kick_sender", lambda: None)
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    message = Message.objects.select_related("project", "participant", "rule").get()
    prepared = release.prepare(
        message,
        now=timezone.now(),
        redcap=release.ReleaseData(project, None),
        sent_counts={},
        suppressed=set(),
    )
    [taken], _ = claim.claim_batch([prepared], provider="locmem")
    assert usage_period_current(account=project.account).used == 1
    return taken.message


@pytest.mark.parametrize(
    "change", [{"withdrawn": True}, {"consented": False}, {"redcap_opted_out": True}]
)
def test_a_claimed_text_is_cancelled_when_its_participant_can_no_longer_be_texted(claimed, change):
    Participant.objects.filter(pk=claimed.participant_id).update(**change)

    assert claim.attempts_start([claimed]) == []

    claimed.refresh_from_db()
    assert claimed.status == Status.CANCELLED
    assert "just before sending" in claimed.error
    assert not Attempt.objects.exists()
    assert usage_period_current(account=claimed.project.account).used == 0


def test_a_claimed_text_waits_when_an_administrator_narrowed_the_hours_since(claimed):
    Project.objects.filter(pk=claimed.project_id).update(send_days=closed_days())

    assert claim.attempts_start([claimed]) == []  # the hours it was read with are gone

    claimed.refresh_from_db()
    assert claimed.status == Status.QUEUED
    assert usage_period_current(account=claimed.project.account).used == 0
    run_sender()  # prepared afresh: it waits for the new hours
    claimed.refresh_from_db()
    assert claimed.status == Status.QUEUED
    assert claimed.error.startswith("Waits until")
    assert claimed.not_before > timezone.now()
    assert locmem.outbox == []


@pytest.mark.parametrize(
    "change",
    [
        {"send_window_start": "10:00"},
        {"send_window_end": "17:00"},
        {"time_zone": "America/Denver"},
        None,  # the participant's own zone
    ],
)
def test_the_gate_compares_each_part_of_the_hours_it_judged_by(claimed, change):
    """The gate's SQL is written once and completed per call (claim._gate_eligible): each of
    the hours' parts it compares is checked, on this engine, against a change in the database."""
    assert claim._gate_base(connection.vendor) is not None  # the fast path, not the fallback
    if change is None:
        Participant.objects.filter(pk=claimed.participant_id).update(time_zone="Asia/Tokyo")
    else:
        Project.objects.filter(pk=claimed.project_id).update(**change)

    assert claim.attempts_start([claimed]) == []

    claimed.refresh_from_db()
    assert claimed.status == Status.QUEUED and not Attempt.objects.exists()


def test_the_gate_lets_an_unchanged_text_through_with_its_attempt_row(claimed):
    assert [m.pk for m in claim.attempts_start([claimed])] == [claimed.pk]
    assert list(Attempt.objects.values_list("message_id", "outcome")) == [
        (claimed.pk, Attempt.Outcome.STARTED)
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"in_redcap": False},
        {"withdrawn": True},
        {"redcap_opted_out": True},
        {"consented": False},
        {"issue": Participant.Issue.NO_PHONE},
        {"number_invalid": True},
        {"phone_encrypted": ""},
        {},
    ],
    ids=lambda c: next(iter(c), "textable"),
)
def test_the_outbox_the_release_and_the_last_gate_agree_on_who_may_be_texted(change):
    """One definition (messaging.eligibility): the outbox's recipients, the release's check in
    Python and the last gate's query say the same of every participant."""
    participant = ParticipantFactory(**change)
    message = Message.objects.create(
        project=participant.project,
        participant=participant,
        kind="adhoc",
        occurrence="adhoc",
        dedup_key=f"adhoc:{participant.pk}",
        adhoc_body="Hi",
        due_at=timezone.now(),
        not_before=timezone.now(),
    )
    in_outbox = outbox.textable_participants(project=participant.project).filter(pk=participant.pk)
    at_the_gate = Message.objects.filter(eligibility.TEXTABLE_NOW, pk=message.pk)
    reason = eligibility.untextable_reason(participant)
    assert in_outbox.exists() == at_the_gate.exists() == (reason is None) == (not change)
