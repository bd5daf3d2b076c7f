"""The dispatcher: due occurrences become outbox rows exactly once; missed ones are skipped."""

import datetime

import pytest
from django.utils import timezone

from messaging.models import Message, MessageRule
from messaging.services import outbox
from tests.factories import (
    FieldMappingFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

pytestmark = pytest.mark.django_db
UTC = datetime.UTC
Status = Message.Status


@pytest.fixture
def project(researcher):
    project = ProjectFactory(owner=researcher, time_zone="America/New_York")
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project)
    ParticipantFactory(
        project=project,
        record_id="1",
        time_zone="America/New_York",
        dates={"enrollment_date": "2026-12-01"},
    )
    ParticipantFactory(
        project=project,
        record_id="2",
        time_zone="America/Los_Angeles",
        dates={"enrollment_date": "2026-12-03"},
    )
    return project


def daily(project, **kw):
    return MessageRuleFactory(
        project=project,
        schedule=MessageRule.Schedule.RECURRING,
        send_time=datetime.time(10, 0),
        start_date=datetime.date(2026, 12, 1),
        until_date=datetime.date(2026, 12, 31),
        materialized_through=datetime.datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
        **kw,
    )


def test_each_occurrence_becomes_one_row_in_the_participants_local_time(project):
    rule = daily(project, grace=datetime.timedelta(hours=6))
    report = outbox.dispatch(now=datetime.datetime(2026, 12, 1, 19, 0, tzinfo=UTC))
    # 10:00 New York = 15:00 UTC (due); 10:00 Los Angeles = 18:00 UTC (due).
    assert report.queued == 2
    rows = {m.participant.record_id: m for m in Message.objects.select_related("participant")}
    assert rows["1"].due_at == datetime.datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    assert rows["2"].due_at == datetime.datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    assert rows["1"].dedup_key == f"r{rule.pk}:p{rows['1'].participant_id}:2026-12-01"


def test_rerunning_the_dispatcher_creates_no_twin(project):
    daily(project, grace=datetime.timedelta(hours=6))
    now = datetime.datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
    outbox.dispatch(now=now)
    outbox.dispatch(now=now)
    outbox.dispatch(now=now + datetime.timedelta(minutes=1))
    assert Message.objects.count() == 2
    # Even a dispatcher that lost track of how far it got creates no twin (unique dedup key).
    MessageRule.objects.update(materialized_through=datetime.datetime(2026, 12, 1, tzinfo=UTC))
    outbox.dispatch(now=now + datetime.timedelta(minutes=2))
    assert Message.objects.count() == 2


def test_occurrences_missed_beyond_the_grace_window_are_skipped_with_the_reason(project):
    daily(project, grace=datetime.timedelta(hours=2))
    # The cluster was down from Dec 1 to Dec 3, 16:00 UTC.
    report = outbox.dispatch(now=datetime.datetime(2026, 12, 3, 16, 0, tzinfo=UTC))
    statuses = {}
    for m in Message.objects.select_related("participant"):
        statuses[(m.participant.record_id, m.occurrence)] = m.status
    # New York's Dec 3 occurrence (15:00 UTC) is 1 h late: still sent.
    assert statuses[("1", "2026-12-03")] == Status.QUEUED
    # Older ones are skipped, not dropped and not tripled.
    assert statuses[("1", "2026-12-01")] == Status.SKIPPED
    assert statuses[("1", "2026-12-02")] == Status.SKIPPED
    assert "Missed" in Message.objects.filter(status=Status.SKIPPED).first().error
    # Los Angeles: Dec 3 at 18:00 UTC is not due yet.
    assert ("2", "2026-12-03") not in statuses
    assert report.skipped == 4 and report.queued == 1


def test_relative_schedules_follow_each_participants_date(project):
    MessageRuleFactory(
        project=project,
        schedule=MessageRule.Schedule.RELATIVE,
        date_field="enrollment_date",
        offset_days=2,
        send_time=datetime.time(9, 0),
        materialized_through=datetime.datetime(2026, 12, 1, tzinfo=UTC),
    )
    outbox.dispatch(now=datetime.datetime(2026, 12, 6, 0, 0, tzinfo=UTC))
    due = {m.participant.record_id: m.due_at for m in Message.objects.select_related("participant")}
    assert due["1"] == datetime.datetime(2026, 12, 3, 14, 0, tzinfo=UTC)  # 09:00 EST
    assert due["2"] == datetime.datetime(2026, 12, 5, 17, 0, tzinfo=UTC)  # 09:00 PST


def test_paused_and_draft_rules_and_paused_projects_are_not_materialised(project):
    daily(project, status=MessageRule.Status.PAUSED)
    daily(project, status=MessageRule.Status.DRAFT)
    active = daily(project)
    project.status = project.Status.PAUSED
    project.save()
    outbox.dispatch(now=datetime.datetime(2026, 12, 1, 19, 0, tzinfo=UTC))
    assert Message.objects.count() == 0
    project.status = project.Status.ACTIVE
    project.save()
    outbox.dispatch(now=datetime.datetime(2026, 12, 1, 19, 0, tzinfo=UTC))
    assert set(Message.objects.values_list("rule_id", flat=True)) == {active.pk}


def test_activating_a_rule_does_not_send_the_past(project, researcher):
    from messaging.services import rules

    rule = daily(project, status=MessageRule.Status.DRAFT)
    MessageRule.objects.filter(pk=rule.pk).update(materialized_through=None)
    rule.refresh_from_db()
    rule.until_date = timezone.now().date() + datetime.timedelta(days=30)
    rule.save()
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    rule.refresh_from_db()
    assert rule.materialized_through is not None
    outbox.dispatch()
    assert not Message.objects.filter(due_at__lt=rule.materialized_through).exists()
