"""Webhooks are checked against the address the owner gave the provider (SITE_URL + path, as the
provider page shows it), also when the app sits behind a TLS proxy it does not trust with
X-Forwarded-Proto, and sees another scheme and Host than the public ones."""

import re

import pytest
from django.urls import reverse

from messaging.gateways.twilio import compute_signature
from messaging.models import Message, Reply
from projects import crypto
from tests.factories import (
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

pytestmark = pytest.mark.django_db
TOKEN = "c" * 32
MOSIO_KEY = "mosio-key-proxy"
PHONE = "+12025550177"
PUBLIC = "https://texts.uni.test"
# What a TLS-terminating proxy forwards when DJANGO_BEHIND_PROXY is off: plain http to the
# app's own host name; its X-Forwarded-Proto header is there but not trusted.
BEHIND_PROXY = {
    "HTTP_HOST": "app-internal:8001",
    "HTTP_X_FORWARDED_PROTO": "https",
    "HTTP_X_FORWARDED_HOST": "texts.uni.test",
}


@pytest.fixture(autouse=True)
def _public_site(settings):
    settings.SITE_URL = PUBLIC
    settings.ALLOWED_HOSTS = ["texts.uni.test", "app-internal", "testserver"]
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.USE_X_FORWARDED_HOST = False


@pytest.fixture
def owner_client(client, researcher):
    client.force_login(researcher)
    return client


def _link(project, provider):
    config = (
        {"account_sid": "AC" + "2" * 32, "auth_token": TOKEN, "sender": "+12025550100"}
        if provider == "twilio"
        else {"api_key": MOSIO_KEY}
    )
    return ProviderLinkFactory(
        project=project, provider=provider, config_encrypted=crypto.encrypt_json(config)
    )


@pytest.fixture
def project(researcher):
    return ProjectFactory(owner=researcher)


@pytest.fixture
def person(project):
    return ParticipantFactory(
        project=project,
        record_id="3",
        phone_encrypted=crypto.encrypt(PHONE),
        phone_fingerprint=crypto.fingerprint(PHONE, purpose="phone"),
        phone_last4="0177",
    )


def _shown_address(owner_client, project) -> str:
    page = owner_client.get(reverse("project-provider", args=[project.pk])).content.decode()
    found = re.search(r'id="inbound-webhook-url">([^<]+)<', page)
    assert found, "the provider page shows no webhook address"
    return found.group(1)


def _path(url: str) -> str:
    return url.removeprefix(PUBLIC)


def _inbound(sid="SM" + "7" * 32, body="Hello"):
    return {"MessageSid": sid, "From": PHONE, "To": "+12025550100", "Body": body}


def test_the_provider_page_shows_the_site_url_address_and_a_post_signed_for_it_is_accepted_behind_a_proxy(  # noqa: E501
    client, owner_client, project, person
):
    link = _link(project, "twilio")
    shown = _shown_address(owner_client, project)
    assert shown == PUBLIC + reverse("twilio-inbound", args=[link.webhook_secret])
    params = _inbound()
    response = client.post(
        _path(shown),
        params,
        HTTP_X_TWILIO_SIGNATURE=compute_signature(shown, params, TOKEN),
        **BEHIND_PROXY,
    )
    assert response.status_code == 200
    assert Reply.objects.get(project=project).participant == person


@pytest.mark.parametrize(
    "tamper",
    ["body", "url", "token"],
)
def test_a_tampered_post_behind_the_proxy_is_refused(client, owner_client, project, tamper):
    link = _link(project, "twilio")
    shown = _shown_address(owner_client, project)
    params = _inbound()
    signed_url = shown.replace("texts.uni", "other.uni") if tamper == "url" else shown
    signature = compute_signature(signed_url, params, "d" * 32 if tamper == "token" else TOKEN)
    sent = {**params, "Body": "STOP"} if tamper == "body" else params
    response = client.post(_path(shown), sent, HTTP_X_TWILIO_SIGNATURE=signature, **BEHIND_PROXY)
    assert response.status_code == 403
    assert not Reply.objects.filter(project=project).exists()
    assert link.webhook_secret in shown


def test_a_post_signed_for_the_requests_own_address_is_still_accepted(client, project, person):
    """A site reached under a second name (Host allowed, SITE_URL another) keeps working."""
    link = _link(project, "twilio")
    path = reverse("twilio-inbound", args=[link.webhook_secret])
    params = _inbound()
    own = "http://texts.uni.test" + path
    response = client.post(
        path,
        params,
        HTTP_X_TWILIO_SIGNATURE=compute_signature(own, params, TOKEN),
        HTTP_HOST="texts.uni.test",
    )
    assert response.status_code == 200


def test_a_status_callback_signed_for_the_address_studytext_gave_twilio_is_accepted_behind_a_proxy(  # noqa: E501
    client, project, person
):
    from messaging.services.record import status_callback_url

    link = _link(project, "twilio")
    message = Message.objects.create(
        project=project,
        participant=person,
        rule=MessageRuleFactory(project=project),
        occurrence="x",
        dedup_key="proxy-x",
        due_at="2026-12-01T15:00Z",
        not_before="2026-12-01T15:00Z",
        status=Message.Status.SENT,
        provider_message_id="SM" + "e" * 32,
    )
    callback = status_callback_url(link)
    assert callback == PUBLIC + reverse("twilio-status", args=[link.webhook_secret])
    params = {"MessageSid": message.provider_message_id, "MessageStatus": "delivered"}
    tampered = {**params, "MessageStatus": "undelivered"}
    signature = compute_signature(callback, params, TOKEN)
    refused = client.post(
        _path(callback), tampered, HTTP_X_TWILIO_SIGNATURE=signature, **BEHIND_PROXY
    )
    assert refused.status_code == 403
    accepted = client.post(
        _path(callback), params, HTTP_X_TWILIO_SIGNATURE=signature, **BEHIND_PROXY
    )
    assert accepted.status_code == 204
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_mosio_posts_to_the_shown_address_behind_a_proxy_are_checked_by_key(
    client, owner_client, project, person
):
    link = _link(project, "mosio")
    shown = _shown_address(owner_client, project)
    assert shown == PUBLIC + reverse("mosio-inbound", args=[link.webhook_secret])
    post = {"ApiKey": MOSIO_KEY, "From": PHONE, "Message": "Hi", "MessageId": "m-1"}
    refused = client.post(_path(shown), {**post, "ApiKey": "wrong"}, **BEHIND_PROXY)
    assert refused.status_code == 403
    accepted = client.post(_path(shown), post, **BEHIND_PROXY)
    assert accepted.status_code == 200
    assert Reply.objects.filter(project=project, participant=person).count() == 1
