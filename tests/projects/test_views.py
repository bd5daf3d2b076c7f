import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from projects.models import Membership
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(researcher):
    return ProjectFactory(title="Heart Health", owner=researcher)


@pytest.fixture
def member_of(project):
    """member_of(role) -> a user with that role on the project ("outsider": none)."""

    def _member(role):
        if role == "owner":
            return project.memberships.get(role=Membership.Role.OWNER).user
        user = UserFactory()
        if role != "outsider":
            MembershipFactory(project=project, user=user, role=role)
        return user

    return _member


@pytest.mark.parametrize(
    ("role", "expected"),
    [("owner", 200), ("editor", 200), ("viewer", 200), ("outsider", 404)],
)
def test_project_page_access_for_members_and_outsiders(as_user, project, member_of, role, expected):
    response = as_user(member_of(role)).get(reverse("project-detail", args=[project.pk]))
    assert response.status_code == expected
    if expected == 200:
        page = response.content.decode()
        assert "Heart Health" in page
        assert response.context["role"] == role
        assert f"You: {role}" in page
    else:
        assert "Heart Health" not in response.content.decode()


def test_an_administrator_reaches_every_project(as_user, project, server_admin):
    response = as_user(server_admin).get(reverse("project-detail", args=[project.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Heart Health" in page
    assert "You: server administrator" in page


def test_anonymous_visitors_are_sent_to_sign_in(client, project):
    for url in (reverse("project-detail", args=[project.pk]), reverse("project-list")):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url == f"{reverse('login')}?next={url}"


def test_a_missing_project_is_404(as_user, researcher, server_admin):
    assert as_user(researcher).get(reverse("project-detail", args=[99999])).status_code == 404
    assert as_user(server_admin).get(reverse("project-detail", args=[99999])).status_code == 404


def test_the_members_page_lists_the_members(as_user, project, member_of):
    viewer = member_of("viewer")
    page = as_user(viewer).get(reverse("project-members", args=[project.pk])).content.decode()
    assert str(project.memberships.get(role="owner").user) in page
    assert str(viewer) in page


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
def test_the_list_shows_a_members_projects_only(as_user, project, member_of, role):
    ProjectFactory(title="Lung Study")
    response = as_user(member_of(role)).get(reverse("project-list"))
    page = response.content.decode()
    assert "Heart Health" in page
    assert "Lung Study" not in page
    assert "Your projects" in page


def test_an_outsider_sees_an_empty_list_with_a_way_forward(as_user, project, member_of):
    page = as_user(member_of("outsider")).get(reverse("project-list")).content.decode()
    assert "Heart Health" not in page
    assert "No projects yet" in page
    assert reverse("onboarding-create") in page


def test_an_administrator_lists_every_project(as_user, project, server_admin):
    ProjectFactory(title="Lung Study")
    page = as_user(server_admin).get(reverse("project-list")).content.decode()
    assert "All projects" in page
    assert "Heart Health" in page
    assert "Lung Study" in page


@pytest.mark.parametrize("persona", ["researcher", "server_admin"])
def test_the_project_list_costs_the_same_with_5_or_100_projects(
    as_user, request, persona, django_assert_max_num_queries
):
    user = request.getfixturevalue(persona)
    client = as_user(user)
    owner = request.getfixturevalue("researcher")
    for _ in range(5):
        ProjectFactory(owner=owner)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("project-list")).status_code == 200
    for _ in range(95):
        ProjectFactory(owner=owner)
    with django_assert_max_num_queries(len(ctx.captured_queries)):
        response = client.get(reverse("project-list"))
    assert len(response.context["page"].object_list) == 50


def test_the_project_page_costs_the_same_with_5_or_100_members(
    as_user, project, researcher, django_assert_max_num_queries
):
    client = as_user(researcher)
    url = reverse("project-detail", args=[project.pk])
    MembershipFactory.create_batch(5, project=project)
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    MembershipFactory.create_batch(95, project=project)
    with django_assert_max_num_queries(len(ctx.captured_queries)):
        assert client.get(url).status_code == 200
