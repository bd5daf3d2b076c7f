"""Every project page and action against every kind of visitor.

Owner, editor and viewer get what their role allows and 403 above it; an outsider gets 404 (the
project is not even confirmed to exist); a server administrator acts as an owner (and alone sets
sending-hours bounds); an anonymous visitor is sent to sign in. A refused action writes nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.urls import resolve, reverse

from messaging.services.provider_links import provider_link_save
from portal.models import AuditEvent
from projects.models import Membership, Project, ProjectInvitation, SyncRun
from tests.factories import (
    AccountFactory,
    MembershipFactory,
    ParticipantFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PERSONAS = ["owner", "editor", "viewer", "outsider", "admin", "anonymous"]
RANK = {"viewer": 1, "editor": 2, "owner": 3}


@pytest.fixture
def project(researcher):
    return ProjectFactory(title="Heart Health", owner=researcher)


@pytest.fixture
def visitor(project, researcher, server_admin):
    """visitor(persona) -> the user to sign in as (None for anonymous)."""

    def _visitor(persona):
        if persona == "owner":
            return researcher
        if persona == "admin":
            return server_admin
        if persona == "anonymous":
            return None
        user = UserFactory()
        if persona != "outsider":
            MembershipFactory(project=project, user=user, role=persona)
        return user

    return _visitor


@dataclass(frozen=True)
class Case:
    name: str
    min_role: str  # viewer / editor / owner, or "admin" (server administrators only)
    allowed_status: int
    make: Callable  # make(project, owner) -> (url, POST data or None for a GET)


def _other_member(project, owner):
    return MembershipFactory(project=project, role=Membership.Role.VIEWER)


def _sandbox_provider(project, owner):
    provider_link_save(
        project=project, provider="sandbox", config={}, rate_per_second=1, actor=owner
    )


def _status(project, status):
    Project.objects.filter(pk=project.pk).update(status=status)


def _status_change(status, *, before=None, reason=""):
    def make(project, owner):
        if before:
            _status(project, before)
        return reverse("project-status", args=[project.pk]), {"status": status, "reason": reason}

    return make


def _run(project, owner):
    return SyncRun.objects.create(project=project, requested_by=owner)


CASES = [
    # --- pages -------------------------------------------------------------------------------
    Case("overview", "viewer", 200, lambda p, o: (reverse("project-detail", args=[p.pk]), None)),
    Case("members", "viewer", 200, lambda p, o: (reverse("project-members", args=[p.pk]), None)),
    Case("redcap", "viewer", 200, lambda p, o: (reverse("project-redcap", args=[p.pk]), None)),
    Case("provider", "viewer", 200, lambda p, o: (reverse("project-provider", args=[p.pk]), None)),
    # Without a REDCap link the mapping page sends everyone allowed to the REDCap step.
    Case("fields", "viewer", 302, lambda p, o: (reverse("project-fields", args=[p.pk]), None)),
    Case(
        "participants",
        "viewer",
        200,
        lambda p, o: (reverse("project-participants", args=[p.pk]), None),
    ),
    Case(
        "sync progress",
        "viewer",
        200,
        lambda p, o: (reverse("project-sync", args=[p.pk, _run(p, o).pk]), None),
    ),
    Case(
        "sync progress JSON",
        "viewer",
        200,
        lambda p, o: (reverse("project-sync", args=[p.pk, _run(p, o).pk]) + "?format=json", None),
    ),
    Case("settings", "viewer", 200, lambda p, o: (reverse("project-settings", args=[p.pk]), None)),
    # --- owners' actions ---------------------------------------------------------------------
    Case(
        "invite a member",
        "owner",
        302,
        lambda p, o: (
            reverse("project-members", args=[p.pk]),
            {"email": "new.person@uni.test", "role": "viewer"},
        ),
    ),
    Case(
        "change a role",
        "owner",
        302,
        lambda p, o: (
            reverse("project-member-role", args=[p.pk, _other_member(p, o).pk]),
            {"role": "editor"},
        ),
    ),
    Case(
        "remove a member",
        "owner",
        302,
        lambda p, o: (reverse("project-member-remove", args=[p.pk, _other_member(p, o).pk]), {}),
    ),
    Case(
        "cancel an invitation",
        "owner",
        302,
        lambda p, o: (
            reverse(
                "project-invitation-cancel",
                args=[
                    p.pk,
                    ProjectInvitation.objects.create(
                        project=p, email="x@uni.test", role="viewer", invited_by=o
                    ).pk,
                ],
            ),
            {},
        ),
    ),
    # A malformed token is refused on the form (200) before any call to REDCap.
    Case(
        "link REDCap",
        "owner",
        200,
        lambda p, o: (
            reverse("project-redcap", args=[p.pk]),
            {"redcap_instance": p.redcap_instance_id, "token": "not-a-token"},
        ),
    ),
    Case(
        "test the REDCap link",
        "owner",
        302,
        lambda p, o: (reverse("project-redcap-test", args=[p.pk]), {}),
    ),
    Case(
        "remove the REDCap link",
        "owner",
        302,
        lambda p, o: (reverse("project-redcap-remove", args=[p.pk]), {}),
    ),
    Case(
        "link the provider",
        "owner",
        302,
        lambda p, o: (
            reverse("project-provider", args=[p.pk]),
            {"provider": "sandbox", "rate_per_second": "2"},
        ),
    ),
    Case(
        "test the provider link",
        "owner",
        302,
        lambda p, o: (
            _sandbox_provider(p, o) or reverse("project-provider-action", args=[p.pk]),
            {"action": "test"},
        ),
    ),
    Case(
        "remove the provider link",
        "owner",
        302,
        lambda p, o: (
            _sandbox_provider(p, o) or reverse("project-provider-action", args=[p.pk]),
            {"action": "remove"},
        ),
    ),
    Case("pause the project", "owner", 302, _status_change("paused")),
    Case("resume the project", "owner", 302, _status_change("active", before="paused")),
    Case("archive the project", "owner", 302, _status_change("archived")),
    Case("un-archive the project", "owner", 302, _status_change("paused", before="archived")),
    # --- editors' actions --------------------------------------------------------------------
    Case(
        "save the field mapping",
        "editor",
        302,
        lambda p, o: (reverse("project-fields", args=[p.pk]), {"phone_field": "phone"}),
    ),
    Case(
        "start a sync",
        "editor",
        302,
        lambda p, o: (reverse("project-sync-start", args=[p.pk]), {}),
    ),
    Case(
        "change the HELP reply",
        "editor",
        302,
        lambda p, o: (
            reverse("project-settings", args=[p.pk]),
            {"help": "1", "help-help_reply": "Text STOP to stop. Questions: 555-0100."},
        ),
    ),
    Case(
        "reply from a sandbox phone",
        "editor",
        302,
        lambda p, o: (
            _sandbox_provider(p, o)
            or reverse("phone-simulator-reply", args=[p.pk, ParticipantFactory(project=p).pk]),
            {"body": "HELP"},
        ),
    ),
    Case(
        "set the sending hours",
        "owner",
        302,
        lambda p, o: (
            reverse("project-settings", args=[p.pk]),
            {
                "hours": "1",
                "hours-start": "10:00",
                "hours-end": "19:00",
                "hours-days": ["0", "1", "2", "3", "4"],
            },
        ),
    ),
    # --- server administrators only ----------------------------------------------------------
    Case(
        "set the sending-hours bounds",
        "admin",
        302,
        lambda p, o: (
            reverse("project-settings", args=[p.pk]),
            {
                "bounds": "1",
                "bounds-start": "10:00",
                "bounds-end": "19:00",
                "bounds-days": ["0", "1", "2", "3", "4"],
            },
        ),
    ),
]


def _move_account(project, owner):
    target = AccountFactory(name="Other Lab", owners=[owner])
    return reverse("project-account", args=[project.pk]), {"account": target.pk}


CASES += [
    # Refused for this project (its server is not the sandbox): a message, nothing written.
    Case(
        "create the REDCap sandbox project",
        "owner",
        302,
        lambda p, o: (reverse("project-redcap-sandbox", args=[p.pk]), {}),
    ),
    # Refused without a confirmed phone of one's own: a message, nothing written.
    Case(
        "send a test to my phone",
        "editor",
        302,
        lambda p, o: (reverse("test-text-send", args=[p.pk]), {"body": "Hi"}),
    ),
    Case(
        "my phone for tests",
        "editor",
        200,
        lambda p, o: (reverse("staff-phone", args=[p.pk]), None),
    ),
    Case("move to another billing account", "owner", 302, _move_account),
    Case(
        "create the REDCap Data Entry Trigger address",
        "owner",
        302,
        lambda p, o: (reverse("project-det", args=[p.pk]), {"action": "enable"}),
    ),
    Case(
        "my e-mail notices",
        "viewer",
        302,
        lambda p, o: (reverse("project-member-notices", args=[p.pk]), {"notify_flags": "on"}),
    ),
    Case("the inbox", "viewer", 200, lambda p, o: (reverse("inbox", args=[p.pk]), None)),
    Case(
        "the inbox's rows", "viewer", 200, lambda p, o: (reverse("inbox-rows", args=[p.pk]), None)
    ),
    Case(
        "mark the inbox read",
        "editor",
        302,
        lambda p, o: (reverse("inbox-read-all", args=[p.pk]), {}),
    ),
    Case("suspend the project", "admin", 302, _status_change("suspended", reason="Misuse.")),
    Case("lift a suspension", "admin", 302, _status_change("paused", before="suspended")),
]


def expected_status(case: Case, persona: str) -> int:
    if persona == "anonymous":
        return 302
    if persona == "outsider":
        return 404
    if persona == "admin":
        return case.allowed_status
    if case.min_role == "admin":
        return 403
    return case.allowed_status if RANK[persona] >= RANK[case.min_role] else 403


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_page_and_action_checks_the_visitors_role(
    as_user, project, researcher, visitor, case, persona
):
    user = visitor(persona)
    url, data = case.make(project, researcher)
    client = as_user(user)
    events_before = AuditEvent.objects.count()
    response = client.get(url) if data is None else client.post(url, data)

    expected = expected_status(case, persona)
    assert response.status_code == expected, (case.name, persona)
    if persona == "anonymous":
        assert response.url.startswith(reverse("login") + "?next=")
    if expected in (403, 404):
        assert AuditEvent.objects.count() == events_before  # refused: nothing was done
        assert "Heart Health" not in response.content.decode()


def test_the_matrix_covers_every_projects_route(project, researcher):
    """Every project-scoped route of projects/urls.py, and the project set-up routes that live in
    messaging/urls.py (named project-*: the SMS provider page and its actions), has a case."""
    from messaging.urls import urlpatterns as messaging_urlpatterns
    from projects.urls import urlpatterns

    # The routes the cases really request (each case's URL, resolved).
    covered = {resolve(urlsplit(case.make(project, researcher)[0]).path).url_name for case in CASES}
    hosted_by_messaging = {
        p.name for p in messaging_urlpatterns if p.name and p.name.startswith("project-")
    }
    assert hosted_by_messaging == {"project-provider", "project-provider-action"}
    # project-list is not project-scoped: tests/projects/test_views.py covers it.
    routes = {p.name for p in urlpatterns} - {"project-list"}
    assert routes | hosted_by_messaging <= covered
    # Other messaging routes may have cases too (the simulator's reply box).
    assert covered - routes - hosted_by_messaging <= {p.name for p in messaging_urlpatterns}
