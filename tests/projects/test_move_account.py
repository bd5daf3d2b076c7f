"""Moving a project to another billing account: the account's project limit holds."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

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
