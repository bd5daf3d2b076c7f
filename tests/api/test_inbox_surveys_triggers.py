"""The seams of issues 12-14 in the API: the team's inbox (list, mark read, review), a text
survey's results, and the rule fields that triggers and team alerts added, each through the same
selector or service as the web page, with the form's words when input is refused."""

import datetime
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.models import Conversation, MessageRule, Reply
from portal.models import AuditEvent
from tests.api.conftest import call

pytestmark = pytest.mark.django_db


def _inbox(world) -> str:
    return reverse("api-inbox-list", args=[world.project.pk])


def _reply(world, **fields) -> Reply:
    values = dict(
        project=world.project,
        participant=world.participant,
        provider="sandbox",
        body="ok",
        phone_last4="0001",
        received_at=timezone.now(),
    )
    values.update(fields)
    return Reply.objects.create(**values)


# --- The inbox ---------------------------------------------------------------------------------
def test_the_inbox_lists_unread_and_open_flags_newest_first_and_strangers_for_owners(world, api):
    now = timezone.now()
    read = _reply(world, body="seen", read_at=now)
    flagged = _reply(
        world,
        body="I don't want these anymore",
        flag="possible_opt_out",
        read_at=now,
        received_at=now + datetime.timedelta(minutes=1),
        answers=world.message,
    )
    reviewed = _reply(world, flag="possible_opt_out", read_at=now, reviewed_at=now)
    stranger = _reply(
        world,
        participant=None,
        flag="unknown_number",
        phone_last4="0987",
        received_at=now + datetime.timedelta(minutes=2),
    )
    viewer = api("viewer", "GET", _inbox(world)).json()
    ids = [row["id"] for row in viewer["results"]]
    assert ids == [flagged.pk, world.reply.pk]  # newest first; read and reviewed ones gone
    assert read.pk not in ids and reviewed.pk not in ids
    row = viewer["results"][0]
    assert row["flag"] == "possible_opt_out" and row["flag_open"] and not row["unread"]
    assert row["answers"]["rule"] == {"id": world.rule.pk, "name": "Check-in"}
    assert row["phone"] == "•••-•••-0001"
    owner = api("owner", "GET", _inbox(world) + "?limit=1").json()
    assert owner["count"] == 3 and [r["id"] for r in owner["results"]] == [stranger.pk]
    assert owner["results"][0]["participant"] is None
    assert owner["results"][0]["phone_last4"] == "0987"


def test_marking_read_takes_the_reply_out_of_the_inbox_through_the_service(world, api):
    from messaging.services import inbox

    url = reverse("api-inbox-read", args=[world.project.pk, world.reply.pk])
    with mock.patch(
        "messaging.services.inbox.reply_mark_read", wraps=inbox.reply_mark_read
    ) as service:
        response = api("editor", "POST", url)
    assert response.status_code == 200, response.content
    assert service.call_args.kwargs["actor"] == world.users["editor"]
    assert response.json()["unread"] is False
    assert world.reply.pk not in [
        r["id"] for r in api("viewer", "GET", _inbox(world)).json()["results"]
    ]
    assert api("editor", "POST", url).status_code == 200  # again: nothing changes
    assert api("viewer", "POST", url).status_code == 403


def test_reviewing_a_flag_keeps_the_note_in_the_audit_log_and_clears_the_flag(world, api):
    flagged = _reply(world, body="no more please", flag="possible_opt_out")
    url = reverse("api-inbox-review", args=[world.project.pk, flagged.pk])
    response = api("editor", "POST", url, {"note": "Called: they want to stay in."})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["flag_open"] is False and body["review_note"] == "Called: they want to stay in."
    assert AuditEvent.objects.filter(
        action="reply.reviewed", message__contains="Called: they want to stay in."
    ).exists()
    again = api("editor", "POST", url, {})
    assert again.status_code == 400
    assert "reviewed this reply meanwhile" in again.json()["detail"]
    assert flagged.pk not in [r["id"] for r in api("owner", "GET", _inbox(world)).json()["results"]]


