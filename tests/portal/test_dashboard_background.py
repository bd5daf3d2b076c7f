"""The administrators' "Background work" card: whether the work moves (the health report that
GET /api/health/ gives monitoring, in words) and each shard's sender loop (docs/sending.md,
"Shards")."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.models import SenderLease
from tests.factories import (
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    dispatcher_scheduled,
    dispatcher_working,
    text_waiting,
)

pytestmark = pytest.mark.django_db
SECONDS = datetime.timedelta(seconds=1)


def lease(name: str, *, owner: str, expires_at) -> None:
    SenderLease.objects.update_or_create(
        name=name, defaults={"owner": owner, "expires_at": expires_at}
    )


def card(client) -> str:
    page = client.get(reverse("dashboard")).content.decode()
    found = re.search(r'<section[^>]*id="background-work".*?</section>', page, re.S)
    assert found, "no Background work card"
    return found.group(0)


def rows(html: str) -> list[str]:
    """The sender loops' table, a line of text per row."""
    table = re.search(r'aria-label="Sender loops">.*?</table>', html, re.S).group(0)
    return [
        " ".join(re.sub(r"<[^>]+>", " ", row).split())
        for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    ]


def test_an_administrator_sees_the_work_moving_and_each_shards_loop(
    as_user, server_admin, settings
):
    settings.SENDER_SHARDS = "2"
    now = timezone.now()
    dispatcher_working(now)
    lease("sender:0/2", owner="loop-a", expires_at=now + 25 * SECONDS)  # renewed 5 s ago
    lease("sender:1/2", owner="", expires_at=now - 300 * SECONDS)  # let go 5 minutes ago

    html = card(as_user(server_admin))

    assert "Working" in html and 'role="alert"' not in html
    shown = rows(html)
    assert len(shown) == 2
    assert shown[0] == "Shard 1 of 2 Sending Now"
    assert shown[1].startswith("Shard 2 of 2 Idle") and shown[1].endswith("(5 minutes ago)")
    assert re.search(r"Dispatcher last ran</td><td[^>]*>(29|30|31) s ago", html)


def test_a_dispatcher_that_stopped_is_told_in_words_and_a_shard_never_run_says_so(
    as_user, server_admin, settings
):
    settings.SENDER_SHARDS = "1"
    dispatcher_scheduled(next_run=timezone.now() - datetime.timedelta(minutes=10))

    html = card(as_user(server_admin))

    assert "Needs attention" in html and 'role="alert"' in html
    assert "The dispatcher (every minute) has not run for longer than allowed" in html
    assert "is qcluster running?" in html
    assert rows(html) == ["The sender Idle Never ran"]
    assert "never" in re.search(r"Dispatcher last ran</td><td[^>]*>([^<]*)<", html).group(1)


def test_a_shard_whose_texts_wait_with_no_loop_needs_attention_while_the_other_sends(
    as_user, server_admin, settings
):
    settings.SENDER_SHARDS = "2"
    now = timezone.now()
    dispatcher_working(now)
    link = ProviderLinkFactory(project=ProjectFactory())
    long_ago = now - datetime.timedelta(minutes=10)
    text_waiting(link.project, ParticipantFactory(project=link.project), since=long_ago)
    stuck = link.pk % 2
    lease(f"sender:{1 - stuck}/2", owner="loop-a", expires_at=now + 25 * SECONDS)
    lease(f"sender:{stuck}/2", owner="", expires_at=long_ago)

    html = card(as_user(server_admin))

    assert "Needs attention" in html and 'role="alert"' in html
    assert re.search(
        rf"Texts of sender shard {stuck + 1} of 2 have waited 60\d s to go out and its loop has "
        r"not run for 60\d s",
        html,
    )
    assert f"Shard {2 - stuck} of 2 Sending Now" in rows(html)


def test_loops_running_with_another_shard_count_are_pointed_out(as_user, server_admin, settings):
    settings.SENDER_SHARDS = "2"
    now = timezone.now()
    lease("sender:2/3", owner="old-host", expires_at=now + 20 * SECONDS)
    lease("sender:0/3", owner="", expires_at=now - 60 * SECONDS)  # stopped: not counted

    html = card(as_user(server_admin))

    assert (
        "1 sender loop runs with another <code>SENDER_SHARDS</code> than this server's (2)" in html
    )
    assert rows(html) == ["Shard 1 of 2 Idle Never ran", "Shard 2 of 2 Idle Never ran"]


def test_researchers_do_not_see_the_background_work(as_user, researcher):
    page = as_user(researcher).get(reverse("dashboard")).content.decode()
    assert "Background work" not in page
    assert 'id="background-work"' not in page
