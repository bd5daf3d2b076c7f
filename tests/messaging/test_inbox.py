"""The team's inbox: unread replies and flags, newest first; who sees and does what; the counts in
the project's navigation and on the dashboard; answering with the ad-hoc text's rules."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.gateways.base import InboundSms
from messaging.models import Conversation, Message, MessageRule, OptOut, Reply, TextSurvey
from messaging.services.inbound import inbound_receive
from portal.models import AuditEvent
from projects import crypto
from projects.models import Membership
from projects.sandbox.data import SANDBOX_PROJECTS
from tests.factories import (
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
PHONE = "+12025550123"
STRANGER = "+12025550987"


@pytest.fixture
def project(researcher):
    return ProjectFactory(owner=researcher, always_open=True)


@pytest.fixture
def link(project):
    return ProviderLinkFactory(project=project, provider="sandbox")


@pytest.fixture
def person(project):
    return ParticipantFactory(
        project=project,
        record_id="7",
        phone_encrypted=crypto.encrypt(PHONE),
        phone_fingerprint=crypto.fingerprint(PHONE, purpose="phone"),
        phone_last4="0123",
    )


def member(project, role):
    return MembershipFactory(project=project, role=role).user


def receive(link, body, phone=PHONE, **extra):
    sms = InboundSms(provider_message_id="", from_number=phone, body=body, **extra)
    return inbound_receive(link=link, sms=sms, provider="sandbox")[0]


def inbox(client, project):
    return client.get(reverse("inbox", args=[project.pk]))


def act(client, reply, action, **data):
    url = reverse("inbox-action", args=[reply.project_id, reply.pk])
    return client.post(url, {"action": action, **data})


# --- flags ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body, flag",
    [
        ("I don't want these anymore, who is this", "possible_opt_out"),
        ("who is this, stop it", "possible_opt_out"),
        ("Stop.", ""),  # a keyword sentence: acted on, not flagged
        ("See you Tuesday", ""),
        ("I can't stop smoking", ""),
    ],
)
def test_a_sentence_that_reads_like_stop_is_flagged_and_a_keyword_is_not(link, person, body, flag):
    reply = receive(link, body)
    assert reply.flag == flag
    assert reply.read_at is None  # every reply arrives unread


def test_a_flag_never_opts_anyone_out_by_itself(link, person):
    receive(link, "I don't want these anymore, who is this")
    assert not OptOut.objects.exists()


def test_an_unknown_number_is_shown_to_owners_only_by_its_last_4_digits(
    as_user, researcher, project, link, person
):
    receive(link, "hello there", phone=STRANGER)
    page = inbox(as_user(researcher), project).content.decode()
    assert "Unknown number ending 0987" in page
    assert STRANGER not in page and "2025550987" not in page
    for role in (Membership.Role.EDITOR, Membership.Role.VIEWER):
        page = inbox(as_user(member(project, role)), project).content.decode()
        assert "0987" not in page and "hello there" not in page


# --- the page -----------------------------------------------------------------------------------
def test_the_inbox_lists_unread_and_flagged_newest_first_with_what_each_answers(
    as_user, researcher, project, link, person
):
    now = timezone.now()
    Message.objects.create(
        project=project,
        participant=person,
        occurrence="x",
        dedup_key="x1",
        due_at=now,
        not_before=now,
        status=Message.Status.SENT,
        body="Did you take your pill today?",
        sent_at=now - datetime.timedelta(hours=1),
    )
    receive(link, "Yes, with breakfast", received_at=now - datetime.timedelta(minutes=5))
    receive(link, "who is this, stop it", received_at=now)
    page = inbox(as_user(researcher), project).content.decode()
    assert page.index("who is this, stop it") < page.index("Yes, with breakfast")
    assert "Possible opt-out, please review" in page
    assert "Did you take your pill today?" in page and "Record 7" in page
    assert "<strong>2</strong> waiting on the team" in page


def test_the_fragment_and_the_navigation_count_rise_with_replies(
    as_user, researcher, project, link, person
):
    client = as_user(researcher)
    rows = reverse("inbox-rows", args=[project.pk])
    assert 'data-count="0"' in client.get(rows).content.decode()
    receive(link, "running late")
    fragment = client.get(rows).content.decode()
    assert 'data-count="1"' in fragment and "running late" in fragment
    assert "<html" not in fragment  # a fragment, for the page's script
    page = client.get(reverse("rule-list", args=[project.pk])).content.decode()
    assert 'id="nav-inbox-count" >1<' in page.replace("  ", " ")


def test_the_dashboard_counts_the_inbox_as_waiting_on_the_team(
    as_user, researcher, project, link, person
):
    client = as_user(researcher)
    receive(link, "running late")
    receive(link, "hi", phone=STRANGER)
    page = client.get(reverse("dashboard")).content.decode()
    assert "2 in the inbox" in page
    viewer = member(project, Membership.Role.VIEWER)
    assert "1 in the inbox" in as_user(viewer).get(reverse("dashboard")).content.decode()
    client = as_user(researcher)  # the same test client, signed in as the owner again
    act(client, Reply.objects.get(body="running late"), "read")
    act(client, Reply.objects.get(body="hi"), "review")
    assert "in the inbox" not in client.get(reverse("dashboard")).content.decode()


@pytest.mark.parametrize("replies", [10, 1000])
def test_the_inbox_s_query_count_does_not_grow_with_replies(
    as_user, researcher, project, link, person, replies, django_assert_max_num_queries
):
    now = timezone.now()
    others = [
        ParticipantFactory(project=project, record_id=str(100 + i), phone_fingerprint=f"f{i}")
        for i in range(5)
    ]
    message = Message.objects.create(
        project=project,
        participant=person,
        occurrence="x",
        dedup_key="x1",
        due_at=now,
        not_before=now,
        status=Message.Status.SENT,
        sent_at=now,
    )
    Reply.objects.bulk_create(
        Reply(
            project=project,
            participant=(person, *others)[i % 6],
            provider="sandbox",
            body=f"reply {i}",
            answers=message if i % 2 else None,
            flag="possible_opt_out" if i % 7 == 0 else "",
            received_at=now - datetime.timedelta(seconds=i),
        )
        for i in range(replies)
    )
    # Open text surveys, in their own section: 1 or 100 of them, over two rules.
    rules = [survey_rule(project, name) for name in ("Check-in A", "Check-in B")]
    for i in range(replies // 10):
        participant = ParticipantFactory(project=project, record_id=f"s{i}")
        open_conversation(rules[i % 2], participant, state="waiting" if i % 3 == 0 else "open")
    client = as_user(researcher)
    client.get(reverse("inbox", args=[project.pk]))  # warm the session and caches
    with django_assert_max_num_queries(15):
        page = client.get(reverse("inbox", args=[project.pk]))
    assert page.status_code == 200
    assert page.content.decode().count('class="open-survey"') == min(replies // 10, 50)
    with django_assert_max_num_queries(15):
        client.get(reverse("inbox-rows", args=[project.pk]))


# --- open text surveys ---------------------------------------------------------------------------
def survey_rule(project, name="Weekly check-in by text"):
    """A text-survey rule on the sandbox's check-in instrument (its data dictionary stored)."""
    rule = MessageRuleFactory(
        project=project, name=name, kind=MessageRule.Kind.TEXT_SURVEY, instrument="text_checkin"
    )
    TextSurvey.objects.create(
        rule=rule, metadata=SANDBOX_PROJECTS[101].metadata, label="Text check-in"
    )
    return rule


