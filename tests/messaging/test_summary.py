"""The "Texts" card on a project's overview: counts of the last 30 days by status, each linking to
the message log filtered the same way; texts sent per day in the viewer's time zone; active
messages and the next text due; an empty state; and a cost that does not grow with the texts."""

import datetime
import html
import itertools
import re
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging import selectors
from messaging.models import Message, MessageRule
from projects.models import Membership
from tests.factories import (
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
_keys = itertools.count()


def _text(project, person, status, *, due_at, sent_at=None, rule=None) -> Message:
    key = next(_keys)
    return Message.objects.create(
        project=project,
        participant=person,
        rule=rule,
        occurrence=f"t{key}",
        dedup_key=f"summary-test-{key}",
        status=status,
        due_at=due_at,
        not_before=due_at,
        sent_at=sent_at,
    )


@pytest.fixture
def project(researcher):
    return ProjectFactory(owner=researcher, title="Healthy Habits")


@pytest.fixture
def person(project):
    return ParticipantFactory(project=project)


def _overview(client, project) -> str:
    response = client.get(reverse("project-detail", args=[project.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _card(page: str) -> str:
    start = page.index('id="texting-summary"')
    return page[start : page.index("</section>", start)]


# --- Counts and links -------------------------------------------------------------------------
def test_the_card_counts_the_last_30_days_by_status_and_each_count_opens_the_same_texts(
    as_user, researcher, project, person
):
    now = timezone.now()
    recent = now - datetime.timedelta(days=2)
    for status, n in [
        ("sent", 2),
        ("delivered", 1),
        ("queued", 1),
        ("sending", 1),
        ("held", 1),
        ("failed", 1),
        ("undelivered", 1),
        ("unknown", 1),
        ("skipped", 1),
        ("cancelled", 1),
    ]:
        for _ in range(n):
            _text(project, person, status, due_at=recent, sent_at=recent)
    _text(project, person, "queued", due_at=now + datetime.timedelta(days=3))  # still to come
    old = now - datetime.timedelta(days=40)
    _text(project, person, "sent", due_at=old, sent_at=old)  # before the 30 days
    _text(project, person, "failed", due_at=old)
    other = ProjectFactory(owner=researcher)  # another project's texts count for it only
    _text(other, ParticipantFactory(project=other), "sent", due_at=recent, sent_at=recent)

    client = as_user(researcher)
    page = _overview(client, project)
    card = _card(page)
    expected = {"sent": 3, "waiting": 3, "held": 1, "failed": 2, "unconfirmed": 1, "skipped": 2}
    for key, count in expected.items():
        assert re.search(rf'data-field="{key}">{count}</div>', card), key
    since = (timezone.localdate() - datetime.timedelta(days=29)).isoformat()
    links = re.findall(r'href="([^"]*/log/\?status=[^"]*since=[^"]*)">([^<]+)</a>', card)
    assert [html.unescape(href).split("?")[1] for href, _ in links] == [
        f"status=sent,delivered&since={since}",
        f"status=queued,sending&since={since}",
        f"status=held&since={since}",
        f"status=failed,undelivered&since={since}",
        f"status=unknown&since={since}",
        f"status=skipped,cancelled&since={since}",
    ]
    assert [label for _, label in links] == [
        "sent",
        "waiting to go out",
        "held (over quota)",
        "failed",
        "unconfirmed",
        "skipped or cancelled",
    ]
    for (href, _), count in zip(links, expected.values(), strict=True):
        log = client.get(html.unescape(href))
        assert log.context["page"].count == count, href
    assert 'class="stat stat-bad" data-field="failed"' in card
    assert "Last 30 days: texts due since" in card


def test_active_messages_and_the_next_text_due_in_the_viewers_time_zone(
    as_user, researcher, project, person
):
    researcher.time_zone = "America/Los_Angeles"
    researcher.save(update_fields=["time_zone"])
    rule = MessageRuleFactory(project=project)  # active
    MessageRuleFactory(project=project, status=MessageRule.Status.PAUSED)
    MessageRuleFactory(project=project, status=MessageRule.Status.DRAFT)
    now = timezone.now()
    _text(project, person, "sent", due_at=now, sent_at=now, rule=rule)
    soon = (now + datetime.timedelta(days=2)).replace(hour=17, minute=0, second=0, microsecond=0)
    _text(project, person, "queued", due_at=soon + datetime.timedelta(hours=5), rule=rule)
    _text(project, person, "queued", due_at=soon, rule=rule)
    _text(project, person, "held", due_at=soon - datetime.timedelta(hours=5), rule=rule)

    card = _card(_overview(as_user(researcher), project))
    local = soon.astimezone(zoneinfo.ZoneInfo("America/Los_Angeles"))  # 17:00 UTC = 10 a.m. PDT
    shown = f"{local:%b} {local.day}, {local.year} {local.hour % 12 or 12}:00 a.m."
    assert f"next text due {shown}" in card
    rules_url = reverse("rule-list", args=[project.pk])
    assert f'<a href="{rules_url}">1 active message</a>' in card
    assert "Times are in America/Los_Angeles." in card


# --- The chart ----------------------------------------------------------------------------------
def test_days_are_those_of_the_viewers_time_zone(project, person):
    """02:30 UTC on March 10 is still March 9 in New York."""
    sent = datetime.datetime(2026, 3, 10, 2, 30, tzinfo=datetime.UTC)
    _text(project, person, "delivered", due_at=sent, sent_at=sent)
    today = datetime.date(2026, 3, 10)
    with timezone.override(NEW_YORK):
        days = dict(selectors.texting_summary(project=project, today=today).days)
    assert days[datetime.date(2026, 3, 9)] == 1
    assert days[today] == 0
    with timezone.override(datetime.UTC):
        days = dict(selectors.texting_summary(project=project, today=today).days)
    assert (days[datetime.date(2026, 3, 9)], days[today]) == (0, 1)
    assert list(days) == [today - datetime.timedelta(days=13 - i) for i in range(14)]


@pytest.mark.parametrize(("zone", "shift"), [("America/New_York", 1), ("UTC", 0)])
def test_the_chart_puts_a_text_on_the_viewers_day(as_user, project, person, zone, shift):
    viewer = UserFactory(time_zone=zone)
    MembershipFactory(project=project, user=viewer, role=Membership.Role.VIEWER)
    now = timezone.now()
    sent = now.replace(hour=2, minute=30, second=0, microsecond=0)
    if sent > now:
        sent -= datetime.timedelta(days=1)
    _text(project, person, "sent", due_at=sent, sent_at=sent)

    card = _card(_overview(as_user(viewer), project))
    day = sent.date() - datetime.timedelta(days=shift)
    assert f"<title>{day:%a}, {day:%b} {day.day}: 1 sent</title>" in card
    assert card.count(": 1 sent</title>") == 1
    assert card.count(": 0 sent</title>") == 13
    assert '<title id="texts-chart-title">Texts sent per day' in card
    assert "1 text sent in these 14 days; the busiest day had 1. Days in " + zone in card
    assert "style=" not in card


def test_the_bars_stand_on_a_tidy_axis(project, person):
    from messaging.charts import sent_per_day_chart

    today = datetime.date(2026, 3, 10)
    days = [(today - datetime.timedelta(days=13 - i), i) for i in range(14)]
    chart = sent_per_day_chart(days=days, today=today)
    assert [value for _, value in chart.y_ticks] == [0, 4, 8, 12, 16]
    assert chart.bars[-1].css == "bar bar-today" and chart.bars[0].height == 0
    assert chart.x_labels[0][1] == "Feb 26" and chart.x_labels[-1][1] == "today"
    assert chart.bars[-1].y == chart.top + round(chart.plot_height * (16 - 13) / 16, 1)


# --- Empty states -------------------------------------------------------------------------------
def test_a_project_with_no_texts_says_where_to_start(as_user, researcher, project):
    rules_url = reverse("rule-list", args=[project.pk])
    card = _card(_overview(as_user(researcher), project))
    assert "No texts yet" in card
    assert f'Create a message on the <a href="{rules_url}">Messages tab</a>' in card
    assert "<svg" not in card and 'id="texting-counts"' not in card

    viewer = UserFactory()
    MembershipFactory(project=project, user=viewer, role=Membership.Role.VIEWER)
    card = _card(_overview(as_user(viewer), project))
    assert "No texts yet" in card
    assert "Create a message" not in card
    assert "once the project's owners or editors set up messages" in card

    MessageRuleFactory(project=project)
    card = _card(_overview(as_user(viewer), project))
    assert "1 active message on the" in card
    assert "their texts appear here as they fall due" in card


def test_a_quiet_fortnight_says_so_instead_of_an_empty_chart(as_user, researcher, project, person):
    old = timezone.now() - datetime.timedelta(days=20)
    _text(project, person, "sent", due_at=old, sent_at=old)
    card = _card(_overview(as_user(researcher), project))
    assert 'data-field="sent">1</div>' in card
    assert "None sent in the last 14 days." in card
    assert "<svg" not in card
    assert "nothing queued" in card


# --- Cost ----------------------------------------------------------------------------------------
def _texts(project, people, n):
    now = timezone.now()
    statuses = ["sent", "delivered", "queued", "held", "failed", "unknown", "skipped"]
    Message.objects.bulk_create(
        Message(
            project=project,
            participant=people[i % len(people)],
            occurrence=f"bulk{i}",
            dedup_key=f"bulk-{project.pk}-{n}-{i}",
            status=statuses[i % len(statuses)],
            due_at=now - datetime.timedelta(hours=i),
            not_before=now - datetime.timedelta(hours=i),
            sent_at=now - datetime.timedelta(hours=i) if i % 7 < 2 else None,
        )
        for i in range(n)
    )


def test_the_overview_costs_the_same_with_10_or_300_texts(
    as_user, researcher, project, django_assert_max_num_queries
):
    people = [ParticipantFactory(project=project) for _ in range(5)]
    MessageRuleFactory(project=project)
    _texts(project, people, 10)
    client = as_user(researcher)
    url = reverse("project-detail", args=[project.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    people += [ParticipantFactory(project=project) for _ in range(25)]
    MessageRuleFactory.create_batch(9, project=project)
    _texts(project, people, 300)
    assert Message.objects.filter(project=project).count() == 310
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = _overview(client, project)
    assert "10 active messages" in page


def test_outsiders_still_get_404(as_user, project, other_researcher):
    response = as_user(other_researcher).get(reverse("project-detail", args=[project.pk]))
    assert response.status_code == 404
