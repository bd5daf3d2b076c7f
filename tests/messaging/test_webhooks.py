"""Twilio's status callback: signature-checked, idempotent, forward only."""

import pytest
from django.urls import reverse

from messaging.gateways.twilio import compute_signature
from messaging.models import Message
from projects import crypto
from projects.models import Participant
from tests.factories import (
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

pytestmark = pytest.mark.django_db
TOKEN = "a" * 32


@pytest.fixture
def sent_message():
    project = ProjectFactory()
    link = ProviderLinkFactory(
        project=project,
        provider="twilio",
        config_encrypted=crypto.encrypt_json(
            {"account_sid": "AC" + "1" * 32, "auth_token": TOKEN, "sender": "+12025550100"}
        ),
    )
    person = ParticipantFactory(project=project)
    message = Message.objects.create(
        project=project,
        participant=person,
        rule=MessageRuleFactory(project=project),
        occurrence="x",
        dedup_key="x",
        due_at="2026-12-01T15:00Z",
        not_before="2026-12-01T15:00Z",
        status=Message.Status.SENT,
        provider_message_id="SM" + "f" * 32,
    )
    return link, message


def post(client, link, params, *, token=TOKEN):
    url = "http://testserver" + reverse("twilio-status", args=[link.webhook_secret])
    signature = compute_signature(url, params, token)
    return client.post(url, params, HTTP_X_TWILIO_SIGNATURE=signature)


def test_a_signed_delivery_receipt_moves_the_message_forward(client, sent_message):
    link, message = sent_message
    response = post(
        client, link, {"MessageSid": message.provider_message_id, "MessageStatus": "delivered"}
    )
    assert response.status_code == 204
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED and message.delivered_at


def test_a_bad_signature_is_refused_and_changes_nothing(client, sent_message):
    link, message = sent_message
    params = {"MessageSid": message.provider_message_id, "MessageStatus": "delivered"}
    response = post(client, link, params, token="b" * 32)
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


def test_a_late_sent_receipt_does_not_undo_delivered_and_duplicates_are_harmless(
    client, sent_message
):
    link, message = sent_message
    sid = message.provider_message_id
    for status in ["delivered", "delivered", "sent"]:
        assert post(client, link, {"MessageSid": sid, "MessageStatus": status}).status_code == 204
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED


def test_an_undelivered_receipt_for_a_landline_flags_the_number(client, sent_message):
    link, message = sent_message
    post(
        client,
        link,
        {
            "MessageSid": message.provider_message_id,
            "MessageStatus": "undelivered",
            "ErrorCode": "30006",
        },
    )
    message.refresh_from_db()
    assert message.status == Message.Status.UNDELIVERED and message.error_code == "30006"
    assert Participant.objects.get(pk=message.participant_id).number_invalid


def test_an_unknown_link_path_is_404(client):
    assert client.post(reverse("twilio-status", args=["nope"]), {}).status_code == 404


def test_a_receipt_before_its_text_is_recorded_is_kept_and_applied_by_the_sweep(
    client, sent_message
):
    """The sender records accepted texts a moment later, together (sender.RECORD_WAIT): a
    "delivered" that overtakes the record is kept, then applied once the text carries its id."""
    import datetime

    from django.utils import timezone

    from messaging.models import EarlyReceipt
    from messaging.services import sweep

    link, message = sent_message
    sid = message.provider_message_id
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENDING, provider_message_id=""
    )
    for status in ("sent", "delivered"):
        assert post(client, link, {"MessageSid": sid, "MessageStatus": status}).status_code == 204
    assert EarlyReceipt.objects.filter(provider_message_id=sid).count() == 2
    assert sweep.sweep()["receipts"] == 0  # not recorded yet: kept
    assert EarlyReceipt.objects.count() == 2

    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENT, provider_message_id=sid
    )  # what record.record_successes writes
    assert sweep.sweep()["receipts"] == 1  # "sent" moves nothing; "delivered" does
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED and message.delivered_at
    assert not EarlyReceipt.objects.exists()

    # A receipt for an id no text of ours ever carries is forgotten after an hour.
    post(client, link, {"MessageSid": "SM" + "0" * 32, "MessageStatus": "delivered"})
    assert sweep.sweep()["receipts"] == 0 and EarlyReceipt.objects.count() == 1
    later = timezone.now() + datetime.timedelta(hours=1, minutes=1)
    sweep.sweep(now=later)
    assert not EarlyReceipt.objects.exists()
