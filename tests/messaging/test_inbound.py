"""Replies from participants: webhooks, STOP / START / HELP, the simulator's reply box."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging import sender
from messaging.gateways import locmem
from messaging.gateways.base import InboundSms
from messaging.gateways.twilio import compute_signature
from messaging.models import Message, OptOut, Reply
from messaging.services import outbox
from messaging.services.inbound import inbound_receive
from portal.models import AuditEvent
from projects import crypto
from projects.models import Membership, Participant
from tests.factories import (
    MembershipFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
TOKEN = "a" * 32
MOSIO_KEY = "mosio-key-123"
PHONE = "+12025550123"
Status = Message.Status


@pytest.fixture
def project(researcher):
    return ProjectFactory(
        owner=researcher,
        help_reply="Heart study: call 555-0100. Reply STOP to opt out.",
        always_open=True,
    )


@pytest.fixture
def twilio_link(project):
    return ProviderLinkFactory(
        project=project,
        provider="twilio",
        config_encrypted=crypto.encrypt_json(
            {"account_sid": "AC" + "1" * 32, "auth_token": TOKEN, "sender": "+12025550100"}
        ),
        # These tests pin StudyText's own HELP text; by default Twilio answers HELP itself
        # (tests/messaging/test_mosio_poll.py pins that).
        provider_answers_keywords=False,
    )


@pytest.fixture
def person(project):
    return ParticipantFactory(
        project=project,
        record_id="7",
        phone_encrypted=crypto.encrypt(PHONE),
        phone_fingerprint=crypto.fingerprint(PHONE, purpose="phone"),
        phone_last4="0123",
    )


def twilio_post(client, link, body, *, sid="SM" + "1" * 32, token=TOKEN, phone=PHONE):
    url = "http://testserver" + reverse("twilio-inbound", args=[link.webhook_secret])
    params = {"MessageSid": sid, "From": phone, "To": "+12025550100", "Body": body}
    signature = compute_signature(url, params, token)
    return client.post(url, params, HTTP_X_TWILIO_SIGNATURE=signature)


def receive(link, body, *, sid="", phone=PHONE):
    return inbound_receive(
        link=link, sms=InboundSms(provider_message_id=sid, from_number=phone, body=body)
    )[0]


def queue_text(person, body="Your visit is tomorrow."):
    now = timezone.now()
    return Message.objects.create(
        project=person.project,
        participant=person,
        occurrence="adhoc",
        dedup_key=f"adhoc:{Message.objects.count()}",
        adhoc_body=body,
        due_at=now,
        not_before=now,
    )


# --- Twilio's webhook ------------------------------------------------------------------------
def test_a_signed_stop_is_stored_opts_out_and_the_next_release_skips_the_participant(
    client, twilio_link, person
):
    already_queued = queue_text(person)
    response = twilio_post(client, twilio_link, "STOP")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    assert b"<Response></Response>" in response.content  # no TwiML <Message>: no confirmation
    reply = Reply.objects.get()
    assert (reply.participant, reply.keyword, reply.body) == (person, "stop", "STOP")
    assert reply.phone_last4 == "0123" and PHONE not in reply.phone_fingerprint
    opt_out = OptOut.objects.get(project=person.project, revoked_at=None)
    assert opt_out.source == OptOut.Source.KEYWORD and opt_out.participant == person
    assert AuditEvent.objects.filter(action="participant.opted_out").count() == 1
    already_queued.refresh_from_db()
    assert already_queued.status == Status.CANCELLED

    later = queue_text(person, "Another reminder.")
    sender.run(max_seconds=10)
    later.refresh_from_db()
    assert later.status == Status.SKIPPED and "opted out" in later.error
    assert locmem.outbox == []  # neither the reminder nor any STOP confirmation went out


def test_a_bad_signature_is_refused_and_writes_nothing(client, twilio_link, person):
    response = twilio_post(client, twilio_link, "STOP", token="b" * 32)
    assert response.status_code == 403
    assert not Reply.objects.exists() and not OptOut.objects.exists()
    assert not AuditEvent.objects.exists()


def test_an_unsigned_post_is_refused(client, twilio_link, person):
    url = reverse("twilio-inbound", args=[twilio_link.webhook_secret])
    response = client.post(url, {"MessageSid": "SM1", "From": PHONE, "Body": "STOP"})
    assert response.status_code == 403
    assert not Reply.objects.exists()


def test_a_replayed_webhook_is_stored_and_handled_once(client, twilio_link, person):
    for _ in range(3):
        assert twilio_post(client, twilio_link, "please stop texting me").status_code == 200
    assert Reply.objects.count() == 1
    assert OptOut.objects.count() == 1
    assert AuditEvent.objects.filter(action="participant.opted_out").count() == 1


def test_the_same_message_id_from_another_provider_is_a_different_reply(twilio_link, person):
    receive(twilio_link, "hello", sid="X1")
    inbound_receive(
        link=twilio_link,
        sms=InboundSms(provider_message_id="X1", from_number=PHONE, body="hello"),
        provider="sandbox",
    )
    assert Reply.objects.count() == 2


# --- What counts as STOP ------------------------------------------------------------------
def test_a_reasonable_persons_stop_opts_out_and_a_sentence_with_stop_does_not(twilio_link, person):
    chat = receive(twilio_link, "I can't stop smoking", sid="SM-a")
    assert chat.keyword == "" and chat.handled == ""
    assert not OptOut.objects.exists()

    stop = receive(twilio_link, "please stop texting me", sid="SM-b")
    assert stop.keyword == "stop"
    assert OptOut.objects.filter(participant=person, revoked_at=None).exists()
    assert not outbox.textable_participants(project=person.project).filter(pk=person.pk).exists()


def test_a_number_that_matches_nobody_is_stored_without_a_participant_and_its_stop_holds(
    twilio_link, person
):
    stranger = "+12025559999"
    reply = receive(twilio_link, "STOP", sid="SM-x", phone=stranger)
    assert reply.participant is None and reply.phone_last4 == "9999"
    fingerprint = crypto.fingerprint(stranger, purpose="phone")
    assert OptOut.objects.filter(phone_fingerprint=fingerprint, revoked_at=None).exists()
    # A later sync that brings the number in cannot text it.
    newcomer = ParticipantFactory(
        project=person.project, phone_fingerprint=fingerprint, phone_last4="9999"
    )
    assert not outbox.textable_participants(project=person.project).filter(pk=newcomer.pk).exists()


def test_a_number_of_another_project_is_not_matched(twilio_link, person):
    other = ParticipantFactory(
        project=ProjectFactory(),
        phone_encrypted=crypto.encrypt("+12025558888"),
        phone_fingerprint=crypto.fingerprint("+12025558888", purpose="phone"),
    )
    reply = receive(twilio_link, "STOP", sid="SM-o", phone="+12025558888")
    assert reply.participant is None
    assert not OptOut.objects.filter(project=other.project).exists()


# --- START ------------------------------------------------------------------------------------
def test_start_lifts_an_opt_out_that_came_from_a_reply(twilio_link, person):
    receive(twilio_link, "STOP", sid="SM-1")
    reply = receive(twilio_link, "START", sid="SM-2")
    assert reply.keyword == "start" and reply.handled.startswith("Opted back in")
    assert not OptOut.objects.filter(revoked_at=None).exists()
    assert OptOut.objects.get().revoked_at is not None  # the history stays
    assert AuditEvent.objects.filter(action="participant.opted_in").count() == 1
    person.refresh_from_db()
    assert person.optout_write_pending == Participant.OptoutWrite.OPT_IN
    assert outbox.textable_participants(project=person.project).filter(pk=person.pk).exists()


def test_start_does_not_lift_an_opt_out_set_by_staff(twilio_link, person):
    OptOut.objects.create(
        project=person.project,
        phone_fingerprint=person.phone_fingerprint,
        participant=person,
        source=OptOut.Source.STAFF,
    )
    reply = receive(twilio_link, "START", sid="SM-3")
    assert reply.handled.startswith("Not opted back in")
    assert OptOut.objects.filter(revoked_at=None).count() == 1
    assert not AuditEvent.objects.filter(action="participant.opted_in").exists()


def test_start_does_not_lift_the_redcap_opt_out(twilio_link, person):
    Participant.objects.filter(pk=person.pk).update(redcap_opted_out=True)
    reply = receive(twilio_link, "START", sid="SM-4")
    assert reply.handled == ""  # not on the suppression list: START is conversation
    person.refresh_from_db()
    assert person.redcap_opted_out
    assert not outbox.textable_participants(project=person.project).filter(pk=person.pk).exists()


# --- HELP -------------------------------------------------------------------------------------
def test_help_queues_one_reply_with_the_projects_help_text(
    as_user, researcher, twilio_link, person
):
    reply = receive(twilio_link, "HELP", sid="SM-h")
    receive(twilio_link, "HELP", sid="SM-h")  # a replay answers nothing more
    assert reply.handled == "Answered with the HELP reply."
    help_message = Message.objects.get()
    assert help_message.kind == "help" and help_message.participant == person
    sender.run(max_seconds=10)
    help_message.refresh_from_db()
    assert help_message.status == Status.SENT and help_message.units >= 1  # counted in quota
    assert [m.body for m in locmem.outbox] == [person.project.help_reply]
    log = reverse("message-log", args=[person.project_id])
    assert "HELP reply" in as_user(researcher).get(log).content.decode()


def test_help_without_a_project_answer_sends_the_standard_one_even_in_quiet_hours(
    twilio_link, person
):
    project = person.project
    project.help_reply = ""
    project.send_window_start = datetime.time(0, 0)
    project.send_window_end = datetime.time(0, 0, 1)  # practically always quiet
    project.save()
    receive(twilio_link, "info", sid="SM-i")
    sender.run(max_seconds=10)
    (sent,) = locmem.outbox
    assert project.pi_name in sent.body and project.pi_email in sent.body
    assert "Reply STOP to opt out" in sent.body


def test_help_from_an_opted_out_number_is_not_answered(twilio_link, person):
    receive(twilio_link, "STOP", sid="SM-5")
    reply = receive(twilio_link, "HELP", sid="SM-6")
    assert "not answered" in reply.handled
    assert not Message.objects.filter(kind="help").exists()


# --- Mosio's webhook --------------------------------------------------------------------------
@pytest.fixture
def mosio_link(project):
    return ProviderLinkFactory(
        project=project,
        provider="mosio",
        config_encrypted=crypto.encrypt_json({"api_key": MOSIO_KEY}),
    )


def test_mosio_with_a_bad_key_is_refused_and_writes_nothing(client, mosio_link, person):
    url = reverse("mosio-inbound", args=[mosio_link.webhook_secret])
    for key in ["wrong-key-123", ""]:
        response = client.post(url, {"ApiKey": key, "From": "12025550123", "Body": "STOP"})
        assert response.status_code == 403
    assert not Reply.objects.exists() and not OptOut.objects.exists()


def test_mosio_with_the_right_key_stores_the_reply_and_honours_stop(client, mosio_link, person):
    url = reverse("mosio-inbound", args=[mosio_link.webhook_secret])
    response = client.post(
        url, {"ApiKey": MOSIO_KEY, "MessageId": "m1", "From": "12025550123", "Body": "Stop."}
    )
    assert response.status_code == 200
    reply = Reply.objects.get()
    assert reply.participant == person and reply.provider == "mosio"
    assert "Mosio confirms STOP itself" in reply.handled
    assert OptOut.objects.filter(participant=person, revoked_at=None).exists()


def test_a_webhook_for_another_provider_s_link_is_not_found(client, twilio_link):
    mosio_link = ProviderLinkFactory(
        provider="mosio", config_encrypted=crypto.encrypt_json({"api_key": MOSIO_KEY})
    )
    assert twilio_post(client, mosio_link, "hi").status_code == 404
    url = reverse("mosio-inbound", args=[twilio_link.webhook_secret])
    assert client.post(url, {"ApiKey": MOSIO_KEY, "Body": "hi"}).status_code == 404


# --- The simulator's reply box, and where replies show ------------------------------------
@pytest.fixture
def sandbox_link(project):
    return ProviderLinkFactory(project=project, provider="sandbox")


def simulator_post(client, person, body):
    url = reverse("phone-simulator-reply", args=[person.project_id, person.pk])
    return client.post(url, {"body": body})


def test_an_editor_replies_from_a_sandbox_phone_as_a_webhook_would(as_user, sandbox_link, person):
    editor = MembershipFactory(project=person.project, role=Membership.Role.EDITOR).user
    client = as_user(editor)
    response = simulator_post(client, person, "STOP")
    assert response.status_code == 302
    reply = Reply.objects.get()
    assert (reply.participant, reply.keyword, reply.provider) == (person, "stop", "sandbox")
    assert OptOut.objects.filter(participant=person, revoked_at=None).exists()
    page = client.get(reverse("phone-simulator", args=[person.project_id])).content.decode()
    assert "bubble-in" in page and "StudyText sends none" in page


def test_a_viewer_cannot_reply_from_the_simulator(as_user, sandbox_link, person):
    viewer = MembershipFactory(project=person.project, role=Membership.Role.VIEWER).user
    assert simulator_post(as_user(viewer), person, "STOP").status_code == 403
    assert not Reply.objects.exists() and not OptOut.objects.exists()


def test_an_outsider_cannot_reply_from_another_projects_simulator(as_user, sandbox_link, person):
    outsider = UserFactory()
    own = ProjectFactory(owner=outsider)
    ProviderLinkFactory(project=own, provider="sandbox")
    assert simulator_post(as_user(outsider), person, "STOP").status_code == 404
    # Nor through their own project's URL with the other project's participant.
    url = reverse("phone-simulator-reply", args=[own.pk, person.pk])
    assert as_user(outsider).post(url, {"body": "STOP"}).status_code == 404
    assert not Reply.objects.exists()


def test_the_simulator_reply_box_needs_a_sandbox_link(as_user, researcher, twilio_link, person):
    assert simulator_post(as_user(researcher), person, "STOP").status_code == 404
    assert not Reply.objects.exists()


def test_the_simulator_reply_box_is_csrf_protected(researcher, sandbox_link, person):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(researcher)
    assert simulator_post(client, person, "STOP").status_code == 403
    assert not Reply.objects.exists()


def test_replies_show_on_the_participant_page_in_constant_queries(
    as_user, researcher, twilio_link, person, django_assert_max_num_queries
):
    receive(twilio_link, "Running late, sorry", sid="SM-p1")
    client = as_user(researcher)
    url = reverse("participant-detail", args=[person.project_id, person.pk])
    page = client.get(url).content.decode()
    assert "Running late, sorry" in page and "Texts and replies" in page

    with django_assert_max_num_queries(40) as few:
        client.get(url)
    for n in range(10):
        receive(twilio_link, f"reply {n}", sid=f"SM-q{n}")
        queue_text(person, f"text {n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(url).content.decode()
    assert "reply 9" in page


def test_reply_bodies_are_purged_with_message_bodies(twilio_link, person, settings):
    reply = receive(twilio_link, "my private answer", sid="SM-r")
    Reply.objects.filter(pk=reply.pk).update(
        received_at=timezone.now() - datetime.timedelta(days=settings.MESSAGE_RETENTION_DAYS + 1)
    )
    fresh = receive(twilio_link, "new answer", sid="SM-s")
    outbox.retention_purge()
    reply.refresh_from_db()
    fresh.refresh_from_db()
    assert reply.body == "" and fresh.body == "new answer"
