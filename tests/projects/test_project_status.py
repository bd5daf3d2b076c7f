"""Pausing, archiving and suspending a project: who may, the plan's project slots, the banner on
every project page, and that no text leaves a project that is not active."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from messaging import sender
from messaging.gateways import locmem
from messaging.models import Message
from messaging.services import outbox
from portal.models import AuditEvent
from projects.models import Membership, Project, RedcapLink, SyncRun
from projects.services import project_set_status, project_status_changes_for, sync
from tests.factories import (
    AccountFactory,
    FieldMappingFactory,
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    PlanFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

pytestmark = pytest.mark.django_db
Status = Project.Status


@pytest.fixture
def project(researcher):
    return ProjectFactory(title="Heart Health", owner=researcher)


def member(project, role):
    return MembershipFactory(project=project, role=role).user


def status_of(project) -> str:
    return Project.objects.values_list("status", flat=True).get(pk=project.pk)


# --- The service ----------------------------------------------------------------------------
def test_an_owner_pauses_with_a_reason_and_resumes(project, researcher):
    project_set_status(
        project=project, status=Status.PAUSED, actor=researcher, reason="IRB amendment"
    )
    project.refresh_from_db()
    assert project.status == Status.PAUSED
    assert project.status_reason == "IRB amendment"
    assert project.status_changed_by == researcher and project.status_changed_at
    paused = AuditEvent.objects.get(action="project.paused")
    assert paused.message == (
        "Project paused: no texts go out until it is resumed. Reason: IRB amendment"
    )
    project_set_status(project=project, status=Status.ACTIVE, actor=researcher)
    project.refresh_from_db()
    assert project.status == Status.ACTIVE and project.status_reason == ""
    assert AuditEvent.objects.filter(action="project.resumed").exists()


def test_only_administrators_suspend_and_a_reason_is_required(
    project, researcher, server_admin, django_capture_on_commit_callbacks
):
    with pytest.raises(PermissionDenied, match="Only the server administrators suspend"):
        project_set_status(project=project, status=Status.SUSPENDED, actor=researcher, reason="x")
    with pytest.raises(ValidationError) as exc:
        project_set_status(project=project, status=Status.SUSPENDED, actor=server_admin)
    assert exc.value.message_dict == {"reason": ["Say why, so the team knows what to fix."]}
    assert status_of(project) == Status.ACTIVE
    with django_capture_on_commit_callbacks(execute=True):
        project_set_status(
            project=project,
            status=Status.SUSPENDED,
            actor=server_admin,
            reason="Texts were sent without IRB approval.",
        )
    assert status_of(project) == Status.SUSPENDED
    assert AuditEvent.objects.get(action="project.suspended").actor == server_admin
    (email,) = mail.outbox
    assert email.to == [researcher.email]
    assert email.subject == "[StudyText] Heart Health is suspended by an administrator"
    assert "Reason: Texts were sent without IRB approval." in email.body


def test_owners_cannot_touch_a_suspended_project_and_a_lifted_one_comes_back_paused(
    project, researcher, server_admin, django_capture_on_commit_callbacks
):
    project_set_status(project=project, status=Status.SUSPENDED, actor=server_admin, reason="x")
    for wanted in (Status.ACTIVE, Status.PAUSED, Status.ARCHIVED):
        with pytest.raises((PermissionDenied, ValidationError)):
            project_set_status(project=project, status=wanted, actor=researcher)
    project.refresh_from_db()
    assert project.status == Status.SUSPENDED
    assert project_status_changes_for(project=project, user=researcher) == []
    with django_capture_on_commit_callbacks(execute=True):
        project_set_status(project=project, status=Status.PAUSED, actor=server_admin)
    assert status_of(project) == Status.PAUSED
    assert AuditEvent.objects.filter(action="project.unsuspended").exists()
    assert mail.outbox[-1].subject == "[StudyText] Heart Health is no longer suspended"


@pytest.mark.parametrize(
    ("start", "wanted", "message"),
    [
        (Status.PAUSED, Status.PAUSED, "“Heart Health” is already paused."),
        (Status.ACTIVE, Status.ACTIVE, "“Heart Health” is already active."),
        (Status.ARCHIVED, Status.ACTIVE, "An archived project is un-archived first"),
        (Status.SUSPENDED, Status.ACTIVE, "A suspended project is unsuspended first"),
        (Status.ACTIVE, "deleted", "“deleted” is not a project status."),
    ],
)
def test_impossible_changes_are_refused_in_words(project, server_admin, start, wanted, message):
    Project.objects.filter(pk=project.pk).update(status=start)
    with pytest.raises(ValidationError, match=message):
        project_set_status(project=project, status=wanted, actor=server_admin)
    assert status_of(project) == start


def test_archiving_frees_a_slot_and_un_archiving_needs_one(researcher):
    account = AccountFactory(plan=PlanFactory(name="Duo", project_limit=2))
    first = ProjectFactory(account=account, owner=researcher, title="First")
    ProjectFactory(account=account, owner=researcher, title="Second")
    project_set_status(project=first, status=Status.ARCHIVED, actor=researcher)
    ProjectFactory(account=account, owner=researcher, title="Third")  # took the freed slot
    with pytest.raises(ValidationError) as exc:
        project_set_status(project=first, status=Status.PAUSED, actor=researcher)
    assert exc.value.messages == [
        f"The account “{account.name}” is on the Duo plan, which allows 2 active projects, "
        "and it already has 2. Archive one of its projects or move the account to a larger "
        "plan first."
    ]
    assert status_of(first) == Status.ARCHIVED
    assert not AuditEvent.objects.filter(action="project.unarchived").exists()
    third = Project.objects.get(title="Third")
    project_set_status(project=third, status=Status.ARCHIVED, actor=researcher)
    project_set_status(project=first, status=Status.PAUSED, actor=researcher)
    assert status_of(first) == Status.PAUSED  # back, but texting waits for Resume
    assert AuditEvent.objects.filter(action="project.unarchived").exists()


def test_the_buttons_offered_follow_the_role_and_the_status(project, researcher, server_admin):
    editor = member(project, Membership.Role.EDITOR)
    assert project_status_changes_for(project=project, user=researcher) == [
        Status.PAUSED,
        Status.ARCHIVED,
    ]
    assert project_status_changes_for(project=project, user=editor) == []
    assert project_status_changes_for(project=project, user=server_admin) == [
        Status.PAUSED,
        Status.ARCHIVED,
        Status.SUSPENDED,
    ]


# --- No texts leave a project that is not active ----------------------------------------------


@pytest.fixture
def sent():
    locmem.reset()
    yield locmem.outbox
    locmem.reset()


@pytest.mark.parametrize("status", [Status.PAUSED, Status.SUSPENDED, Status.ARCHIVED])
def test_a_project_that_is_not_active_releases_no_texts_through_the_sender(
    researcher, server_admin, status, sent
):
    project = ProjectFactory(owner=researcher, always_open=True)
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project)
    ParticipantFactory(project=project, record_id="1")
    ParticipantFactory(project=project, record_id="2")
    # A body that pipes nothing from REDCap (a piped name is fetched from REDCap at release).
    rule = MessageRuleFactory(project=project, body="A reminder from the study.")
    outbox.send_now(rule=rule, actor=researcher)
    project_set_status(project=project, status=status, actor=server_admin, reason="Checking.")
    report = sender.run(max_seconds=5)
    assert report.sent == 0 and sent == []
    # Paused and suspended projects keep their queue; an archived one's texts are cancelled.
    waiting = Message.Status.CANCELLED if status == Status.ARCHIVED else Message.Status.QUEUED
    assert set(Message.objects.values_list("status", flat=True)) == {waiting}
    if status != Status.PAUSED:  # archived and suspended projects come back paused
        project_set_status(project=project, status=Status.PAUSED, actor=server_admin)
        assert sender.run(max_seconds=5).sent == 0
    project_set_status(project=project, status=Status.ACTIVE, actor=researcher)
    expected = 0 if status == Status.ARCHIVED else 2
    assert sender.run(max_seconds=5).sent == expected
    assert len(sent) == expected


def test_paused_projects_keep_syncing_but_suspended_and_archived_do_not(researcher):
    for status in Status.values:
        project = ProjectFactory(owner=researcher, status=status, title=status)
        FieldMappingFactory(project=project)
        RedcapLink.objects.create(
            project=project, token_encrypted="x", token_last4="abcd", linked_by=researcher
        )
    # The runs are queued after the commit, which a test transaction never reaches.
    assert sync.sync_all_due() == 2
    synced = set(SyncRun.objects.values_list("project__status", flat=True))
    assert synced == {Status.ACTIVE, Status.PAUSED}


# --- Pages ----------------------------------------------------------------------------------
def settings_url(project):
    return reverse("project-settings", args=[project.pk])


def post_status(client, project, status, reason=""):
    return client.post(
        reverse("project-status", args=[project.pk]),
        {"status": status, "reason": reason},
        follow=True,
    )


def test_an_owner_pauses_and_resumes_from_the_settings_page(as_user, project, researcher):
    client = as_user(researcher)
    page = client.get(settings_url(project)).content.decode()
    assert 'id="pause-form"' in page and 'id="archive-form"' in page
    assert 'id="suspend-form"' not in page and 'id="resume-form"' not in page
    response = post_status(client, project, "paused", "IRB amendment under review")
    page = response.content.decode()
    assert "“Heart Health” is paused: no texts go out until it is resumed." in page
    assert 'id="status-banner"' in page and 'id="resume-form"' in page
    response = post_status(client, project, "active")
    assert "“Heart Health” is active: texts go out again." in response.content.decode()
    assert 'id="status-banner"' not in response.content.decode()


def test_a_refused_un_archive_says_why_on_the_page(as_user, researcher):
    account = AccountFactory(plan=PlanFactory(name="Solo", project_limit=1))
    archived = ProjectFactory(account=account, owner=researcher, status=Status.ARCHIVED)
    ProjectFactory(account=account, owner=researcher)
    client = as_user(researcher)
    page = client.get(settings_url(archived)).content.decode()
    assert 'id="unarchive-form"' in page
    assert "its Solo plan allows 1, and 1 is in use." in page
    page = post_status(client, archived, "paused").content.decode()
    assert "which allows 1 active project, and it already has 1." in page
    assert status_of(archived) == Status.ARCHIVED


def test_an_administrator_suspends_from_the_settings_page(as_user, project, server_admin):
    client = as_user(server_admin)
    assert 'id="suspend-form"' in client.get(settings_url(project)).content.decode()
    page = post_status(client, project, "suspended").content.decode()
    assert "Say why, so the team knows what to fix." in page
    assert status_of(project) == Status.ACTIVE
    page = post_status(client, project, "suspended", "Unapproved wording.").content.decode()
    assert status_of(project) == Status.SUSPENDED
    assert 'id="unsuspend-form"' in page


def test_a_suspended_projects_team_sees_the_reason_and_no_buttons(
    as_user, project, researcher, server_admin
):
    project_set_status(
        project=project, status=Status.SUSPENDED, actor=server_admin, reason="Unapproved wording."
    )
    page = as_user(researcher).get(settings_url(project)).content.decode()
    assert "Reason: Unapproved wording." in page
    assert "Contact the server administrators once the reason is resolved." in page
    assert "<form" not in page.split('id="project-status"')[1].split("</section>")[0]


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (Status.PAUSED, "Texting is paused: no texts go out while this project is paused."),
        (
            Status.SUSPENDED,
            "Suspended by the server administrators: no texts go out while this project is "
            "suspended.",
        ),
        (Status.ARCHIVED, "This project is archived: no texts go out while it is archived."),
    ],
)
def test_every_project_page_shows_the_banner(as_user, project, researcher, status, words):
    Project.objects.filter(pk=project.pk).update(status=status, status_reason="Checking.")
    viewer = member(project, Membership.Role.VIEWER)
    client = as_user(viewer)
    for name in (
        "project-detail",
        "project-participants",
        "project-members",
        "project-redcap",
        "project-settings",
        "rule-list",
        "message-log",
        "project-provider",
    ):
        page = client.get(reverse(name, args=[project.pk])).content.decode()
        assert words in page, name
        assert "Reason: Checking." in page, name
    assert "An owner can" in page or "Contact the server administrators" in page


def test_an_active_project_has_no_banner(as_user, project, researcher):
    page = as_user(researcher).get(reverse("project-detail", args=[project.pk])).content.decode()
    assert 'id="status-banner"' not in page


def test_the_django_admin_cannot_change_the_status_behind_the_services_back(
    as_user, project, server_admin
):
    page = (
        as_user(server_admin)
        .get(reverse("admin:projects_project_change", args=[project.pk]))
        .content.decode()
    )
    assert "Active" in page
    assert 'name="status"' not in page
