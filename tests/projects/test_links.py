from urllib.parse import parse_qs

import httpx
import pytest
import respx
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse

from portal.models import AuditEvent
from projects import crypto
from projects.models import RedcapLink
from projects.sandbox.data import DEMO_TOKEN, LONGITUDINAL_TOKEN
from projects.services import links, mapping
from tests.factories import ProjectFactory


def test_it_links_a_token_that_belongs_to_the_approved_project(sandbox_project, researcher):
    link = links.redcap_link_set(project=sandbox_project, token=DEMO_TOKEN, actor=researcher)
    assert link.redcap_project_title == "Demo: Healthy Habits Study"
    assert link.token_last4 == DEMO_TOKEN[-4:]
    assert link.token == DEMO_TOKEN
    assert AuditEvent.objects.filter(
        action="redcap_link.created", project_id=sandbox_project.pk
    ).exists()


def test_it_refuses_a_token_of_another_redcap_project_and_names_the_id_it_found(
    sandbox_project, researcher
):
    with pytest.raises(ValidationError) as exc:
        links.redcap_link_set(project=sandbox_project, token=LONGITUDINAL_TOKEN, actor=researcher)
    message = str(exc.value)
    assert "belongs to REDCap project 102" in message
    assert "approved for project 101" in message
    assert not RedcapLink.objects.exists()


def test_it_refuses_a_token_redcap_rejects_in_words(sandbox_project, researcher):
    with pytest.raises(ValidationError) as exc:
        links.redcap_link_set(project=sandbox_project, token="0" * 32, actor=researcher)
    assert "token" in str(exc.value).lower()
    assert not RedcapLink.objects.exists()


@pytest.mark.parametrize("token", ["", "abc", "G" * 32, DEMO_TOKEN + "0"])
def test_it_refuses_a_malformed_token_without_calling_redcap(sandbox_project, researcher, token):
    with pytest.raises(ValidationError) as exc:
        links.redcap_link_set(project=sandbox_project, token=token, actor=researcher)
    assert "32 characters" in str(exc.value)


def test_test_connection_reports_version_and_title(linked_project, researcher):
    result = links.redcap_link_test(project=linked_project, actor=researcher)
    assert result["project_title"] == "Demo: Healthy Habits Study"
    assert result["version"]


def test_replacing_and_removing_the_token_is_audited(linked_project, researcher):
    links.redcap_link_set(project=linked_project, token=DEMO_TOKEN, actor=researcher)
    links.redcap_link_remove(project=linked_project, actor=researcher)
    actions = list(
        AuditEvent.objects.filter(project_id=linked_project.pk).values_list("action", flat=True)
    )
    assert "redcap_link.replaced" in actions
    assert "redcap_link.removed" in actions
    assert all(DEMO_TOKEN not in e.message for e in AuditEvent.objects.all())


def test_no_plaintext_token_in_the_raw_database_rows(linked_project, researcher):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM projects_redcaplink")
        redcap_rows = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM portal_auditevent")
        audit_rows = repr(cursor.fetchall())
    assert DEMO_TOKEN not in redcap_rows and DEMO_TOKEN.lower() not in redcap_rows
    assert DEMO_TOKEN not in audit_rows


def test_key_rotation_re_encrypts_every_secret_under_the_newest_key(
    linked_project, researcher, settings
):
    from cryptography.fernet import Fernet

    old = RedcapLink.objects.get(project=linked_project).token_encrypted
    new_key = Fernet.generate_key().decode()
    settings.SECRETS_ENCRYPTION_KEYS = [new_key, *settings.SECRETS_ENCRYPTION_KEYS]
    crypto.reset_keys()
    try:
        assert links.secrets_rotate() >= 1
        rotated = RedcapLink.objects.get(project=linked_project).token_encrypted
        assert rotated != old
        # Readable with the new key alone: the old one can now be retired.
        settings.SECRETS_ENCRYPTION_KEYS = [new_key]
        crypto.reset_keys()
        assert RedcapLink.objects.get(project=linked_project).token == DEMO_TOKEN
    finally:
        crypto.reset_keys()


# --- REDCap answers that are not what REDCap gives: an error in words, not a 500 ----------------
TOKEN = "0123456789ABCDEF0123456789ABCDEF"


