"""The message form's recipient count after the REDCap filter: started by a POST, counted in a
django-q2 task (inline in tests), fetched by polling its address."""

from django.urls import reverse

from projects.models import Membership
from projects.services import sync
from tests.factories import MembershipFactory, UserFactory


def _count(client, project, **post):
    start = client.post(reverse("rule-recipient-count", args=[project.pk]), post)
    assert start.status_code == 200, start.content
    assert start.json()["status"] == "pending"
    return client.get(start.json()["poll"]).json()


def test_the_count_is_taken_after_the_redcap_filter(mapped_project, researcher, as_user):
    sync.sync_run_start(project=mapped_project, actor=researcher)
    client = as_user(researcher)
    everyone = _count(client, mapped_project, recipients="all")
    assert everyone["status"] == "done" and everyone["count"] > 2
    got = _count(
        client,
        mapped_project,
        recipients="filter",
        filter_logic="[first_name] = 'Avery' or [first_name] = 'Blake'",
    )
    assert got == {"status": "done", "count": 2}
    assert _count(client, mapped_project, recipients="records", record_ids="1, 2 3") == {
        "status": "done",
        "count": 3,
    }


def test_logic_redcap_would_reject_is_said_in_words(mapped_project, researcher, as_user):
    got = _count(
        as_user(researcher), mapped_project, recipients="filter", filter_logic="[first_name] =="
    )
    assert got["status"] == "error"
    assert got["message"].startswith("REDCap would not accept this filter:")


def test_viewers_cannot_count_and_a_token_is_only_its_users(
    mapped_project, researcher, as_user, client
):
    viewer = UserFactory()
    MembershipFactory(project=mapped_project, user=viewer, role=Membership.Role.VIEWER)
    url = reverse("rule-recipient-count", args=[mapped_project.pk])
    assert as_user(viewer).post(url, {"recipients": "all"}).status_code == 403
    start = as_user(researcher).post(url, {"recipients": "all"}).json()
    editor = UserFactory()
    MembershipFactory(project=mapped_project, user=editor, role=Membership.Role.EDITOR)
    other = as_user(editor).get(start["poll"]).json()
    assert other["status"] == "error" and "expired" in other["message"]


def test_a_visitor_who_is_not_signed_in_is_sent_to_sign_in(mapped_project, as_user):
    client = as_user(None)
    url = reverse("rule-recipient-count", args=[mapped_project.pk])
    response = client.post(url, {"recipients": "all"})
    assert response.status_code == 302 and "login" in response.url
