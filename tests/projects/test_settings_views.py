"""Project settings: the HELP reply (owners and editors) and quiet hours (administrators)."""

import datetime

import pytest
from django.urls import reverse

from portal.models import AuditEvent
from projects.models import Membership
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def project(researcher):
    return ProjectFactory(title="Heart Health", owner=researcher)


def url(project):
    return reverse("project-settings", args=[project.pk])


def quiet(start="10:00", end="19:00", days=("0", "1", "2", "3", "4")):
    return {
        "quiet": "1",
        "quiet-send_window_start": start,
        "quiet-send_window_end": end,
        "quiet-send_days": list(days),
    }


def test_an_editor_changes_the_help_reply(as_user, project):
    editor = MembershipFactory(project=project, role=Membership.Role.EDITOR).user
    client = as_user(editor)
    response = client.post(
        url(project),
        {"help": "1", "help-help_reply": "  Heart Health study. Questions: 555-0100.  "},
        follow=True,
    )
    assert "HELP reply saved." in response.content.decode()
    project.refresh_from_db()
    assert project.help_reply == "Heart Health study. Questions: 555-0100."
    assert AuditEvent.objects.filter(action="project.help_reply_changed").exists()


def test_a_help_reply_too_long_for_a_text_is_refused(as_user, researcher, project):
    response = as_user(researcher).post(url(project), {"help": "1", "help-help_reply": "x" * 400})
    assert response.status_code == 200
    assert "Ensure this value has at most 320 characters" in response.content.decode()
    project.refresh_from_db()
    assert project.help_reply == ""


def test_a_viewer_reads_the_help_reply_without_a_form(as_user, project):
    project.help_reply = "Call the study team."
    project.save()
    viewer = MembershipFactory(project=project, role=Membership.Role.VIEWER).user
    page = as_user(viewer).get(url(project)).content.decode()
    assert "Call the study team." in page
    assert 'id="help-form"' not in page
    assert 'id="quiet-form"' not in page


def test_an_administrator_sets_quiet_hours(as_user, server_admin, project):
    response = as_user(server_admin).post(url(project), quiet(), follow=True)
    assert "Quiet hours saved." in response.content.decode()
    project.refresh_from_db()
    assert (project.send_window_start, project.send_window_end) == (
        datetime.time(10, 0),
        datetime.time(19, 0),
    )
    assert project.send_days == [0, 1, 2, 3, 4]
    page = response.content.decode()
    assert "Monday, Tuesday, Wednesday, Thursday, Friday" in page
    assert "Saturday" not in page.split('id="quiet-form"')[0]
    assert AuditEvent.objects.filter(action="project.quiet_hours_changed").exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (quiet(start="20:00", end="09:00"), "The latest time must be after the earliest time."),
        (quiet(days=()), "This field is required."),
        (quiet(days=("7",)), "Select a valid choice."),
    ],
)
def test_impossible_quiet_hours_are_refused_and_not_shown_as_saved(
    as_user, server_admin, project, data, message
):
    response = as_user(server_admin).post(url(project), data)
    page = response.content.decode()
    assert message in page
    assert "Texts go out only between <strong>9:00 a.m.</strong>" in page
    project.refresh_from_db()
    assert project.send_window_start == datetime.time(9, 0)


@pytest.mark.parametrize("role", ["owner", "editor", "viewer"])
def test_members_read_quiet_hours_but_only_administrators_change_them(
    as_user, project, researcher, role
):
    user = researcher if role == "owner" else MembershipFactory(project=project, role=role).user
    client = as_user(user)
    page = client.get(url(project)).content.decode()
    assert "Set by the server administrators." in page
    assert 'id="quiet-form"' not in page
    assert client.post(url(project), quiet()).status_code == 403
    project.refresh_from_db()
    assert project.send_window_start == datetime.time(9, 0)