def _fake_redcap(**project_info):
    """A REDCap (respx) whose project information is `project_info`; version 14.5.11."""

    def answer(request: httpx.Request) -> httpx.Response:
        content = parse_qs(request.content.decode())["content"][0]
        if content == "version":
            return httpx.Response(200, text="14.5.11")
        if content == "metadata":
            return httpx.Response(200, json=[])
        info = {"project_id": 4242, "project_title": "Sleep and Mood", "is_longitudinal": 0}
        info.update(project_info)
        return httpx.Response(200, json={k: v for k, v in info.items() if v is not None})

    mock = respx.mock(assert_all_called=True)
    mock.post("https://redcap.uni.test/api/").mock(side_effect=answer)
    return mock


@pytest.fixture
def project_4242(researcher, db):
    return ProjectFactory(redcap_project_id=4242, owner=researcher)


NOT_A_NUMBER = [("abc", "“abc”"), ("4242abc", "“4242abc”"), ("42.0", "“42.0”"), ("", "nothing")]


@pytest.mark.parametrize(("value", "shown"), [*NOT_A_NUMBER, (None, "nothing")])
def test_linking_refuses_a_project_id_that_is_not_a_number_in_words(
    project_4242, researcher, value, shown
):
    with _fake_redcap(project_id=value), pytest.raises(ValidationError) as exc:
        links.redcap_link_set(project=project_4242, token=TOKEN, actor=researcher)
    assert exc.value.message_dict["token"] == [
        f"REDCap's project information gives {shown} as the project id, where REDCap gives a "
        "whole number. Check that the REDCap server's API URL really points at REDCap; if it "
        "does, tell the REDCap administrators."
    ]
    assert not RedcapLink.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="redcap_link.").exists()


def test_linking_refuses_a_longitudinal_flag_that_is_not_a_number(project_4242, researcher):
    with _fake_redcap(is_longitudinal="yes"), pytest.raises(ValidationError) as exc:
        links.redcap_link_set(project=project_4242, token=TOKEN, actor=researcher)
    assert "gives “yes” as whether the project is longitudinal" in str(exc.value)
    assert not RedcapLink.objects.exists()


def test_reading_the_data_dictionary_explains_a_longitudinal_flag_that_is_not_a_number(
    project_4242, researcher
):
    with _fake_redcap():
        links.redcap_link_set(project=project_4242, token=TOKEN, actor=researcher)
    with _fake_redcap(is_longitudinal="yes"), pytest.raises(ValidationError) as exc:
        mapping.dictionary_load(project=project_4242)
    assert "gives “yes” as whether the project is longitudinal" in str(exc.value)


def test_the_fake_redcap_links_with_a_numeric_project_id(project_4242, researcher):
    """The same fake, answering as REDCap does (as a number, or as digits in a string)."""
    for value in (4242, "4242"):
        with _fake_redcap(project_id=value):
            link = links.redcap_link_set(project=project_4242, token=TOKEN, actor=researcher)
        assert link.redcap_project_title == "Sleep and Mood"


@pytest.mark.parametrize(("value", "shown"), NOT_A_NUMBER)
def test_test_connection_reports_a_project_id_that_is_not_a_number_in_words(
    as_user, project_4242, researcher, value, shown
):
    with _fake_redcap():
        links.redcap_link_set(project=project_4242, token=TOKEN, actor=researcher)
    expected = (
        f"REDCap's project information gives {shown} as the project id, where REDCap gives a "
        "whole number."
    )
    with _fake_redcap(project_id=value), pytest.raises(ValidationError) as exc:
        links.redcap_link_test(project=project_4242, actor=researcher)
    assert str(exc.value.messages[0]).startswith(expected)
    link = RedcapLink.objects.get(project=project_4242)
    assert link.last_error.startswith(expected)  # shown on the REDCap page until fixed
    # Through the page: the owner reads it, instead of a server error.
    with _fake_redcap(project_id=value):
        response = as_user(researcher).post(
            reverse("project-redcap-test", args=[project_4242.pk]), follow=True
        )
    assert response.status_code == 200
    assert "REDCap connection failed: " + expected in " ".join(
        str(m) for m in response.context["messages"]
    )