def test_review_refuses_an_unflagged_reply_a_long_note_and_unknown_fields(world, api):
    url = reverse("api-inbox-review", args=[world.project.pk, world.reply.pk])
    unflagged = api("editor", "POST", url, {})
    assert unflagged.status_code == 400 and unflagged.json()["detail"] == (
        "This reply is not flagged."
    )
    flagged = _reply(world, flag="possible_opt_out")
    url = reverse("api-inbox-review", args=[world.project.pk, flagged.pk])
    long = api("editor", "POST", url, {"note": "x" * 201})
    assert long.status_code == 400 and "note" in long.json()["fields"]
    typo = api("editor", "POST", url, {"notes": "hi"})
    assert typo.status_code == 400 and "notes" in typo.json()["fields"]
    flagged.refresh_from_db()
    assert flagged.reviewed_at is None


def test_a_stranger_s_reply_is_for_owners_only(world, api):
    stranger = _reply(world, participant=None, flag="unknown_number")
    url = reverse("api-inbox-review", args=[world.project.pk, stranger.pk])
    assert api("editor", "POST", url, {}).status_code == 404
    assert api("owner", "POST", url, {}).status_code == 200


def test_a_reply_of_another_project_is_404(world, api):
    theirs = Reply.objects.create(
        project=world.outsider_project, provider="sandbox", received_at=timezone.now()
    )
    url = reverse("api-inbox-read", args=[world.project.pk, theirs.pk])
    assert api("owner", "POST", url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


# --- Text-survey results -----------------------------------------------------------------------
def test_a_text_survey_s_results_count_states_median_and_answers_per_question(world, api):
    now = timezone.now()
    people = [world.participant]
    for i, (state, minutes, walked) in enumerate(
        [("completed", 10, "0"), ("expired", None, "1"), ("completed", 30, "1")]
    ):
        from tests.factories import ParticipantFactory

        person = ParticipantFactory(project=world.project, record_id=f"r{i}")
        people.append(person)
        Conversation.objects.create(
            rule=world.survey_rule,
            project=world.project,
            participant=person,
            state=state,
            answers={"tc_walked": {"value": walked}},
            started_at=now - datetime.timedelta(hours=1),
            expires_at=now,
            finished_at=(
                now - datetime.timedelta(hours=1) + datetime.timedelta(minutes=minutes)
                if minutes
                else now
            ),
        )
    url = reverse("api-survey-results", args=[world.project.pk, world.survey_rule.pk])
    body = api("viewer", "GET", url).json()
    # The world's own conversation took 0 minutes; these took 10 and 30.
    assert body["started"] == 4 and body["completed"] == 3
    assert body["by_state"]["expired"] == 1 and body["completion_rate"] == 75
    assert body["median_minutes"] == 10.0 and body["median_time"] == "10 min"
    walked = next(q for q in body["questions"] if q["field"] == "tc_walked")
    assert walked["label"] == "Did you go for a walk this week?"
    assert walked["answered"] == 4
    assert walked["counts"] == [{"label": "Yes", "count": 3}, {"label": "No", "count": 1}]


def test_results_of_a_rule_that_is_not_a_text_survey_say_why_not(world, api):
    url = reverse("api-survey-results", args=[world.project.pk, world.rule.pk])
    response = api("viewer", "GET", url)
    assert response.status_code == 404
    assert "not a text survey" in response.json()["detail"]
    theirs = reverse("api-survey-results", args=[world.outsider_project.pk, world.survey_rule.pk])
    assert api("viewer", "GET", theirs).status_code == 404


# --- Triggers and alerts on the rule endpoints -------------------------------------------------
def _rules(world) -> str:
    return reverse("api-rule-list", args=[world.project.pk])


def test_a_relative_trigger_in_hours_is_saved_and_shown(world, api):
    made = api(
        "editor",
        "POST",
        _rules(world),
        {
            "kind": "reminder",
            "name": "Two hours before",
            "body": "Hi [first_name], your visit is soon.",
            "trigger": "relative",
            "date_field": "enrollment_date",
            "offset": -2,
            "offset_unit": "hours",
        },
    )
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["trigger"], body["offset"], body["offset_unit"]) == ("relative", -2, "hours")
    assert body["schedule"] == "relative" and body["alert_members"] == []
    rule = MessageRule.objects.get(pk=body["id"])
    assert (rule.trigger, rule.offset, rule.offset_unit) == ("relative", -2, "hours")
    shown = api("viewer", "GET", reverse("api-rule-detail", args=[world.project.pk, rule.pk]))
    assert shown.json()["trigger"] == "relative"


