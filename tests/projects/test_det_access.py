"""Who sees and changes the Data Entry Trigger address: the project's owners (and server
administrators, who act as owners). It holds a secret, so no one else sees it; outsiders get
404 everywhere."""

import pytest
from django.urls import reverse

from portal.models import AuditEvent
from projects.models import DataEntryTrigger, Membership
from projects.services import det
from tests.factories import MembershipFactory, ProjectFactory, RedcapInstanceFactory


@pytest.fixture
def project(researcher):
    return ProjectFactory(owner=researcher)


def _page(client, project) -> str:
    response = client.get(reverse("project-redcap", args=[project.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _change(client, project, action: str):
    return client.post(reverse("project-det", args=[project.pk]), {"action": action})


def test_an_owner_creates_the_address_and_sees_where_to_paste_it(as_user, researcher, project):
    client = as_user(researcher)
    assert "Create the address for REDCap" in _page(client, project)
    response = _change(client, project, "enable")
    assert response.status_code == 302 and response["Location"].endswith("#det")
    trigger = DataEntryTrigger.objects.get(project=project)
    page = _page(client, project)
    assert det.det_address(trigger) in page
    assert det.det_address(trigger).startswith("http://127.0.0.1:8000/webhooks/redcap/")
    assert "Project Setup" in page and "Additional customizations" in page
    assert "A REDCap project has one Data Entry Trigger." in page
    assert AuditEvent.objects.filter(action="data_entry_trigger.created").count() == 1
    _change(client, project, "enable")  # pressing it twice keeps the address
    assert DataEntryTrigger.objects.get(project=project).secret == trigger.secret


def test_a_new_address_replaces_the_old_and_turning_off_removes_it(as_user, researcher, project):
    client = as_user(researcher)
    _change(client, project, "enable")
    old = DataEntryTrigger.objects.get(project=project).secret
    _change(client, project, "rotate")
    new = DataEntryTrigger.objects.get(project=project).secret
    assert new != old and old not in _page(client, project) and new in _page(client, project)
    _change(client, project, "disable")
    assert not DataEntryTrigger.objects.exists()
    assert [e.action for e in AuditEvent.objects.order_by("pk")][-3:] == [
        "data_entry_trigger.created",
        "data_entry_trigger.rotated",
        "data_entry_trigger.removed",
    ]
    response = _change(client, project, "rotate")  # nothing to replace: said, not a 500
    assert response.status_code == 302
    assert not DataEntryTrigger.objects.exists()


@pytest.mark.parametrize("role", [Membership.Role.EDITOR, Membership.Role.VIEWER])
def test_editors_and_viewers_see_that_it_is_on_but_never_the_address(
    as_user, project, role, researcher
):
    trigger = det.data_entry_trigger_enable(project=project, actor=researcher)
    member = MembershipFactory(project=project, role=role).user
    client = as_user(member)
    page = _page(client, project)
    assert trigger.secret not in page
    assert "Only the project's owners see the address." in page
    for action in ("enable", "rotate", "disable"):
        assert _change(client, project, action).status_code == 403
    assert DataEntryTrigger.objects.get(project=project).secret == trigger.secret


def test_an_outsider_gets_404_for_the_page_and_the_buttons(
    as_user, other_researcher, project, researcher
):
    det.data_entry_trigger_enable(project=project, actor=researcher)
    client = as_user(other_researcher)
    assert client.get(reverse("project-redcap", args=[project.pk])).status_code == 404
    for action in ("enable", "rotate", "disable"):
        assert _change(client, project, action).status_code == 404
    assert DataEntryTrigger.objects.filter(project=project).exists()


def test_signed_out_visitors_are_sent_to_sign_in(client, project):
    response = _change(client, project, "enable")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not DataEntryTrigger.objects.exists()


def test_a_server_administrator_acts_as_an_owner(as_user, server_admin, project):
    client = as_user(server_admin)
    _change(client, project, "enable")
    trigger = DataEntryTrigger.objects.get(project=project)
    assert trigger.secret in _page(client, project)


def test_an_unknown_action_is_refused_in_words(as_user, researcher, project):
    client = as_user(researcher)
    response = _change(client, project, "explode")
    assert response.status_code == 302
    follow = client.get(response["Location"])
    assert "Choose to create, replace or remove the address." in follow.content.decode()


def test_the_services_refuse_anyone_but_an_owner(project):
    from django.core.exceptions import PermissionDenied

    editor = MembershipFactory(project=project, role=Membership.Role.EDITOR).user
    with pytest.raises(PermissionDenied):
        det.data_entry_trigger_enable(project=project, actor=editor)
    assert not DataEntryTrigger.objects.exists()


def test_a_sandbox_project_links_to_the_sandboxs_project_setup(as_user, researcher):
    sandbox = RedcapInstanceFactory(
        name="Sandbox REDCap", api_url="http://127.0.0.1:8000/sandbox/redcap/api/"
    )
    project = ProjectFactory(owner=researcher, redcap_instance=sandbox, redcap_project_id=101)
    client = as_user(researcher)
    _change(client, project, "enable")
    assert reverse("sandbox-redcap-project", args=[101]) in _page(client, project)


def test_the_page_says_when_posts_cannot_be_used_yet(as_user, researcher, project):
    det.data_entry_trigger_enable(project=project, actor=researcher)
    page = _page(as_user(researcher), project)
    assert "Posts are not used yet" in page and "no REDCap API token linked" in page
