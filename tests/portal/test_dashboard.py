import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.models import OnboardingRequest
from tests.factories import MembershipFactory, OnboardingRequestFactory, ProjectFactory

Status = OnboardingRequest.Status
pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next=/"


def test_a_new_researcher_is_told_what_to_do(as_user, researcher):
    response = as_user(researcher).get(reverse("dashboard"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "No projects yet" in page
    assert "Request texting for your REDCap project." in page
    assert "No requests" in page
    assert reverse("onboarding-create") in page
    # Administration is not offered to researchers.
    assert "Server administration" not in page
    assert reverse("onboarding-queue") not in page
    assert reverse("audit-log") not in page


def test_a_researcher_sees_their_requests_with_status_and_their_projects(
    as_user, researcher, other_researcher
):
    OnboardingRequestFactory(
        requester=researcher, project_title="Sleep and Mood", status=Status.CHANGES_REQUESTED
    )
    OnboardingRequestFactory(requester=other_researcher, project_title="Someone else's request")
    mine = ProjectFactory(title="Heart Health", owner=researcher)
    viewer_of = ProjectFactory(title="Shared Study")
    MembershipFactory(project=viewer_of, user=researcher, role="viewer")
    ProjectFactory(title="Not Mine", owner=other_researcher)

    page = as_user(researcher).get(reverse("dashboard")).content.decode()
    assert "Sleep and Mood" in page
    assert "Changes requested" in page
    assert "Someone else" not in page
    assert "Heart Health" in page
    assert reverse("project-detail", args=[mine.pk]) in page
    assert "Shared Study" in page
    assert "Not Mine" not in page
    assert "Your projects" in page


def test_an_administrator_sees_the_pending_count_requests_by_status_and_all_projects(
    as_user, server_admin, researcher, other_researcher
):
    OnboardingRequestFactory.create_batch(3)
    OnboardingRequestFactory(status=Status.APPROVED)
    OnboardingRequestFactory(status=Status.REJECTED)
    OnboardingRequestFactory(status=Status.DRAFT, submitted_at=None)
    ProjectFactory(title="Heart Health", owner=researcher)
    ProjectFactory(title="Lung Study", owner=other_researcher)

    response = as_user(server_admin).get(reverse("dashboard"))
    page = response.content.decode()
    assert response.context["pending_count"] == 3
    assert '<div class="stat" id="pending-count">3</div>' in page
    assert "requests waiting for review" in page
    counts = {value: n for value, _label, n in response.context["status_counts"]}
    assert counts == {
        "draft": 1,
        "submitted": 3,
        "changes_requested": 0,
        "approved": 1,
        "rejected": 1,
        "withdrawn": 0,
    }
    assert "All projects" in page
    assert "Heart Health" in page
    assert "Lung Study" in page
    assert reverse("onboarding-queue") in page


def _count_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("dashboard")).status_code == 200
    return len(ctx.captured_queries)


def _add_rows(user, n):
    for _ in range(n):
        OnboardingRequestFactory(requester=user)
        ProjectFactory(owner=user)


@pytest.mark.parametrize("persona", ["researcher", "server_admin"])
def test_the_dashboard_costs_the_same_with_5_or_100_rows(
    as_user, request, persona, django_assert_max_num_queries
):
    user = request.getfixturevalue(persona)
    client = as_user(user)
    _add_rows(user, 5)
    small = _count_queries(client)
    _add_rows(user, 95)
    with django_assert_max_num_queries(small):
        response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert len(response.context["projects"]) == 50
