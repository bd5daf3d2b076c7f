"""Mosio in both directions: the history poll, the webhook (GET and POST), deduplication across
the two, receipts from the history, backoff and bad input (docs/mosio.md, "Polling")."""

import datetime
import logging
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message, OptOut, Reply
from messaging.services import poll
from messaging.services.inbound import inbound_receive
from messaging.tasks import mosio_poll
from projects import crypto
from projects.models import ProviderLink
from tests.factories import ParticipantFactory, ProjectFactory, ProviderLinkFactory

pytestmark = pytest.mark.django_db
BASE = "https://api.mosio.test/api/"
HISTORY = f"{BASE}text_history"
KEY = "mosio-key-7f3a9c21"
PHONE = "+12025550123"
SECRET_BODY = "my secret answer 4711"


@pytest.fixture(autouse=True)
def _real_mosio():
    # The poll talks HTTP to "Mosio" (respx below), not to the test suite's fake provider.
    with override_settings(MOSIO_API_BASE=BASE, SMS_GATEWAY_OVERRIDE=""):
        yield


@pytest.fixture
def mosio():
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def mosio_link(project=None, key=KEY, **extra):
    return ProviderLinkFactory(
        project=project or ProjectFactory(always_open=True),
        provider="mosio",
        config_encrypted=crypto.encrypt_json({"api_key": key}),
        **extra,
    )


def person(project, phone=PHONE, record="7"):
    return ParticipantFactory(
        project=project,
        record_id=record,
        phone_encrypted=crypto.encrypt(phone),
        phone_fingerprint=crypto.fingerprint(phone, purpose="phone"),
        phone_last4=phone[-4:],
    )


def item(body, *, id="", at="2026-12-06T07:00:00", phone="12025550123", direction="in", **extra):
    out = {"Phone": phone, "Body": body, "Date": at, "Direction": direction, **extra}
    if id:
        out["Id"] = id
    return out


def history(*items):
    return httpx.Response(200, json={"Success": True, "Contacts": list(items)})


def webhook(client, link, body, *, method="post", key=KEY, **extra):
    url = reverse("mosio-inbound", args=[link.webhook_secret])
    data = {"ApiKey": key, "From": "12025550123", "Body": body, **extra}
    return getattr(client, method)(url, data)


def since_of(request) -> str:
    return parse_qs(request.url.query.decode())["Since"][0]


def test_a_reply_by_webhook_and_by_poll_is_recorded_once(client, mosio):
    link = mosio_link()
    participant = person(link.project)
    # The webhook carries no id (M22); the history does: only the content key can match them.
    assert webhook(client, link, "Running late, sorry").status_code == 200
    mosio.get(HISTORY).mock(
        return_value=history(item("Running late, sorry", id="h-1", at=timezone.now().isoformat()))
    )
    (report,) = poll.mosio_poll_all()
    assert report.ok and report.replies == 0 and report.duplicates == 1
    reply = Reply.objects.get()
    assert reply.participant == participant and reply.via == Reply.Via.WEBHOOK
    # And the other way round: first the poll, then the webhook's late copy.
    mosio.get(HISTORY).mock(
        return_value=history(item("See you Friday", id="h-2", at=timezone.now().isoformat()))
    )
    ProviderLink.objects.filter(pk=link.pk).update(poll_next_at=None)
    poll.mosio_poll_all()
    webhook(client, link, "See you Friday")
    assert Reply.objects.filter(body="See you Friday").count() == 1
    assert Reply.objects.get(body="See you Friday").via == Reply.Via.POLL


def test_a_replayed_mosio_help_is_answered_once(client):
    link = mosio_link(provider_answers_keywords=False)  # StudyText answers HELP here
    person(link.project)
    for _ in range(5):
        assert webhook(client, link, "HELP").status_code == 200
    assert Reply.objects.count() == 1
    assert Message.objects.filter(kind="help").count() == 1


def test_by_default_mosio_answers_help_itself_and_stop_is_still_recorded(client):
    link = mosio_link()
    participant = person(link.project)
    webhook(client, link, "HELP")
    assert not Message.objects.filter(kind="help").exists()
    assert "Mosio answers it itself" in Reply.objects.get().handled
    webhook(client, link, "STOP")
    assert OptOut.objects.filter(participant=participant, revoked_at=None).exists()


