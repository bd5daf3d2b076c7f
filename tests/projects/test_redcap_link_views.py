"""The REDCap link page against the sandbox over a live server (real HTTP)."""

import pytest
from django.urls import reverse

from portal.models import AuditEvent
from projects.models import RedcapLink
from projects.sandbox.data import DEMO_TOKEN, LONGITUDINAL_TOKEN, REDCAP_VERSION
from projects.services import links
from tests.factories import ProjectFactory, RedcapInstanceFactory


def url(project, name="project-redcap"):
    return reverse(name, args=[project.pk])


def flash(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def link(client, project, token, instance=None):
    return client.post(
        url(project),
        {"redcap_instance": (instance or project.redcap_instance).pk, "token": token},
        follow=True,
    )


def test_an_owner_links_the_token_and_sees_only_its_last_4_characters(
    as_user, researcher, sandbox_project
):
    response = link(as_user(researcher), sandbox_project, DEMO_TOKEN)
    page = response.content.decode()
    assert f"REDCap linked: “Demo: Healthy Habits Study” (REDCap {REDCAP_VERSION})." in flash(
        response
    )
    assert f"••••{DEMO_TOKEN[-4:]}" in page
    assert DEMO_TOKEN not in page and DEMO_TOKEN[:-4] not in page
    assert RedcapLink.objects.get(project=sandbox_project).token == DEMO_TOKEN


def test_a_token_of_another_redcap_project_is_refused_naming_the_id_found(
    as_user, researcher, sandbox_project
):
    page = link(as_user(researcher), sandbox_project, LONGITUDINAL_TOKEN).content.decode()
    assert "This token belongs to REDCap project 102" in page
    assert "approved for project 101" in page
    assert not RedcapLink.objects.exists()


def test_a_token_redcap_refuses_is_explained(as_user, researcher, sandbox_project):
    page = link(as_user(researcher), sandbox_project, "0123456789ABCDEF" * 2).content.decode()
    assert "token" in page.lower()
    assert "has-error" in page
    assert not RedcapLink.objects.exists()


def test_a_malformed_token_is_refused_without_asking_redcap(as_user, researcher, project_offline):
    page = link(as_user(researcher), project_offline, "hello").content.decode()
    assert "32 characters" in page


@pytest.fixture
def project_offline(researcher, db):
    """A project on an instance nobody could reach: any REDCap call would fail loudly."""
    return ProjectFactory(owner=researcher)


def test_an_unlisted_or_another_instance_is_refused(as_user, researcher, sandbox_project):
    client = as_user(researcher)
    retired = RedcapInstanceFactory(name="Retired REDCap", is_active=False)
    other = RedcapInstanceFactory(name="Other REDCap", api_url="https://other.uni.test/api/")
    page = link(client, sandbox_project, DEMO_TOKEN, instance=retired).content.decode()
    assert "That REDCap server is not on the administrators&#x27; list." in page
    page = link(client, sandbox_project, DEMO_TOKEN, instance=other).content.decode()
    assert "Link a token from that server." in page
    response = client.post(url(sandbox_project), {"redcap_instance": 99999, "token": DEMO_TOKEN})
    assert "not on the administrators" in response.content.decode()
    assert not RedcapLink.objects.exists()


def test_test_connection_shows_the_version_and_title(as_user, researcher, linked_project):
    response = as_user(researcher).post(url(linked_project, "project-redcap-test"), follow=True)
    assert (
        f"Connected to REDCap {REDCAP_VERSION}: project 101, “Demo: Healthy Habits Study”."
        in flash(response)
    )
    assert RedcapLink.objects.get().last_checked_at is not None


def test_test_connection_reports_a_revoked_token_in_words(as_user, researcher, linked_project):
    from projects.crypto import encrypt

    RedcapLink.objects.update(token_encrypted=encrypt("0123456789ABCDEF" * 2))
    response = as_user(researcher).post(url(linked_project, "project-redcap-test"), follow=True)
    assert "REDCap connection failed:" in flash(response)
    stored = RedcapLink.objects.get()
    assert stored.last_error
    assert "badge-bad" in response.content.decode()


def test_removing_the_token_is_audited_and_says_what_stops(as_user, researcher, linked_project):
    response = as_user(researcher).post(url(linked_project, "project-redcap-remove"), follow=True)
    assert "Sends and syncs stop until a new one is linked." in flash(response)
    assert not RedcapLink.objects.exists()
    assert AuditEvent.objects.filter(action="redcap_link.removed").exists()
    assert "Not linked yet" in response.content.decode()


def test_a_tampered_post_at_another_projects_link_is_refused(
    as_user, researcher, linked_project, other_researcher, sandbox_instance
):
    theirs = ProjectFactory(
        redcap_instance=sandbox_instance, redcap_project_id=102, owner=other_researcher
    )
    links.redcap_link_set(project=theirs, token=LONGITUDINAL_TOKEN, actor=other_researcher)
    client = as_user(researcher)  # owns linked_project, not theirs
    for name in ("project-redcap-remove", "project-redcap-test"):
        assert client.post(url(theirs, name)).status_code == 404
    response = client.post(
        url(theirs), {"redcap_instance": sandbox_instance.pk, "token": DEMO_TOKEN}
    )
    assert response.status_code == 404
    assert RedcapLink.objects.get(project=theirs).token == LONGITUDINAL_TOKEN


def test_viewers_and_editors_see_the_link_without_its_controls(as_user, linked_project, db):
    from tests.factories import MembershipFactory

    for role in ("viewer", "editor"):
        member = MembershipFactory(project=linked_project, role=role).user
        page = as_user(member).get(url(linked_project)).content.decode()
        assert f"••••{DEMO_TOKEN[-4:]}" in page
        assert "Test connection" not in page
        assert "Remove token" not in page
        assert "Only the project's owners can link or replace the token." in page


def test_the_token_never_reaches_an_error_report(rf, researcher, sandbox_project, monkeypatch):
    """A crash deep in the REDCap call must not put the token into Django's error report
    (the e-mail to the administrators, or a 500 page shown with DEBUG on)."""
    import sys

    import httpx
    from django.contrib.messages.storage.fallback import FallbackStorage
    from django.views.debug import ExceptionReporter

    from projects import views

    def explode(*args, **kwargs):
        raise RuntimeError("the HTTP library crashed")

    monkeypatch.setattr(httpx.Client, "post", explode)
    request = rf.post(
        url(sandbox_project),
        {"redcap_instance": sandbox_project.redcap_instance_id, "token": DEMO_TOKEN},
    )
    request.user = researcher
    request.session = {}
    request._messages = FallbackStorage(request)
    try:
        views.redcap_link(request, pk=sandbox_project.pk)
    except RuntimeError:
        exc_info = sys.exc_info()
    else:
        pytest.fail("the crash did not propagate")
    reporter = ExceptionReporter(request, *exc_info)
    for report in (reporter.get_traceback_text(), reporter.get_traceback_html()):
        assert "the HTTP library crashed" in report
        assert DEMO_TOKEN not in report and DEMO_TOKEN.lower() not in report
