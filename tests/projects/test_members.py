"""Project members: invitations (with and without an account), roles, the last owner."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from portal.models import AuditEvent
from projects.models import Membership, ProjectInvitation
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

PASSWORD = "a-good-long-password"  # UserFactory's

pytestmark = pytest.mark.django_db
Role = Membership.Role


@pytest.fixture
def project(researcher):
    return ProjectFactory(title="Heart Health", owner=researcher)


@pytest.fixture
def owner_client(as_user, researcher):
    return as_user(researcher)


def members_url(project):
    return reverse("project-members", args=[project.pk])


def flash(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_inviting_someone_with_an_account_looks_the_same_and_they_join_at_sign_in(
    client, owner_client, project, django_capture_on_commit_callbacks
):
    colleague = UserFactory(email="casey@uni.test")
    with django_capture_on_commit_callbacks(execute=True):
        known = owner_client.post(
            members_url(project), {"email": "Casey@Uni.test", "role": "editor"}, follow=True
        )
        unknown = owner_client.post(
            members_url(project), {"email": "nobody@uni.test", "role": "editor"}, follow=True
        )
    # The same words, the same e-mail: inviting tells nobody who has an account.
    assert "casey@uni.test was invited as editor." in flash(known)
    assert "nobody@uni.test was invited as editor." in flash(unknown)
    assert flash(known).replace("casey", "X") == flash(unknown).replace("nobody", "X")
    bodies = {m.to[0]: m.body for m in mail.outbox}
    assert bodies["casey@uni.test"] == bodies["nobody@uni.test"].replace(
        "nobody@uni.test", "casey@uni.test"
    )
    assert "Heart Health" in mail.outbox[0].subject
    assert AuditEvent.objects.filter(action="member.invited", project_id=project.pk).exists()
    # Casey joins the next time they sign in.
    assert not Membership.objects.filter(project=project, user=colleague).exists()
    casey = client.__class__()
    casey.post(reverse("login"), {"username": "casey@uni.test", "password": PASSWORD})
    assert Membership.objects.get(project=project, user=colleague).role == Role.EDITOR
    assert not ProjectInvitation.objects.filter(email="casey@uni.test").exists()


def test_an_unknown_address_is_invited_and_joins_once_they_sign_up_and_verify(
    client, owner_client, project, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            members_url(project), {"email": "newbie@uni.test", "role": "viewer"}, follow=True
        )
    assert "newbie@uni.test was invited as viewer." in flash(response)
    assert "(invited)" in response.content.decode()
    invitation = ProjectInvitation.objects.get(project=project)
    assert (invitation.email, invitation.role) == ("newbie@uni.test", Role.VIEWER)
    [invite] = mail.outbox
    assert "create one with this address" in invite.body
    assert reverse("signup") in invite.body

    client.logout()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("signup"),
            {
                "full_name": "Nat Newbie",
                "email": "Newbie@uni.test",
                "time_zone": "America/Chicago",
                "password1": "correct horse battery",
                "password2": "correct horse battery",
            },
        )
    newbie = Membership.objects.filter(project=project, user__email="newbie@uni.test")
    assert not newbie.exists()  # not before the address is confirmed
    verification = mail.outbox[-1]
    link = re.search(r"https?://\S+/accounts/verify/\S+", verification.body).group(0)
    client.get(re.sub(r"^https?://[^/]+", "", link))
    assert newbie.get().role == Role.VIEWER
    assert not ProjectInvitation.objects.exists()
    assert AuditEvent.objects.filter(action="member.joined", project_id=project.pk).exists()


def test_inviting_a_member_or_an_invited_address_again_is_refused(owner_client, project):
    MembershipFactory(project=project, user=UserFactory(email="casey@uni.test"))
    response = owner_client.post(
        members_url(project), {"email": "casey@uni.test", "role": "viewer"}
    )
    assert "casey@uni.test is already a member of this project." in response.content.decode()
    owner_client.post(members_url(project), {"email": "newbie@uni.test", "role": "viewer"})
    response = owner_client.post(
        members_url(project), {"email": "newbie@uni.test", "role": "owner"}
    )
    assert "newbie@uni.test has already been invited." in response.content.decode()
    assert ProjectInvitation.objects.get().role == Role.VIEWER


def test_an_owner_changes_a_role_and_is_told_the_new_one(owner_client, project):
    membership = MembershipFactory(project=project, role=Role.VIEWER)
    response = owner_client.post(
        reverse("project-member-role", args=[project.pk, membership.pk]),
        {"role": "editor"},
        follow=True,
    )
    membership.refresh_from_db()
    assert membership.role == Role.EDITOR
    assert f"{membership.user.email} is now editor." in flash(response)
    event = AuditEvent.objects.get(action="member.role_changed")
    assert "Viewer → Editor" in event.message


def test_a_role_that_is_not_offered_is_refused(owner_client, project):
    membership = MembershipFactory(project=project, role=Role.VIEWER)
    response = owner_client.post(
        reverse("project-member-role", args=[project.pk, membership.pk]),
        {"role": "superuser"},
        follow=True,
    )
    assert "Choose owner, editor or viewer." in flash(response)
    membership.refresh_from_db()
    assert membership.role == Role.VIEWER


def test_the_last_owner_can_be_neither_demoted_nor_removed(owner_client, project, researcher):
    mine = Membership.objects.get(project=project, user=researcher)
    response = owner_client.post(
        reverse("project-member-role", args=[project.pk, mine.pk]), {"role": "editor"}, follow=True
    )
    assert "A project needs at least one owner." in flash(response)
    response = owner_client.post(
        reverse("project-member-remove", args=[project.pk, mine.pk]), follow=True
    )
    assert "A project needs at least one owner." in flash(response)
    mine.refresh_from_db()
    assert mine.role == Role.OWNER
    page = owner_client.get(members_url(project)).content.decode()
    assert "Only owner" in page
    assert ">Leave<" not in page


def test_with_a_second_owner_the_first_may_step_down_and_leave(owner_client, project, researcher):
    MembershipFactory(project=project, role=Role.OWNER)
    mine = Membership.objects.get(project=project, user=researcher)
    owner_client.post(
        reverse("project-member-role", args=[project.pk, mine.pk]), {"role": "viewer"}
    )
    mine.refresh_from_db()
    assert mine.role == Role.VIEWER
    response = owner_client.post(reverse("project-member-remove", args=[project.pk, mine.pk]))
    assert response.url == reverse("project-list")
    assert not Membership.objects.filter(pk=mine.pk).exists()


def test_a_viewer_may_leave_but_not_remove_others(as_user, project):
    viewer = MembershipFactory(project=project, role=Role.VIEWER)
    other = MembershipFactory(project=project, role=Role.VIEWER)
    client = as_user(viewer.user)
    assert (
        client.post(reverse("project-member-remove", args=[project.pk, other.pk])).status_code
        == 403
    )
    response = client.post(reverse("project-member-remove", args=[project.pk, viewer.pk]))
    assert response.status_code == 302
    assert Membership.objects.filter(pk=other.pk).exists()
    assert not Membership.objects.filter(pk=viewer.pk).exists()


def test_a_tampered_post_naming_another_projects_membership_or_invitation_is_refused(
    owner_client, project, researcher
):
    elsewhere = ProjectFactory(title="Lung Study")
    their_member = MembershipFactory(project=elsewhere, role=Role.OWNER)
    their_invitation = ProjectInvitation.objects.create(
        project=elsewhere, email="x@uni.test", role="viewer", invited_by=their_member.user
    )
    urls = [
        (reverse("project-member-role", args=[project.pk, their_member.pk]), {"role": "viewer"}),
        (reverse("project-member-remove", args=[project.pk, their_member.pk]), {}),
        (reverse("project-invitation-cancel", args=[project.pk, their_invitation.pk]), {}),
    ]
    for url, data in urls:
        assert owner_client.post(url, data).status_code == 404, url
    their_member.refresh_from_db()
    assert their_member.role == Role.OWNER
    assert ProjectInvitation.objects.filter(pk=their_invitation.pk).exists()


def test_an_owner_cancels_an_invitation(owner_client, project, researcher):
    invitation = ProjectInvitation.objects.create(
        project=project, email="x@uni.test", role="viewer", invited_by=researcher
    )
    response = owner_client.post(
        reverse("project-invitation-cancel", args=[project.pk, invitation.pk]), follow=True
    )
    assert "The invitation of x@uni.test was cancelled." in flash(response)
    assert not ProjectInvitation.objects.exists()


def test_a_viewer_sees_the_members_without_controls(as_user, project):
    viewer = MembershipFactory(project=project, role=Role.VIEWER)
    page = as_user(viewer.user).get(members_url(project)).content.decode()
    assert "Add a member" not in page
    assert 'name="role"' not in page
    assert ">Leave<" in page  # their own row only