@pytest.mark.parametrize("provider", ["twilio", "sandbox"])
def test_the_keyword_switch_defaults_by_provider(provider):
    from messaging.services.inbound import provider_answers_keywords

    link = ProviderLinkFactory(provider=provider)
    assert provider_answers_keywords(link, provider) is (provider == "twilio")
    link.provider_answers_keywords = provider == "sandbox"  # the owner's choice wins
    assert provider_answers_keywords(link, provider) is (provider == "sandbox")


def test_the_webhook_accepts_get_as_well_as_post(client):
    link = mosio_link()
    participant = person(link.project)
    assert webhook(client, link, "Yes I took it", method="get").status_code == 200
    assert Reply.objects.get().participant == participant
    assert webhook(client, link, "x", method="get", key="wrong-key-1").status_code == 403
    assert webhook(client, link, "x", method="put").status_code == 405
    assert Reply.objects.count() == 1


def test_the_cursor_resumes_after_a_restart(mosio):
    link = mosio_link()
    person(link.project)
    start = datetime.datetime(2026, 12, 6, 6, 0, tzinfo=datetime.UTC)
    ProviderLink.objects.filter(pk=link.pk).update(poll_cursor=start)
    first = mosio.get(HISTORY).mock(
        return_value=history(
            item("one", id="h-1", at="2026-12-06T07:00:00"),
            item("sent text", id="h-2", at="2026-12-06T07:05:30", direction="out"),
        )
    )
    poll.mosio_poll_link(link_id=link.pk)
    assert since_of(first.calls.last.request) == "2026-12-06T06:00:00"
    link.refresh_from_db()
    assert link.poll_cursor == datetime.datetime(2026, 12, 6, 7, 5, 30, tzinfo=datetime.UTC)
    # A new process (nothing in memory): the next poll asks from the stored cursor.
    mosio.get(HISTORY).mock(
        return_value=history(
            item("sent text", id="h-2", at="2026-12-06T07:05:30", direction="out"),
            item("two", id="h-3", at="2026-12-06T07:06:00"),
        )
    )
    report = poll.mosio_poll_link(link_id=link.pk)
    assert since_of(mosio.calls.last.request) == "2026-12-06T07:05:30"
    assert report.replies == 1
    assert list(Reply.objects.order_by("received_at").values_list("body", flat=True)) == [
        "one",
        "two",
    ]


def test_an_outage_on_one_link_does_not_stop_the_others_and_backs_off(mosio, settings):
    settings.MOSIO_POLL_SECONDS = 60
    down = mosio_link(key="down-key-0001")
    up = mosio_link(key="up-key-00002")
    person(up.project)
    mosio.get(HISTORY, headers={"X-ApiKey": "down-key-0001"}).mock(return_value=httpx.Response(503))
    mosio.get(HISTORY, headers={"X-ApiKey": "up-key-00002"}).mock(
        return_value=history(item("fine thanks", id="u-1", at=timezone.now().isoformat()))
    )
    result = mosio_poll()  # the scheduled task
    assert result == {"links": 2, "failed": 1, "replies": 1}
    down.refresh_from_db()
    assert down.poll_failures == 1 and "server error" in down.poll_error
    assert down.poll_cursor is None  # nothing read, nothing skipped
    wait = (down.poll_next_at - timezone.now()).total_seconds()
    assert 100 < wait <= 120  # 60 s x 2^1
    # Not asked again before its backoff is over; a second failure waits longer.
    assert down not in poll.links_due()
    ProviderLink.objects.filter(pk=down.pk).update(poll_next_at=timezone.now())
    poll.mosio_poll_link(link_id=down.pk)
    down.refresh_from_db()
    assert down.poll_failures == 2
    assert (down.poll_next_at - timezone.now()).total_seconds() > 200
    # Back up: the error clears and the cursor moves.
    mosio.get(HISTORY, headers={"X-ApiKey": "down-key-0001"}).mock(
        return_value=history(item("late", id="d-1", at="2026-12-06T07:00:00"))
    )
    assert poll.mosio_poll_link(link_id=down.pk).ok
    down.refresh_from_db()
    assert (down.poll_failures, down.poll_error) == (0, "")
    assert down.poll_cursor is not None


