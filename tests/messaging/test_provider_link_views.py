"""The provider-link page: Mosio and Twilio checked against respx mocks of their endpoints, the
sandbox, one Mosio key / one Twilio sender per project, test connection, owners only."""

import base64
import re

import httpx
import pytest
import respx
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from portal.models import AuditEvent
from projects.models import ProviderLink
from tests.factories import MembershipFactory, ProjectFactory

pytestmark = pytest.mark.django_db

MOSIO = "https://api.mosio.test/api/"
TWILIO = "https://api.twilio.test/2010-04-01/"
MOSIO_KEY = "mosio-key-7f3a9c21"
SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 28 + "9c1e"
SENDER = "+16155550100"
ACCOUNT = f"{TWILIO}Accounts/{SID}.json"
NUMBERS = f"{TWILIO}Accounts/{SID}/IncomingPhoneNumbers.json"
HISTORY = f"{MOSIO}text_history"


@pytest.fixture(autouse=True)
def _provider_bases():
    with override_settings(MOSIO_API_BASE=MOSIO, TWILIO_API_BASE=TWILIO):
        yield


@pytest.fixture
def providers():
    with respx.mock(assert_all_called=False) as mock:
        mock.get(HISTORY).mock(
            return_value=httpx.Response(200, json={"Success": True, "Contacts": []})
        )
        mock.get(ACCOUNT).mock(
            return_value=httpx.Response(
                200, json={"status": "active", "friendly_name": "Heart Lab", "type": "Full"}
            )
        )
        mock.get(NUMBERS).mock(
            return_value=httpx.Response(
                200, json={"incoming_phone_numbers": [{"phone_number": SENDER}]}
            )
        )
        yield mock


@pytest.fixture
def project(researcher):
    return ProjectFactory(title="Heart Health", owner=researcher)


@pytest.fixture
def owner(as_user, researcher):
    return as_user(researcher)


def page_url(project):
    return reverse("project-provider", args=[project.pk])


def action_url(project):
    return reverse("project-provider-action", args=[project.pk])


def mosio(key=MOSIO_KEY, rate="1"):
    return {"provider": "mosio", "api_key": key, "rate_per_second": rate}


def twilio(sid=SID, token=AUTH_TOKEN, sender=SENDER, rate="1"):
    return {
        "provider": "twilio",
        "account_sid": sid,
        "auth_token": token,
        "sender": sender,
        "rate_per_second": rate,
    }


