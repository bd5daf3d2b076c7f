"""The admin's lists of texts and replies (millions of rows) cost the same with 3 rows or 30:
no SELECT DISTINCT per filter, no join, no sort, no second count."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message, Reply
from tests.factories import ParticipantFactory, ProjectFactory, ServerAdminFactory, verified_login

pytestmark = pytest.mark.django_db
LISTS = {
    "messages": "admin:messaging_message_changelist",
    "replies": "admin:messaging_reply_changelist",
}


@pytest.fixture
def admin_client(client):
    verified_login(client, ServerAdminFactory())
    return client


def _rows(count: int) -> None:
    project = ProjectFactory()
    now = timezone.now()
    for n in range(count):
        person = ParticipantFactory(project=project)
        Message.objects.create(
            project=project,
            participant=person,
            occurrence=str(n),
            dedup_key=f"admin-{project.pk}-{n}",
            kind="reminder" if n % 2 else "adhoc",
            provider="twilio" if n % 3 else "mosio",
            due_at=now,
            not_before=now,
        )
        Reply.objects.create(
            project=project, participant=person, provider="twilio", body="Hi", received_at=now
        )


def _get(client, name: str, **params):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(LISTS[name]), params)
    assert response.status_code == 200
    return response, [q["sql"] for q in queries.captured_queries]


@pytest.mark.parametrize("name", LISTS)
def test_the_list_costs_the_same_queries_with_3_rows_or_30_and_never_a_distinct(admin_client, name):
    _rows(3)
    _, few = _get(admin_client, name)
    _rows(27)
    response, many = _get(admin_client, name)
    assert len(few) == len(many)
    assert not [sql for sql in many if "DISTINCT" in sql.upper()]
    assert not [sql for sql in many if "JOIN" in sql.upper() and "messaging_" in sql]
    shown = [row.pk for row in response.context["cl"].result_list]
    assert shown == sorted(shown, reverse=True)  # newest first, by the primary key


def test_the_kind_and_provider_filters_offer_fixed_choices_and_filter(admin_client):
    _rows(6)
    response, _ = _get(admin_client, "messages", kind="reminder", provider="twilio")
    rows = response.context["cl"].result_list
    assert rows and all(m.kind == "reminder" and m.provider == "twilio" for m in rows)
    page = response.content.decode()
    assert "HELP reply" in page and "mosio" in page