def test_statuses_in_the_history_move_texts_forward_only(mosio):
    link = mosio_link()
    participant = person(link.project)
    now = timezone.now()
    sent = Message.objects.create(
        project=link.project,
        participant=participant,
        occurrence="x",
        dedup_key="x1",
        due_at=now,
        not_before=now,
        status=Message.Status.SENT,
        provider="mosio",
        provider_message_id="981",
        sent_at=now,
    )
    mosio.get(HISTORY).mock(
        return_value=history(
            item("hello", id="h-9", direction="out", TransactionId="981", Status="Delivered"),
        )
    )
    assert poll.mosio_poll_link(link_id=link.pk).receipts == 1
    sent.refresh_from_db()
    assert sent.status == Message.Status.DELIVERED
    # A late "sent" for the same text does not move it back.
    mosio.get(HISTORY).mock(
        return_value=history(item("hello", id="h-9", direction="out", Status="Sent"))
    )
    poll.mosio_poll_link(link_id=link.pk)
    sent.refresh_from_db()
    assert sent.status == Message.Status.DELIVERED


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, content=b"{not json"),
        httpx.Response(200, json=["not", "an", "object"]),
        httpx.Response(200, json={"Success": False, "ErrorMessage": "Internal problem"}),
    ],
    ids=["malformed-json", "not-an-object", "refused"],
)
def test_a_bad_history_page_keeps_the_cursor_and_logs_no_text(mosio, response, caplog):
    link = mosio_link()
    cursor = datetime.datetime(2026, 12, 6, 6, 0, tzinfo=datetime.UTC)
    ProviderLink.objects.filter(pk=link.pk).update(poll_cursor=cursor)
    mosio.get(HISTORY).mock(return_value=response)
    with caplog.at_level(logging.INFO):
        report = poll.mosio_poll_link(link_id=link.pk)
    assert not report.ok
    link.refresh_from_db()
    assert link.poll_cursor == cursor and link.poll_failures == 1
    assert not Reply.objects.exists()


def test_odd_items_are_stored_and_logged_without_phones_or_bodies(mosio, caplog, client):
    link = mosio_link()
    participant = person(link.project)
    long_body = "word " * 400  # 2,000 characters: over Mosio's 1,600
    mosio.get(HISTORY).mock(
        return_value=history(
            item(SECRET_BODY, id="n-1"),  # a sound one
            {"Body": SECRET_BODY + " no phone", "Date": "2026-12-06T07:01:00", "Direction": "in"},
            item("", id="n-3"),  # empty
            item(long_body, id="n-4"),
            {"Id": "n-5", "Phone": "12025550123", "Body": "no direction"},
            {"Id": "n-6", "Direction": "in", "Phone": "12025550123"},  # no body, no date
            "not an item",
        )
    )
    with caplog.at_level(logging.INFO):
        report = poll.mosio_poll_link(link_id=link.pk)
        # The webhook, with no phone: stored, answered 200, no error page.
        assert webhook(client, link, SECRET_BODY + " hook", From="").status_code == 200
    assert report.ok
    bodies = set(Reply.objects.values_list("body", flat=True))
    assert {SECRET_BODY, SECRET_BODY + " no phone", "", long_body, SECRET_BODY + " hook"} <= bodies
    assert Reply.objects.get(body=long_body).participant == participant  # stored whole
    assert Reply.objects.filter(participant__isnull=True).count() == 2  # the two without phone
    logged = caplog.text
    assert "without a phone number" in logged and "over 1600" in logged
    assert "empty reply" in logged.lower()
    for secret in (SECRET_BODY, "2025550123", "0123 ", long_body[:50]):
        assert secret not in logged


def test_archived_projects_and_other_providers_are_not_polled(mosio):
    archived = mosio_link(project=ProjectFactory(status="archived"))
    twilio = ProviderLinkFactory(provider="twilio")
    live = mosio_link()
    assert set(poll.links_due()) == {live}
    assert archived and twilio


def test_the_content_key_does_not_merge_different_texts_or_numbers():
    link = mosio_link()
    person(link.project)
    person(link.project, phone="+12025550199", record="8")
    from messaging.gateways.base import InboundSms

    for body, phone in [("yes", PHONE), ("no", PHONE), ("yes", "+12025550199")]:
        inbound_receive(link=link, sms=InboundSms("", phone, body))
    assert Reply.objects.count() == 3


