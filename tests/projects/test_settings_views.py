"""Project settings: the HELP reply (owners and editors) and the sending hours (owners, inside
the bounds the administrators set)."""

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


def hours(start="10:00", end="19:00", days=("0", "1", "2", "3", "4"), confirm=False, key="hours"):
    data = {
        key: "1",
        f"{key}-start": start,
        f"{key}-end": end,
        f"{key}-days": list(days),
    }
    if confirm:
        data[f"{key}-confirm_calling_hours"] = "on"
    return data


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
    assert 'id="hours-form"' not in page


def test_an_owner_narrows_the_sending_hours_inside_the_bounds(as_user, researcher, project):
    response = as_user(researcher).post(url(project), hours(), follow=True)
    page = response.content.decode()
    assert "Sending hours saved." in page
    project.refresh_from_db()
    assert (project.send_window_start, project.send_window_end) == (
        datetime.time(10, 0),
        datetime.time(19, 0),
    )
    assert project.send_days == [0, 1, 2, 3, 4]
    assert "Monday, Tuesday, Wednesday, Thursday, Friday" in page
    assert "Saturday" not in page.split('id="sending-hours-now"')[1].split("</p>")[0]
    assert AuditEvent.objects.filter(action="project.sending_hours_changed").exists()


def test_the_page_calls_them_sending_hours_and_never_quiet_hours(as_user, researcher, project):
    page = as_user(researcher).get(url(project)).content.decode()
    assert "<h2>Sending hours</h2>" in page
    assert "quiet hours" not in page.lower()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (hours(start="20:00", end="09:00"), "The latest time must be after the earliest time"),
        (hours(start="10:00", end="10:00"), "The latest time must be after the earliest time"),
        (hours(days=()), "Choose at least one day of the week."),
        (hours(days=("7",)), "Select a valid choice."),
        (hours(start="08:30"), "The server administrators allow texts from 9:00 a.m. to 8:00 p.m."),
        (hours(days=("6",)), "Choose sending hours inside those"),
    ],
)
def test_impossible_or_too_wide_sending_hours_are_refused_and_nothing_changes(
    as_user, researcher, project, data, message
):
    response = as_user(researcher).post(url(project), data)
    page = response.content.decode()
    assert message in page
    assert "Texts go out only between <strong>9:00 a.m.</strong>" in page
    project.refresh_from_db()
    assert project.send_window_start == datetime.time(9, 0)
    assert project.send_days == [0, 1, 2, 3, 4, 5]
    assert not AuditEvent.objects.filter(action="project.sending_hours_changed").exists()


def test_an_administrator_widens_the_bounds_only_with_the_calling_hours_confirmation(
    as_user, server_admin, researcher, project
):
    admin = as_user(server_admin)
    wide = hours(start="07:00", end="22:00", days=range(7), key="bounds")
    page = admin.post(url(project), wide).content.decode()
    assert "47 CFR 64.1200(c)(1)" in page
    assert "Tick the confirmation" in page
    project.refresh_from_db()
    assert project.send_bounds_start == datetime.time(9, 0)  # nothing changed

    admin.post(url(project), {**wide, "bounds-confirm_calling_hours": "on"})
    project.refresh_from_db()
    assert (project.send_bounds_start, project.send_bounds_end) == (
        datetime.time(7, 0),
        datetime.time(22, 0),
    )
    assert project.send_bounds_days == list(range(7))
    # The owner may now use the wider bounds, and is asked to confirm too.
    owner = as_user(researcher)
    early = hours(start="07:30", end="21:30", days=range(7))
    assert "47 CFR 64.1200(c)(1)" in owner.post(url(project), early).content.decode()
    owner.post(url(project), hours(start="07:30", end="21:30", days=range(7), confirm=True))
    project.refresh_from_db()
    assert project.send_window_start == datetime.time(7, 30)
    assert project.send_days == list(range(7))


def test_narrower_bounds_narrow_the_sending_hours_to_fit(as_user, server_admin, project):
    as_user(server_admin).post(url(project), hours(start="10:00", end="18:00", key="bounds"))
    project.refresh_from_db()
    assert (project.send_window_start, project.send_window_end) == (
        datetime.time(10, 0),
        datetime.time(18, 0),
    )
    assert project.send_days == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_editors_and_viewers_read_the_sending_hours_but_cannot_change_them(as_user, project, role):
    user = MembershipFactory(project=project, role=role).user
    client = as_user(user)
    page = client.get(url(project)).content.decode()
    assert "Set by the project's owners" in page
    assert 'id="hours-form"' not in page
    assert client.post(url(project), hours()).status_code == 403
    project.refresh_from_db()
    assert project.send_window_start == datetime.time(9, 0)


def test_an_owner_cannot_set_the_bounds(as_user, researcher, project):
    client = as_user(researcher)
    assert 'id="bounds-form"' not in client.get(url(project)).content.decode()
    assert client.post(url(project), hours(key="bounds")).status_code == 403
    project.refresh_from_db()
    assert project.send_bounds_start == datetime.time(9, 0)
