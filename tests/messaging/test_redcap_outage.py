"""One project's REDCap outage stays in that project (docs/sending.md, "Isolation").

Project A texts the participants matching REDCap filter logic, from the REDCap sandbox served by
the portal (real HTTP); "REDCap down" is A's REDCap instance pointed at the loopback fake that
answers 503. Project B's rule needs no REDCap. The dispatcher runs with its `now=` moved on.
"""

import datetime
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging import tasks
from messaging.models import Message, MessageRule, Send
from messaging.services import outbox
from projects.models import Project, RedcapLink
from tests.factories import (
    ALWAYS_OPEN,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)
Status = Message.Status


def once_due(rule: MessageRule, due: datetime.datetime) -> None:
    MessageRule.objects.filter(pk=rule.pk).update(
        schedule=MessageRule.Schedule.ONCE,
        once_date=due.date(),
        send_time=due.time().replace(microsecond=0),
        materialized_through=due - datetime.timedelta(minutes=1),
        status=MessageRule.Status.ACTIVE,
    )


@pytest.fixture
def two_projects(mapped_project, researcher, fake_provider, monkeypatch):
    monkeypatch.setattr(outbox, "kick_sender", lambda: None)  # materialise only
    a = mapped_project
    ProviderLinkFactory(project=a)
    Project.objects.filter(pk=a.pk).update(**ALWAYS_OPEN, time_zone="UTC")
    for record in ("1", "2", "3"):
        ParticipantFactory(project=a, record_id=record, time_zone="UTC")
    a_rule = MessageRuleFactory(
        project=a,
        recipients=MessageRule.Recipients.FILTER,
        filter_logic="[record_id] <> ''",
        body="Your visit is next week.",
    )
    b = ProjectFactory(owner=researcher, always_open=True, time_zone="UTC")
    ProviderLinkFactory(project=b)
    ParticipantFactory.create_batch(4, project=b, time_zone="UTC")
    b_rule = MessageRuleFactory(project=b, body="Please fill in your diary.")
    sandbox_url = a.redcap_instance.api_url
    fake_provider.redcap_down = True

    def point(url: str) -> None:
        type(a.redcap_instance).objects.filter(pk=a.redcap_instance_id).update(api_url=url)

    return SimpleNamespace(
        a=a,
        a_rule=a_rule,
        b=b,
        b_rule=b_rule,
        down=lambda: point(fake_provider.redcap_api_url),
        up=lambda: point(sandbox_url),
        fake=fake_provider,
    )


def test_one_projects_redcap_outage_stays_in_that_project(two_projects):
    p = two_projects
    now = timezone.now()
    for rule in (p.a_rule, p.b_rule):
        once_due(rule, now - datetime.timedelta(minutes=1))
    p.down()

    report = outbox.dispatch(now=now)

    # B's texts are queued; A's rule waits (not advanced), its failure recorded in words.
    assert Message.objects.filter(project=p.b, status=Status.QUEUED).count() == 4
    assert not Message.objects.filter(project=p.a).exists()
    assert any("REDCap did not answer" in e for e in report.errors)
    link = RedcapLink.objects.get(project=p.a)
    assert link.failing_since == now
    assert link.retry_at > now

    # Backing off: half a minute later REDCap is not asked again.
    calls = len(p.fake.redcap_calls)
    outbox.dispatch(now=now + datetime.timedelta(seconds=30))
    assert len(p.fake.redcap_calls) == calls

    # Three hours of outage later REDCap answers: A's text is queued, not skipped as missed.
    p.up()
    outbox.dispatch(now=now + datetime.timedelta(hours=3))
    a_texts = Message.objects.filter(project=p.a)
    assert set(a_texts.values_list("status", flat=True)) == {Status.QUEUED}
    assert a_texts.count() == 3
    link.refresh_from_db()
    assert link.failing_since is None and link.retry_at is None


def test_the_dispatch_task_still_sweeps_and_starts_the_sender_when_a_rule_fails(
    two_projects, monkeypatch
):
    p = two_projects
    once_due(p.b_rule, timezone.now() - datetime.timedelta(minutes=1))
    swept = []
    monkeypatch.setattr(tasks.sweep, "sweep", lambda **kw: swept.append(kw) or {})

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in one rule")

    real = outbox._materialize
    monkeypatch.setattr(
        outbox,
        "_materialize",
        lambda rule, now, report: broken() if rule.pk == p.a_rule.pk else real(rule, now, report),
    )
    once_due(p.a_rule, timezone.now() - datetime.timedelta(minutes=1))

    tasks.dispatch()

    assert Message.objects.filter(project=p.b).count() == 4
    assert swept  # the sweep ran all the same


def test_the_team_sees_redcap_not_answering_in_words(two_projects, as_user, researcher):
    p = two_projects
    now = timezone.now()
    once_due(p.a_rule, now - datetime.timedelta(minutes=1))
    p.down()
    outbox.dispatch(now=now)

    for name in ("project-detail", "rule-list"):
        page = as_user(researcher).get(reverse(name, args=[p.a.pk])).content.decode()
        assert "REDCap did not answer since" in page
        assert "retrying" in page
    page = as_user(researcher).get(reverse("rule-list", args=[p.b.pk])).content.decode()
    assert "REDCap did not answer" not in page


def test_send_now_on_a_filter_rule_with_redcap_down_says_why_and_sends_nothing(
    two_projects, as_user, researcher
):
    p = two_projects
    p.down()
    response = as_user(researcher).post(
        reverse("rule-send-now", args=[p.a.pk, p.a_rule.pk]), {"audience": "new"}, follow=True
    )

    assert response.status_code == 200
    assert "REDCap did not answer" in response.content.decode()
    assert not Send.objects.exists()
    assert not Message.objects.filter(project=p.a).exists()
