"""Replies deduplicated per provider link, the sandbox unreachable when it is off, webhooks that
answer 4xx (not 500) when a link's settings cannot be decrypted, and a rate limit per link.

The first two tests reproduce the security review's findings (they failed before): one Mosio
project could pre-claim another's reply ids and swallow its STOP, and a project whose stored
provider is "sandbox" kept its phone simulator with SANDBOX_ENABLED off."""

import logging

import pytest
from django.urls import reverse

from messaging.gateways import GatewayError, Reason, get_gateway
from messaging.models import OptOut, Reply
from projects import crypto
from projects.models import Membership
from tests.factories import (
    MembershipFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

pytestmark = pytest.mark.django_db
PHONE = "+12025550123"


def mosio_link(project, key):
    return ProviderLinkFactory(
        project=project, provider="mosio", config_encrypted=crypto.encrypt_json({"api_key": key})
    )


def participant(project):
    return ParticipantFactory(
        project=project,
        record_id="7",
        phone_encrypted=crypto.encrypt(PHONE),
        phone_fingerprint=crypto.fingerprint(PHONE, purpose="phone"),
        phone_last4="0123",
    )


def mosio_post(client, link, key, body, message_id):
    url = reverse("mosio-inbound", args=[link.webhook_secret])
    return client.post(
        url, {"ApiKey": key, "MessageId": message_id, "From": "12025550123", "Body": body}
    )


def test_another_project_cannot_pre_claim_a_reply_id_and_swallow_a_stop(client, researcher):
    victim_project = ProjectFactory(owner=researcher)
    victim = participant(victim_project)
    victim_link = mosio_link(victim_project, "victim-key-123")
    attacker_link = mosio_link(ProjectFactory(), "attacker-key-9")
    # The attacker's project posts the id the victim's STOP will carry, first.
    assert mosio_post(client, attacker_link, "attacker-key-9", "hi", "m-42").status_code == 200
    assert mosio_post(client, victim_link, "victim-key-123", "STOP", "m-42").status_code == 200
    assert Reply.objects.filter(provider_link=victim_link, keyword="stop").exists()
    assert OptOut.objects.filter(participant=victim, revoked_at=None).exists()
    # A retry of the victim's own webhook is still stored once.
    mosio_post(client, victim_link, "victim-key-123", "STOP", "m-42")
    assert Reply.objects.filter(provider_link=victim_link).count() == 1


def test_with_the_sandbox_off_a_sandbox_project_has_no_simulator(as_user, researcher, settings):
    project = ProjectFactory(owner=researcher)
    person = participant(project)
    link = ProviderLinkFactory(project=project, provider="sandbox")
    settings.SANDBOX_ENABLED = False
    settings.SMS_GATEWAY_OVERRIDE = ""
    editor = MembershipFactory(project=project, role=Membership.Role.EDITOR).user
    client = as_user(editor)
    assert client.get(reverse("phone-simulator", args=[project.pk])).status_code == 404
    response = client.post(
        reverse("phone-simulator-reply", args=[project.pk, person.pk]), {"body": "STOP"}
    )
    assert response.status_code == 404
    assert not Reply.objects.exists()
    assert "Phones" not in client.get(reverse("rule-list", args=[project.pk])).content.decode()
    # Its texts go nowhere: the gateway refuses as bad credentials (the sender pauses the link).
    with pytest.raises(GatewayError) as caught:
        get_gateway(link).send(to=PHONE, body="hello")
    assert caught.value.reason is Reason.BAD_CREDENTIALS
    assert "turned off" in caught.value.message


def test_the_sandbox_redcap_answers_404_when_the_sandbox_is_off(client, settings):
    settings.SANDBOX_ENABLED = False
    response = client.post("/sandbox/redcap/api/", {"token": "A" * 32, "content": "version"})
    assert response.status_code == 404


def test_a_webhook_whose_link_cannot_be_decrypted_answers_4xx_and_logs_the_link(client, caplog):
    link = ProviderLinkFactory(provider="mosio", config_encrypted="not-a-fernet-token")
    with caplog.at_level(logging.ERROR, logger="messaging.views.webhooks"):
        response = mosio_post(client, link, "any-key-1234", "STOP", "m-1")
    assert 400 <= response.status_code < 500
    assert f"provider link {link.pk}" in caplog.text
    twilio = ProviderLinkFactory(provider="twilio", config_encrypted="not-a-fernet-token")
    url = reverse("twilio-inbound", args=[twilio.webhook_secret])
    response = client.post(url, {"MessageSid": "SM1", "From": PHONE, "Body": "STOP"})
    assert 400 <= response.status_code < 500
    assert not Reply.objects.exists()


def test_each_webhook_link_is_rate_limited_with_a_429(client, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "webhook": (3, 60)}
    link = mosio_link(ProjectFactory(), "the-right-key-1")
    statuses = [
        mosio_post(client, link, "the-right-key-1", "hi", f"m-{n}").status_code for n in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    response = mosio_post(client, link, "the-right-key-1", "hi", "m-9")
    assert response["Retry-After"]
    other = mosio_link(ProjectFactory(), "another-key-12")
    assert mosio_post(client, other, "another-key-12", "hi", "m-1").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_flag_e_mail_that_fails_does_not_skip_the_callbacks_after_it(monkeypatch):
    """The Mosio poll stores many replies in one transaction: a flagged reply's e-mail raising
    at commit must not skip what later replies handed out (a survey's write-back)."""
    from django.db import transaction

    from messaging.gateways.base import InboundSms
    from messaging.models import Reply
    from messaging.services import notices
    from messaging.services.inbound import inbound_receive
    from tests.factories import ProviderLinkFactory

    def smtp_down(*a, **kw):
        raise OSError("SMTP down")

    monkeypatch.setattr(notices.mail, "send", smtp_down)
    link = ProviderLinkFactory(provider="sandbox")
    ran = []
    with transaction.atomic():
        inbound_receive(link=link, sms=InboundSms("m-9", "+12025550999", "who is this"))
        transaction.on_commit(lambda: ran.append("write-back"))
    assert ran == ["write-back"]
    assert Reply.objects.get().flag == Reply.Flag.UNKNOWN_NUMBER


def test_the_number_is_normalised_by_one_public_function_the_poll_shares():
    from messaging.services import inbound, poll

    assert inbound.normalise_number("1 (202) 555-0123") == "+12025550123"
    assert inbound.normalise_number("") == ""
    assert poll.normalise_number is inbound.normalise_number


def test_the_survey_engine_defers_and_skips_with_the_senders_own_functions():
    from messaging.services import conversations, release

    assert conversations.defer is release.defer
    assert conversations.skip is release.skip
    assert not hasattr(conversations, "segments_of")  # unused
