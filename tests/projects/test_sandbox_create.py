"""On `make run`, a project approved for a REDCap project id the sandbox does not know: the
sandbox creates it (the demo's instruments and records) and shows the token to the owner."""

import pytest
from django.urls import reverse

from portal.models import AuditEvent
from projects.models import Participant, RedcapLink
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.sandbox.services import sandbox_projects_restore, sandbox_token
from projects.services import links, mapping, sync
from tests.factories import MembershipFactory, ProjectFactory, RedcapInstanceFactory
from tests.projects.conftest import MAPPING

PID = 5001


@pytest.fixture(autouse=True)
def forget_created_projects():
    """Created sandbox projects live in the process; each test starts without them."""
    builtin = dict(SANDBOX_PROJECTS)
    yield
    SANDBOX_PROJECTS.clear()
    SANDBOX_PROJECTS.update(builtin)


@pytest.fixture
def new_project(sandbox_instance, researcher):
    return ProjectFactory(
        redcap_instance=sandbox_instance,
        redcap_project_id=PID,
        owner=researcher,
        title="Walking Study",
    )


def _redcap_page(client, project) -> str:
    return client.get(reverse("project-redcap", args=[project.pk])).content.decode()


def test_the_sandbox_creates_an_unknown_project_and_the_owner_links_it_and_syncs(
    as_user, researcher, new_project
):
    client = as_user(researcher)
    assert "The portal's REDCap sandbox has no project 5001 yet." in _redcap_page(
        client, new_project
    )

    response = client.post(reverse("project-redcap-sandbox", args=[new_project.pk]), follow=True)

    html = response.content.decode()
    token = sandbox_token(PID)
    assert f'<span class="code" id="sandbox-token">{token}</span>' in html
    assert "The REDCap sandbox now has project 5001." in html
    assert AuditEvent.objects.filter(action="redcap_sandbox.project_created").exists()
    # The token works over real HTTP, as any REDCap token, and the project has the demo's records.
    response = client.post(
        reverse("project-redcap", args=[new_project.pk]),
        {"redcap_instance": new_project.redcap_instance_id, "token": token},
        follow=True,
    )
    assert "REDCap linked: “Walking Study”" in response.content.decode()
    mapping.field_mapping_save(project=new_project, actor=researcher, data=dict(MAPPING))
    sync.sync_run_start(project=new_project, actor=researcher)  # q2 runs it now in tests
    assert Participant.objects.filter(project=new_project).count() == 25


def test_the_token_is_not_one_of_the_demos_and_is_the_same_after_a_restart(
    researcher, new_project, as_user
):
    as_user(researcher).post(reverse("project-redcap-sandbox", args=[new_project.pk]))
    token = sandbox_token(PID)
    links.redcap_link_set(project=new_project, token=token, actor=researcher)
    assert token not in {p.token for pid, p in SANDBOX_PROJECTS.items() if pid != PID}

    del SANDBOX_PROJECTS[PID]  # what a restart of the web server does
    assert sandbox_projects_restore() == 1

    assert SANDBOX_PROJECTS[PID].token == token == RedcapLink.objects.get().token
    assert links.redcap_link_test(project=new_project, actor=researcher)["project_id"] == PID


def test_creating_it_twice_changes_nothing(as_user, researcher, new_project):
    client = as_user(researcher)
    client.post(reverse("project-redcap-sandbox", args=[new_project.pk]))
    first = SANDBOX_PROJECTS[PID]
    client.post(reverse("project-redcap-sandbox", args=[new_project.pk]))
    assert SANDBOX_PROJECTS[PID] is first
    assert AuditEvent.objects.filter(action="redcap_sandbox.project_created").count() == 1


@pytest.mark.parametrize(("role", "status"), [("editor", 403), ("viewer", 403), (None, 404)])
def test_only_owners_see_the_offer_and_the_token_or_create_it(
    as_user, other_researcher, new_project, role, status
):
    if role:
        MembershipFactory(project=new_project, user=other_researcher, role=role)
    client = as_user(other_researcher)

    response = client.post(reverse("project-redcap-sandbox", args=[new_project.pk]))

    assert response.status_code == status
    assert PID not in SANDBOX_PROJECTS
    if role:
        assert 'id="sandbox-offer"' not in _redcap_page(client, new_project)


def test_a_project_the_sandbox_ships_and_a_real_redcap_server_are_offered_nothing(
    as_user, researcher, sandbox_instance, db
):
    demo = ProjectFactory(redcap_instance=sandbox_instance, redcap_project_id=101, owner=researcher)
    real = ProjectFactory(
        redcap_instance=RedcapInstanceFactory(name="Real", api_url="https://redcap.uni.test/api/"),
        redcap_project_id=PID,
        owner=researcher,
    )
    client = as_user(researcher)
    for project in (demo, real):
        assert 'id="sandbox-offer"' not in _redcap_page(client, project)
        response = client.post(reverse("project-redcap-sandbox", args=[project.pk]), follow=True)
        assert "is not the REDCap sandbox, or the sandbox already has" in (
            response.content.decode()
        )
    assert PID not in SANDBOX_PROJECTS


def test_with_the_sandbox_off_nothing_is_offered(as_user, researcher, new_project, settings):
    settings.SANDBOX_ENABLED = False
    assert 'id="sandbox-offer"' not in _redcap_page(as_user(researcher), new_project)
    assert sandbox_projects_restore() == 0