def test_trigger_fields_the_form_would_refuse_get_the_form_s_messages(world, api, client):
    """The same bad logic trigger and team alert through the web form and through the API."""
    from tests.factories import verified_login

    bad = {
        "kind": "alert",
        "name": "Pain alert",
        "body": "Record [record_id] reported pain.",
        "recipients": "all",
        "trigger": "logic",
        "trigger_logic": "",
        "logic_repeat": "once",
        "notify_team": True,
        "offset_unit": "days",
        "send_time": "10:00",
    }
    verified_login(client, world.users["editor"])
    page = client.post(
        reverse("rule-create", args=[world.project.pk]),
        {**bad, "notify_team": "on", "record_ids": "", "offset": "0", "offset_days": "0"},
    )
    form_errors = {k: list(v) for k, v in page.context["form"].errors.items()}
    response = api("editor", "POST", _rules(world), bad)
    assert response.status_code == 400, response.content
    fields = response.json()["fields"]
    assert set(fields) == set(form_errors) >= {"trigger_logic", "alert_members"}
    for field, messages in form_errors.items():
        assert fields[field] == messages, field
    assert not MessageRule.objects.filter(name="Pain alert").exists()


def test_ids_the_api_takes_for_the_anchor_and_members_are_checked_in_words(world, api):
    response = api(
        "editor",
        "POST",
        _rules(world),
        {
            "kind": "reminder",
            "name": "Nudge",
            "body": "Hi",
            "trigger": "invitation",
            "anchor_rule": world.rule.pk,  # a reminder, not an invitation
            "repeat_every_days": 3,
            "repeat_count": 2,
        },
    )
    assert response.json()["fields"]["anchor_rule"] == [
        "Choose a survey invitation of this project."
    ]
    from tests.factories import MessageRuleFactory

    theirs = MessageRuleFactory(project=world.outsider_project, kind="invitation")
    for anchor in (999_999, theirs.pk):
        response = api("editor", "POST", _rules(world), {"name": "Nudge", "anchor_rule": anchor})
        assert response.json()["fields"]["anchor_rule"] == [
            "Choose a survey invitation of this project."
        ]
    outsider = world.users["outsider"].pk
    response = api(
        "editor",
        "POST",
        _rules(world),
        {
            "kind": "alert",
            "name": "Team",
            "body": "Record [record_id]",
            "trigger": "logic",
            "trigger_logic": "[pain] > 5",
            "notify_team": True,
            "alert_members": [outsider],
        },
    )
    assert response.json()["fields"]["alert_members"] == [
        "Only members of this project can receive its alerts."
    ]
    assert not MessageRule.objects.filter(name__in=["Nudge", "Team"]).exists()


def test_a_text_survey_cannot_be_created_through_the_api_and_it_says_where(world, api):
    response = api(
        "editor",
        "POST",
        _rules(world),
        {"kind": "text_survey", "name": "By text", "body": "Hi", "schedule": "manual"},
    )
    assert response.status_code == 400
    assert "create it on the project's Messages page" in response.json()["fields"]["kind"][0]
    assert not MessageRule.objects.filter(name="By text").exists()


def test_rule_lists_show_alert_members_in_the_same_number_of_queries(world, api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    token = world.tokens["viewer"]

    def listed():
        with CaptureQueriesContext(connection) as queries:
            rows = call(token, "GET", _rules(world)).json()["results"]
        return rows, len(queries)

    listed()  # the token's first use of the minute records it (once)
    world.rule.alert_members.set([world.users["editor"], world.users["viewer"]])
    rows, one = listed()
    row = next(r for r in rows if r["id"] == world.rule.pk)
    assert row["alert_members"] == sorted([world.users["editor"].pk, world.users["viewer"].pk])
    for i in range(5):
        rule = MessageRule.objects.create(
            project=world.project,
            kind="alert",
            name=f"Alert {i}",
            body="Hi",
            schedule="manual",
            created_by=world.users["owner"],
        )
        rule.alert_members.set([world.users["owner"]])
    assert listed()[1] == one
