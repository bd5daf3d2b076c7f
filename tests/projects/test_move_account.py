"""Moving a project to another billing account: the account's project limit holds."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from portal.models import AuditEvent
from projects.models import Project
from projects.services import project_move_account
from tests.factories import AccountFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def test_moving_a_project_into_a_full_account_is_refused(researcher, instance, server_admin):
    full = AccountFactory(name="Full Lab", owners=[researcher])
    for _ in range(4):
        ProjectFactory(account=full, redcap_instance=instance)
    project = ProjectFactory(redcap_instance=instance, owner=researcher)

    with pytest.raises(ValidationError, match="allows 4 active projects, and it already has 4"):
        project_move_account(project=project, account=full, actor=server_admin)
    project.refresh_from_db()
    assert project.account != full


def test_moving_a_project_takes_a_free_slot_and_is_audited(researcher, instance):
    target = AccountFactory(owners=[researcher])
    ProjectFactory(account=target, redcap_instance=instance, status=Project.Status.ARCHIVED)
    project = ProjectFactory(
        redcap_instance=instance,
        owner=researcher,
        account=AccountFactory(owners=[researcher]),
    )

    project_move_account(project=project, account=target, actor=researcher)

    project.refresh_from_db()
    assert project.account == target
    assert AuditEvent.objects.filter(action="project.account_moved").exists()


def test_only_an_owner_of_both_or_an_administrator_moves_a_project(
    researcher, other_researcher, instance
):
    target = AccountFactory(owners=[other_researcher])
    project = ProjectFactory(redcap_instance=instance, owner=researcher)
    with pytest.raises(PermissionDenied):
        project_move_account(project=project, account=target, actor=researcher)
    with pytest.raises(PermissionDenied):
        project_move_account(project=project, account=target, actor=other_researcher)


# --- The Django admin cannot go around the project limit --------------------------------------


def _admin_change_data(project, **changes) -> dict:
    """Everything the admin's change form for `project` posts, with `changes` applied."""
    data = {
        "account": project.account_id,
        "redcap_instance": project.redcap_instance_id,
        "redcap_project_id": project.redcap_project_id,
        "title": project.title,
        "pi_name": project.pi_name,
        "pi_email": project.pi_email,
        "irb_protocol": project.irb_protocol,
        "time_zone": project.time_zone,
        "send_window_start": "09:00",
        "send_window_end": "20:00",
        "send_days": "[0, 1, 2, 3, 4]",
        "help_reply": "",
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    return {**data, **changes}


def test_the_django_admin_cannot_move_a_project_into_a_full_account(
    as_user, server_admin, instance
):
    full = AccountFactory(name="Full Lab")
    for _ in range(4):
        ProjectFactory(account=full, redcap_instance=instance)
    project = ProjectFactory(redcap_instance=instance)
    home = project.account
    client = as_user(server_admin)
    url = reverse("admin:projects_project_change", args=[project.pk])

    assert 'name="account"' not in client.get(url).content.decode()
    response = client.post(url, _admin_change_data(project, account=full.pk, title="Renamed"))

    assert response.status_code == 302  # the rest of the form was saved ...
    project.refresh_from_db()
    assert project.title == "Renamed"
    assert project.account == home  # ... but not the account
    assert full.projects.count() == 4
    assert not AuditEvent.objects.filter(action="project.account_moved").exists()


def test_the_django_admin_cannot_add_a_project(as_user, server_admin, instance):
    account = AccountFactory()
    client = as_user(server_admin)
    url = reverse("admin:projects_project_add")
    project = ProjectFactory.build(account=account, redcap_instance=instance)

    assert client.get(url).status_code == 403
    assert client.post(url, _admin_change_data(project)).status_code == 403
    assert not Project.objects.exists()
    changelist = client.get(reverse("admin:projects_project_changelist")).content.decode()
    assert url not in changelist  # no "Add project" button


# --- Moving from the project's Settings page ----------------------------------------------------


def _settings(client, project) -> str:
    return client.get(reverse("project-settings", args=[project.pk])).content.decode()


def test_an_owner_of_both_moves_the_project_from_its_settings_page(as_user, researcher, instance):
    home = AccountFactory(name="Home Lab", owners=[researcher])
    target = AccountFactory(name="Grant Lab", owners=[researcher])
    AccountFactory(name="Someone Else's Lab")
    project = ProjectFactory(account=home, redcap_instance=instance, owner=researcher)
    client = as_user(researcher)

    page = _settings(client, project)
    assert "Grant Lab" in page
    assert "Someone Else" not in page  # only accounts they own are offered
    response = client.post(
        reverse("project-account", args=[project.pk]), {"account": target.pk}, follow=True
    )

    project.refresh_from_db()
    assert project.account == target
    assert "is now billed to “Grant Lab”" in response.content.decode()
    assert AuditEvent.objects.filter(action="project.account_moved", actor=researcher).exists()


def test_moving_into_a_full_account_from_the_page_says_why_and_changes_nothing(
    as_user, researcher, instance
):
    target = AccountFactory(name="Full Lab", owners=[researcher])
    for _ in range(4):
        ProjectFactory(account=target, redcap_instance=instance)
    home = AccountFactory(name="Home Lab", owners=[researcher])
    project = ProjectFactory(account=home, redcap_instance=instance, owner=researcher)

    response = as_user(researcher).post(
        reverse("project-account", args=[project.pk]), {"account": target.pk}, follow=True
    )

    page = response.content.decode()
    assert "Nothing changed: The account “Full Lab” is on the Basic plan, which allows 4" in page
    project.refresh_from_db()
    assert project.account == home
    assert not AuditEvent.objects.filter(action="project.account_moved").exists()


def test_an_owner_cannot_move_a_project_to_an_account_they_do_not_own(
    as_user, researcher, other_researcher, instance
):
    theirs = AccountFactory(name="Their Lab", owners=[other_researcher])
    project = ProjectFactory(redcap_instance=instance, owner=researcher)
    home = project.account
    client = as_user(researcher)

    assert "Move to this account" not in _settings(client, project)
    response = client.post(
        reverse("project-account", args=[project.pk]), {"account": theirs.pk}, follow=True
    )

    assert "Nothing changed: Choose one of the accounts listed" in response.content.decode()
    project.refresh_from_db()
    assert project.account == home
    assert not AuditEvent.objects.filter(action="project.account_moved").exists()


def test_an_administrator_can_move_a_project_to_any_account(as_user, server_admin, instance):
    project = ProjectFactory(redcap_instance=instance)
    target = AccountFactory(name="Any Lab")
    client = as_user(server_admin)
    assert "Any Lab" in _settings(client, project)
    client.post(reverse("project-account", args=[project.pk]), {"account": target.pk})
    project.refresh_from_db()
    assert project.account == target
