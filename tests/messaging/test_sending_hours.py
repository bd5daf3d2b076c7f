"""A change of the sending hours releases what waits (docs/sending.md, "Sending hours"): every
waiting text's release time is recomputed at once, in one UPDATE, and the overview, the log and
the participant's page say when each waiting text goes out, in the participant's time."""

import datetime
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging.gateways import locmem
from messaging.models import Message
from messaging.scheduling import SendWindow, local_words
from messaging.services import outbox
from projects.models import Project
from projects.services import project_update_sending_bounds, project_update_sending_hours
from tests.factories import MessageRuleFactory
from tests.messaging.test_outbox_and_sending import (  # noqa: F401 - fixtures
    people,
    project,
    redcap,
    run_sender,
)

pytestmark = pytest.mark.django_db
Status = Message.Status
ALL_DAY = (datetime.time(0, 0), datetime.time(23, 59, 59))


def closed_days() -> list[int]:
    """Days on which no participant (from Honolulu to New York) is today, tomorrow or
    yesterday: the hours are closed for everyone now."""
    today = timezone.now().weekday()
    return [d for d in range(7) if d not in {(today - 1) % 7, today, (today + 1) % 7}]


@pytest.fixture
def waiting(project, people, researcher, server_admin):  # noqa: F811
    """Every participant's text waits for the sending hours."""
    project_update_sending_bounds(
        project=project,
        actor=server_admin,
        start=ALL_DAY[0],
        end=ALL_DAY[1],
        days=range(7),
        confirmed=True,
    )
    Project.objects.filter(pk=project.pk).update(send_days=closed_days())
    outbox.send_now(rule=MessageRuleFactory(project=project), actor=researcher)
    run_sender()
    assert locmem.outbox == []
    assert set(Message.objects.values_list("status", flat=True)) == {Status.QUEUED}
    project.refresh_from_db()
    return project


def test_widening_the_hours_sends_the_waiting_texts_without_anyone_touching_them(
    waiting, researcher, django_capture_on_commit_callbacks
):
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        project_update_sending_hours(
            project=waiting,
            actor=researcher,
            start=ALL_DAY[0],
            end=ALL_DAY[1],
            days=range(7),
            confirmed=True,
        )
    # One UPDATE recomputed every waiting text's release time (before the sender sent them).
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "messaging_message"')]
    assert len([u for u in updates if '"not_before"' in u and "CASE" in u]) == 1
    assert len(locmem.outbox) == 3
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}


def test_new_hours_give_each_waiting_text_its_new_time_in_its_participants_zone(
    waiting, researcher, as_user
):
    days = closed_days()[:1]
    project_update_sending_hours(
        project=waiting,
        actor=researcher,
        start=datetime.time(10, 30),
        end=datetime.time(11, 0),
        days=days,
    )
    window = SendWindow(datetime.time(10, 30), datetime.time(11, 0), frozenset(days))
    now = timezone.now()
    client = as_user(researcher)
    log = client.get(reverse("message-log", args=[waiting.pk])).content.decode()
    for message in Message.objects.select_related("participant"):
        tz = zoneinfo.ZoneInfo(message.participant.time_zone or waiting.time_zone)
        opening = window.next_opening(now, tz)
        assert message.not_before == opening
        assert opening.astimezone(tz).time() == datetime.time(10, 30)
        words = f"Waits until {local_words(opening, tz)} participant time"
        assert message.error.startswith(words)
        assert words in log
        page = client.get(
            reverse("participant-detail", args=[waiting.pk, message.participant_id])
        ).content.decode()
        assert words in page
    overview = client.get(reverse("project-detail", args=[waiting.pk])).content.decode()
    first = Message.objects.order_by("not_before").first()
    first_tz = zoneinfo.ZoneInfo(first.participant.time_zone or waiting.time_zone)
    assert f"next text waits until {local_words(first.not_before, first_tz)} participant time" in (
        overview
    )