def test_the_log_says_mosio_does_not_report_delivery(as_user, researcher):
    link = mosio_link(project=ProjectFactory(owner=researcher))
    participant = person(link.project)
    now = timezone.now()
    Message.objects.create(
        project=link.project,
        participant=participant,
        occurrence="x",
        dedup_key="x1",
        due_at=now,
        not_before=now,
        status=Message.Status.SENT,
        provider="mosio",
        sent_at=now,
    )
    page = as_user(researcher).get(reverse("message-log", args=[link.project_id]))
    assert "Sent (Mosio does not report delivery)" in page.content.decode()


def test_the_provider_page_says_how_replies_arrive_and_the_owner_sets_who_answers_help(
    as_user, researcher, client, mosio
):
    link = mosio_link(project=ProjectFactory(owner=researcher))
    person(link.project)
    owner = as_user(researcher)
    url = reverse("project-provider", args=[link.project_id])
    page = owner.get(url).content.decode()
    assert "No reply has arrived yet" in page and "every 60 seconds" in page
    assert "Mosio answers HELP itself" in page
    webhook(client, link, "thanks")
    mosio.get(HISTORY).mock(
        return_value=history(item("and more", id="h-1", at=timezone.now().isoformat()))
    )
    poll.mosio_poll_link(link_id=link.pk)
    page = owner.get(url).content.decode()
    assert "both webhook and poll" in page and "Last reply seen" in page
    action = reverse("project-provider-action", args=[link.project_id])
    owner.post(action, {"action": "keywords", "answers": "0"})
    link.refresh_from_db()
    assert link.provider_answers_keywords is False
    assert "StudyText answers HELP with the project" in owner.get(url).content.decode()


def test_an_item_without_id_or_date_is_stored_once_however_often_it_is_seen(mosio, monkeypatch):
    link = mosio_link()
    person(link.project)
    undated = {"Phone": "12025550123", "Body": "no id, no date", "Direction": "in"}
    mosio.get(HISTORY).mock(return_value=history(undated))
    start = timezone.now()
    for hours in range(3):  # polls hours apart: no time bucket can match them
        later = start + datetime.timedelta(hours=hours)
        monkeypatch.setattr("django.utils.timezone.now", lambda later=later: later)
        ProviderLink.objects.filter(pk=link.pk).update(poll_next_at=None)
        poll.mosio_poll_link(link_id=link.pk)
    assert Reply.objects.filter(body="no id, no date").count() == 1


def _question(link, participant, n: int) -> Message:
    now = timezone.now()
    return Message.objects.create(
        project=link.project,
        participant=participant,
        occurrence=f"q{n}",
        dedup_key=f"question-{n}",
        kind="survey",
        due_at=now,
        not_before=now,
        status=Message.Status.SENT,
        provider="mosio",
        sent_at=now - datetime.timedelta(seconds=1),
    )


def test_the_same_answer_to_the_next_question_is_a_new_reply(client):
    """A text survey: "3" to question 1, then "3" to question 2 a minute later (no ids)."""
    link = mosio_link()
    participant = person(link.project)
    first = _question(link, participant, 1)
    webhook(client, link, "3")
    second = _question(link, participant, 2)
    webhook(client, link, "3")
    webhook(client, link, "3")  # a replayed webhook of the second answer: still once
    replies = list(Reply.objects.order_by("pk"))
    assert [(r.body, r.answers_id) for r in replies] == [("3", first.pk), ("3", second.pk)]


def test_two_texts_with_their_own_provider_ids_are_two_replies():
    from messaging.gateways.base import InboundSms

    link = mosio_link()
    person(link.project)
    for mid in ("m-1", "m-2", "m-1"):  # m-1 seen twice: once
        inbound_receive(link=link, sms=InboundSms(mid, PHONE, "yes"), via=Reply.Via.POLL)
    assert sorted(Reply.objects.values_list("provider_message_id", flat=True)) == ["m-1", "m-2"]
    # A late webhook copy without an id is the same text as one of them.
    inbound_receive(link=link, sms=InboundSms("", PHONE, "yes"))
    assert Reply.objects.count() == 2