def flash(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_an_owner_links_mosio_after_mosio_accepts_the_key(owner, project, providers):
    response = owner.post(page_url(project), mosio(rate="1"), follow=True)
    assert "Mosio linked and checked." in flash(response)
    request = providers.routes[0].calls.last.request
    assert request.headers["X-ApiKey"] == MOSIO_KEY
    assert request.url.params["Limit"] == "1"
    link = ProviderLink.objects.get(project=project)
    assert (link.provider, link.rate_per_second, link.config) == (
        "mosio",
        1,
        {"api_key": MOSIO_KEY},
    )
    page = response.content.decode()
    assert f"••••{MOSIO_KEY[-4:]}" in page
    assert MOSIO_KEY not in page
    assert AuditEvent.objects.filter(action="provider_link.created").exists()


def test_an_owner_links_twilio_with_the_account_and_the_number_checked(owner, project, providers):
    response = owner.post(page_url(project), twilio(sender="(615) 555-0100", rate="3"), follow=True)
    assert "Twilio linked and checked." in flash(response)
    account, numbers = providers.routes[1], providers.routes[2]
    expected_auth = "Basic " + base64.b64encode(f"{SID}:{AUTH_TOKEN}".encode()).decode()
    assert account.calls.last.request.headers["Authorization"] == expected_auth
    assert numbers.calls.last.request.url.params["PhoneNumber"] == SENDER
    link = ProviderLink.objects.get(project=project)
    assert link.config == {"account_sid": SID, "auth_token": AUTH_TOKEN, "sender": SENDER}
    assert link.rate_per_second == 3
    page = response.content.decode()
    assert "Heart Lab (full account, active)" in page
    assert f"••••{AUTH_TOKEN[-4:]}" in page
    assert AUTH_TOKEN not in page


def test_credentials_the_provider_refuses_are_not_stored(owner, project, providers):
    providers.get(ACCOUNT).mock(
        return_value=httpx.Response(
            401, json={"code": 20003, "message": "Authenticate", "status": 401}
        )
    )
    page = owner.post(page_url(project), twilio()).content.decode()
    assert "Twilio did not accept these credentials" in page
    assert "Check them on the provider settings page." in page
    assert not ProviderLink.objects.exists()


def test_malformed_credentials_are_refused_on_their_field_without_a_call(owner, project, providers):
    page = owner.post(
        page_url(project), twilio(sid="AC123", token="short", sender="hello")
    ).content.decode()
    assert "A Twilio account SID is AC followed by 32 hexadecimal characters" in page
    assert "A Twilio auth token is 32 hexadecimal characters" in page
    assert "Enter the sender as a phone number in international format" in page
    assert not any(route.called for route in providers.routes)
    assert not ProviderLink.objects.exists()


def test_a_new_link_offers_the_us_long_code_rate_of_1_text_a_second(owner, project):
    page = owner.get(page_url(project)).content.decode()
    assert re.search(r'<input[^>]*name="rate_per_second"[^>]*value="1"', page)
    assert ProviderLink._meta.get_field("rate_per_second").default == 1


@pytest.mark.parametrize("rate", ["0", "0.01", "501", "fast"])
def test_a_send_rate_out_of_range_is_refused(owner, project, providers, rate):
    response = owner.post(page_url(project), mosio(rate=rate))
    assert response.status_code == 200
    assert "has-error" in response.content.decode()
    assert not ProviderLink.objects.exists()


def test_one_mosio_key_serves_one_project_checked_by_fingerprint_without_decrypting(
    as_user, owner, project, providers, other_researcher, monkeypatch
):
    theirs = ProjectFactory(owner=other_researcher)
    as_user(other_researcher).post(page_url(theirs), mosio())
    assert ProviderLink.objects.filter(project=theirs).exists()

    import projects.crypto

    def no_decrypting(*args, **kwargs):
        raise AssertionError("the check must not decrypt stored credentials")

    monkeypatch.setattr(projects.crypto, "decrypt", no_decrypting)
    monkeypatch.setattr(projects.crypto, "decrypt_json", no_decrypting)
    page = as_user(project.memberships.get().user).post(page_url(project), mosio()).content
    assert (
        "This Mosio API key is already linked to another StudyText project. One Mosio API key "
        "serves one project"
    ) in page.decode()
    assert not ProviderLink.objects.filter(project=project).exists()


def test_one_twilio_sender_serves_one_project_even_from_another_account(
    as_user, project, researcher, providers, other_researcher
):
    theirs = ProjectFactory(owner=other_researcher)
    as_user(other_researcher).post(page_url(theirs), twilio())
    other_sid = "AC" + "fedcba9876543210" * 2
    providers.get(f"{TWILIO}Accounts/{other_sid}.json").mock(
        return_value=httpx.Response(200, json={"status": "active", "friendly_name": "Mine"})
    )
    providers.get(f"{TWILIO}Accounts/{other_sid}/IncomingPhoneNumbers.json").mock(
        return_value=httpx.Response(200, json={"incoming_phone_numbers": [{"x": 1}]})
    )
    page = as_user(researcher).post(page_url(project), twilio(sid=other_sid)).content.decode()
    assert (
        "This Twilio sender is already linked to another StudyText project. One Twilio sender "
        "serves one project"
    ) in page
    assert not ProviderLink.objects.filter(project=project).exists()


def test_a_project_may_re_link_its_own_key_and_the_change_is_audited(owner, project, providers):
    owner.post(page_url(project), mosio())
    response = owner.post(page_url(project), mosio(rate="2"), follow=True)
    assert "Mosio linked and checked." in flash(response)
    assert ProviderLink.objects.get().rate_per_second == 2
    assert AuditEvent.objects.filter(action="provider_link.replaced").exists()


def test_the_sandbox_needs_no_credentials(owner, project):
    response = owner.post(page_url(project), {"provider": "sandbox", "rate_per_second": "5"})
    assert response.status_code == 302
    link = ProviderLink.objects.get()
    assert (link.provider, link.rate_per_second) == ("sandbox", 5)
    page = owner.get(page_url(project)).content.decode()
    assert "phone simulator" in page
    assert reverse("phone-simulator", args=[project.pk]) in page


def test_the_sandbox_is_neither_offered_nor_accepted_when_it_is_off(owner, project, settings):
    settings.SANDBOX_ENABLED = False
    page = owner.get(page_url(project)).content.decode()
    assert 'value="sandbox"' not in page
    assert 'value="mosio"' in page and 'value="twilio"' in page
    response = owner.post(page_url(project), {"provider": "sandbox", "rate_per_second": "1"})
    assert response.status_code == 200
    assert "Select a valid choice." in response.content.decode()
    assert not ProviderLink.objects.exists()


def test_test_connection_calls_the_provider_and_says_what_it_found(owner, project, providers):
    owner.post(page_url(project), twilio())
    response = owner.post(action_url(project), {"action": "test"}, follow=True)
    assert "Connected: Heart Lab (full account, active)." in flash(response)
    assert providers.routes[1].call_count == 2  # at linking, then at the test


def test_a_failing_test_connection_is_reported_in_words_and_remembered(owner, project, providers):
    owner.post(page_url(project), mosio())
    providers.get(HISTORY).mock(return_value=httpx.Response(401))
    response = owner.post(action_url(project), {"action": "test"}, follow=True)
    assert "The provider check failed: Mosio did not accept the API key (HTTP 401)." in flash(
        response
    )
    assert "Mosio did not accept the API key" in ProviderLink.objects.get().last_error
    assert "badge-bad" in response.content.decode()


def test_removing_the_credentials_is_audited(owner, project):
    owner.post(page_url(project), {"provider": "sandbox", "rate_per_second": "1"})
    response = owner.post(action_url(project), {"action": "remove"}, follow=True)
    assert "Provider credentials removed." in flash(response)
    assert not ProviderLink.objects.exists()
    assert AuditEvent.objects.filter(action="provider_link.removed").exists()


def test_an_unknown_action_is_404(owner, project):
    owner.post(page_url(project), {"provider": "sandbox", "rate_per_second": "1"})
    assert owner.post(action_url(project), {"action": "explode"}).status_code == 404


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_owners_link_test_or_remove(as_user, project, providers, role):
    member = MembershipFactory(project=project, role=role).user
    client = as_user(member)
    page = client.get(page_url(project)).content.decode()
    assert "Only the project's owners can link the provider." in page
    assert 'id="provider-form"' not in page
    assert client.post(page_url(project), mosio()).status_code == 403
    assert not any(route.called for route in providers.routes)  # refused before any call
    as_user(project.memberships.get(role="owner").user).post(
        page_url(project), {"provider": "sandbox", "rate_per_second": "1"}
    )
    client = as_user(member)
    page = client.get(page_url(project)).content.decode()
    assert "Test connection" not in page
    for action in ("test", "remove", "resume"):
        assert client.post(action_url(project), {"action": action}).status_code == 403
    assert ProviderLink.objects.filter(project=project).exists()


def test_a_tampered_post_at_another_projects_link_is_refused(
    as_user, owner, project, other_researcher
):
    theirs = ProjectFactory(owner=other_researcher)
    as_user(other_researcher).post(
        page_url(theirs), {"provider": "sandbox", "rate_per_second": "1"}
    )
    client = as_user(project.memberships.get().user)
    assert client.post(action_url(theirs), {"action": "remove"}).status_code == 404
    assert client.post(page_url(theirs), mosio()).status_code == 404
    assert ProviderLink.objects.get(project=theirs).provider == "sandbox"


def test_no_provider_secret_is_stored_in_clear(owner, project, providers):
    owner.post(page_url(project), twilio())
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM projects_providerlink")
        rows = repr(cursor.fetchall())
    assert AUTH_TOKEN not in rows
    assert SENDER in rows  # the sender is shown on the page, so kept in `display` as is


def test_the_owner_sees_where_twilio_must_post_replies(owner, project, providers, settings):
    settings.SITE_URL = "https://studytext.uni.test"
    owner.post(page_url(project), twilio())
    link = ProviderLink.objects.get(project=project)
    page = owner.get(page_url(project)).content.decode()
    expected = f"https://studytext.uni.test/webhooks/twilio/{link.webhook_secret}/inbound/"
    assert reverse("twilio-inbound", args=[link.webhook_secret]) in expected
    assert f'id="inbound-webhook-url">{expected}<' in page
    assert "A message comes in" in page


def test_the_owner_sees_where_mosio_must_post_replies(owner, project, providers):
    owner.post(page_url(project), mosio())
    link = ProviderLink.objects.get(project=project)
    page = owner.get(page_url(project)).content.decode()
    assert reverse("mosio-inbound", args=[link.webhook_secret]) in page


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_members_who_are_not_owners_do_not_see_the_webhook_secret(
    as_user, owner, project, providers, role
):
    owner.post(page_url(project), twilio())
    link = ProviderLink.objects.get(project=project)
    member = MembershipFactory(project=project, role=role).user
    page = as_user(member).get(page_url(project)).content.decode()
    assert link.webhook_secret not in page
    assert 'id="inbound-webhook"' not in page


def test_the_sandbox_needs_no_webhook(owner, project):
    owner.post(page_url(project), {"provider": "sandbox", "rate_per_second": "1"})
    assert 'id="inbound-webhook"' not in owner.get(page_url(project)).content.decode()