def open_conversation(rule, participant, *, state="open", field="tc_walked", started=None):
    started = started or timezone.now()
    return Conversation.objects.create(
        rule=rule,
        project=rule.project,
        participant=participant,
        state=state,
        current_field=field if state == "open" else "",
        started_at=started,
        expires_at=started + datetime.timedelta(hours=24),
    )


def test_open_text_surveys_are_listed_with_the_question_asked_now_in_the_viewer_s_zone(
    as_user, project, person
):
    rule = survey_rule(project)
    started = datetime.datetime(2026, 3, 4, 20, 5, tzinfo=datetime.UTC)
    open_conversation(rule, person, started=started)
    waiting = ParticipantFactory(project=project, record_id="8")
    open_conversation(rule, waiting, state="waiting")
    done = ParticipantFactory(project=project, record_id="9")
    open_conversation(rule, done, state="completed")
    viewer = member(project, Membership.Role.VIEWER)
    viewer.time_zone = "America/New_York"
    viewer.save()
    page = inbox(as_user(viewer), project).content.decode()
    section = page[page.index('id="open-surveys"') :]
    assert "2 participants answering a text survey" in page
    assert "Did you go for a walk this week?" in section  # tc_walked's label
    assert "Waiting for the start word YES" in section
    assert "Record 7" in section and "Record 8" in section and "Record 9" not in section
    assert reverse("participant-detail", args=[project.pk, person.pk]) in section
    assert "Weekly check-in by text" in section
    assert "Mar 4, 2026 3:05 p.m." in section  # 20:05 UTC, in New York
    assert "Mar 5, 2026 3:05 p.m." in section  # expires 24 hours later


def test_no_open_text_survey_says_so(as_user, researcher, project):
    page = inbox(as_user(researcher), project).content.decode()
    assert "No text survey is open." in page and 'id="open-surveys"' not in page


# --- who may do what -----------------------------------------------------------------------------
@pytest.fixture
def flagged(link, person):
    return receive(link, "I don't want these anymore, who is this")


