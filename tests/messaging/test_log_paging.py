"""The message log's pages: keyset ("older than this text"), a signed cursor, a bounded count,
date filters as days in the viewer's time zone, and clear words for bad input."""

import datetime
import re
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging import paging
from messaging.models import Message
from tests.factories import ParticipantFactory, ProjectFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")


@pytest.fixture
def project(researcher):
    researcher.time_zone = "America/Chicago"
    researcher.save(update_fields=["time_zone"])
    return ProjectFactory(owner=researcher)


def _texts(project, count: int, *, start=None, step=datetime.timedelta(hours=1)):
    person = ParticipantFactory(project=project)
    start = start or timezone.now() - datetime.timedelta(days=30)
    rows = [
        Message(
            project=project,
            participant=person,
            occurrence=str(n),
            dedup_key=f"paging-{project.pk}-{person.pk}-{n}",
            status="delivered",
            # Pairs of texts share a due time: the cursor must order ties by id.
            due_at=start + step * (n // 2),
            not_before=start,
        )
        for n in range(count)
    ]
    Message.objects.bulk_create(rows)
    return list(Message.objects.filter(participant=person).order_by("-due_at", "-id"))


def _link(page: str, name: str) -> str | None:
    found = re.search(rf'href="(\?[^"]*)" id="{name}"', page)
    return found.group(1).replace("&amp;", "&") if found else None


def test_older_and_newer_links_walk_the_whole_log_once_each_way_in_order(
    as_user, researcher, project
):
    texts = _texts(project, 137)
    client = as_user(researcher)
    url = reverse("message-log", args=[project.pk])
    seen, pages, query = [], [], ""
    while True:
        response = client.get(url + query)
        shown = [m.pk for m in response.context["page"].object_list]
        seen += shown
        pages.append(shown)
        older = _link(response.content.decode(), "log-older")
        if older is None:
            break
        query = older
    assert seen == [m.pk for m in texts]
    assert [len(p) for p in pages] == [50, 50, 37]
    # ... and back up with "Newer", page by page.
    back = []
    while (newer := _link(client.get(url + query).content.decode(), "log-newer")) is not None:
        query = newer
        back.append([m.pk for m in client.get(url + query).context["page"].object_list])
    assert back == pages[-2::-1]


def test_a_deep_page_costs_the_queries_of_the_first(as_user, researcher, project):
    texts = _texts(project, 300)
    client = as_user(researcher)
    url = reverse("message-log", args=[project.pk])
    counts = []
    for cursor in ("", f"?before={paging.LogCursor.older_than(texts[249]).token()}"):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url + cursor)
        counts.append(len(queries))
        assert "OFFSET" not in " ".join(q["sql"] for q in queries.captured_queries)
    assert counts[0] == counts[1]
    assert [m.pk for m in response.context["page"].object_list] == [m.pk for m in texts[250:]]


@pytest.mark.parametrize(
    "cursor",
    [
        "before=garbage",
        "after=WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgMV0:1abcde:forged",
        "before=",  # empty: simply the first page
    ],
)
def test_a_tampered_cursor_shows_the_newest_texts_with_a_clear_message(
    as_user, researcher, project, cursor
):
    texts = _texts(project, 60)
    response = as_user(researcher).get(reverse("message-log", args=[project.pk]) + "?" + cursor)
    assert response.status_code == 200
    assert response.context["page"].object_list[0].pk == texts[0].pk
    page = response.content.decode()
    if cursor == "before=":
        assert "damaged" not in page
    else:
        assert "That page link is damaged or was changed by hand" in page


def test_a_cursor_made_for_older_texts_is_not_accepted_as_a_newer_one(project):
    text = _texts(project, 2)[0]
    token = paging.LogCursor.older_than(text).token()
    with pytest.raises(paging.CursorError):
        paging.LogCursor.parse(token, paging.NEWER)
    assert paging.LogCursor.parse(token, paging.OLDER).pk == text.pk


def test_the_count_stops_at_its_limit_and_says_more_than(as_user, researcher, project, monkeypatch):
    monkeypatch.setattr(paging, "COUNT_LIMIT", 40)
    _texts(project, 60)
    response = as_user(researcher).get(reverse("message-log", args=[project.pk]))
    assert response.context["page"].count_capped
    assert "More than 40 texts, newest first" in response.content.decode()
    monkeypatch.setattr(paging, "COUNT_LIMIT", 10_000)
    response = as_user(researcher).get(reverse("message-log", args=[project.pk]))
    assert response.context["page"].count == 60
    assert "60 texts, newest first" in response.content.decode()


def test_date_filters_are_whole_days_in_the_viewers_time_zone(as_user, researcher, project):
    person = ParticipantFactory(project=project)
    day = datetime.date(2026, 3, 10)
    moments = {
        "just before": datetime.datetime(2026, 3, 9, 23, 59, tzinfo=CHICAGO),
        "first minute": datetime.datetime(2026, 3, 10, 0, 0, tzinfo=CHICAGO),
        "late evening": datetime.datetime(2026, 3, 10, 23, 30, tzinfo=CHICAGO),  # 05:30 UTC
        "next day": datetime.datetime(2026, 3, 11, 0, 0, tzinfo=CHICAGO),
    }
    ids = {}
    for n, (name, when) in enumerate(moments.items()):
        ids[name] = Message.objects.create(
            project=project,
            participant=person,
            occurrence=str(n),
            dedup_key=f"day-{n}",
            due_at=when,
            not_before=when,
        ).pk
    response = as_user(researcher).get(
        reverse("message-log", args=[project.pk]), {"since": day, "until": day}
    )
    shown = {m.pk for m in response.context["page"].object_list}
    assert shown == {ids["first minute"], ids["late evening"]}
    csv = as_user(researcher).get(
        reverse("message-log-csv", args=[project.pk]), {"since": day, "until": day}
    )
    lines = b"".join(csv.streaming_content).decode().strip().splitlines()
    assert len(lines) == 3  # the header and the same two texts


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"since": "2026-02-30"}, "“Due from” must be a date such as 2026-03-31; “2026-02-30”"),
        ({"until": "yesterday"}, "“Due until” must be a date such as 2026-03-31; “yesterday”"),
        (
            {"since": "2026-03-10", "until": "2026-03-01"},
            "“Due until” (Mar 1, 2026) is before “Due from” (Mar 10, 2026)",
        ),
    ],
)
def test_bad_dates_are_explained_and_left_out_never_a_500(
    as_user, researcher, project, params, message
):
    _texts(project, 3)
    response = as_user(researcher).get(reverse("message-log", args=[project.pk]), params)
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assert 'id="log-filter-errors"' in page
    assert len(response.context["page"].object_list) == 3  # the bad dates filter nothing
    csv = as_user(researcher).get(reverse("message-log-csv", args=[project.pk]), params)
    assert csv.status_code == 200


def test_an_outsider_gets_404_for_a_cursor_of_someone_elses_log(as_user, other_researcher, project):
    text = _texts(project, 2)[0]
    token = paging.LogCursor.older_than(text).token()
    response = as_user(other_researcher).get(
        reverse("message-log", args=[project.pk]), {"before": token}
    )
    assert response.status_code == 404