@pytest.mark.parametrize(
    "role, sees, acts",
    [
        ("owner", 200, 302),
        (Membership.Role.EDITOR, 200, 302),
        (Membership.Role.VIEWER, 200, 403),
        (None, 404, 404),
    ],
)
def test_access_to_the_inbox_and_its_actions(
    as_user, researcher, project, flagged, role, sees, acts
):
    user = researcher if role == "owner" else (member(project, role) if role else UserFactory())
    client = as_user(user)
    assert inbox(client, project).status_code == sees
    assert client.get(reverse("inbox-rows", args=[project.pk])).status_code == sees
    assert act(client, flagged, "read").status_code == acts
    answer = reverse("inbox-answer", args=[project.pk, flagged.pk])
    assert client.post(answer, {"body": "Sorry!"}).status_code == (acts if acts != 302 else 302)
    assert client.post(reverse("inbox-read-all", args=[project.pk])).status_code == acts
    assert act(client, flagged, "review", note="Called them").status_code == acts
    flagged.refresh_from_db()
    assert (flagged.reviewed_at is not None) is (acts == 302)


@pytest.mark.parametrize(
    "role, status",
    [("owner", 302), (Membership.Role.EDITOR, 302), (Membership.Role.VIEWER, 403), (None, 404)],
)
def test_access_to_the_staff_opt_out_from_the_inbox(
    as_user, researcher, project, flagged, person, role, status
):
    user = researcher if role == "owner" else (member(project, role) if role else UserFactory())
    response = act(as_user(user), flagged, "opt_out", reason="Asked to stop, by text")
    assert response.status_code == status
    opted = OptOut.objects.filter(participant=person, revoked_at=None, source="staff")
    assert opted.exists() is (status == 302)


def test_review_with_a_note_is_audited_and_clears_the_flag(as_user, researcher, project, flagged):
    client = as_user(researcher)
    act(client, flagged, "review", note="Called: wants to stay in the study")
    flagged.refresh_from_db()
    assert flagged.reviewed_by == researcher and flagged.read_at is not None
    event = AuditEvent.objects.get(action="reply.reviewed")
    assert "Called: wants to stay in the study" in event.message
    assert "who is this" not in event.message  # never the reply's text
    assert "who is this" not in inbox(client, project).content.decode()


def test_opt_out_from_the_inbox_needs_a_reason(as_user, researcher, project, flagged, person):
    client = as_user(researcher)
    response = act(client, flagged, "opt_out", reason="  ")
    assert response.status_code == 302
    assert not OptOut.objects.exists()
    page = client.get(response.url).content.decode()
    assert "Say why, for the audit log" in page
    flagged.refresh_from_db()
    assert flagged.reviewed_at is None


def test_opt_out_from_the_inbox_cancels_waiting_texts(
    as_user, researcher, project, flagged, person
):
    now = timezone.now()
    waiting = Message.objects.create(
        project=project,
        participant=person,
        occurrence="r",
        dedup_key="r1",
        due_at=now,
        not_before=now,
        adhoc_body="Reminder",
    )
    act(as_user(researcher), flagged, "opt_out", reason="Asked to stop, by text")
    waiting.refresh_from_db()
    assert waiting.status == Message.Status.CANCELLED
    flagged.refresh_from_db()
    assert flagged.reviewed_at is not None and "Asked to stop" in flagged.review_note


# --- answering ----------------------------------------------------------------------------------
def test_an_editor_answers_a_reply_and_it_is_read(as_user, project, link, person):
    reply = receive(link, "What time is my visit?")
    client = as_user(member(project, Membership.Role.EDITOR))
    url = reverse("inbox-answer", args=[project.pk, reply.pk])
    page = client.get(url).content.decode()
    assert "What time is my visit?" in page
    assert 'data-preview-url="' in page and "adhoc-preview-segments" in page  # segments, cost
    assert client.post(url, {"body": "10 am, see you then"}).status_code == 302
    message = Message.objects.get(kind="adhoc")
    assert message.participant == person and message.adhoc_body == "10 am, see you then"
    reply.refresh_from_db()
    assert reply.read_at is not None


def test_an_opted_out_participant_cannot_be_answered(as_user, researcher, project, link, person):
    receive(link, "STOP")
    reply = receive(link, "why did you text me")
    client = as_user(researcher)
    url = reverse("inbox-answer", args=[project.pk, reply.pk])
    assert "cannot be texted now" in client.get(url).content.decode()
    response = client.post(url, {"body": "Sorry"})
    assert response.status_code == 200 and "cannot be texted" in response.content.decode()
    assert not Message.objects.filter(kind="adhoc").exists()


def test_a_text_from_the_participant_page_answers_their_unread_replies(
    as_user, researcher, project, link, person
):
    receive(link, "What time is my visit?")
    url = reverse("participant-detail", args=[project.pk, person.pk])
    page = as_user(researcher).get(url).content.decode()
    assert 'data-preview-url="' in page  # segments and cost, as in the message form
    assert as_user(researcher).post(url, {"body": "10 am"}).status_code == 302
    assert not Reply.objects.filter(read_at__isnull=True).exists()
