"""What each endpoint answers, and that the web pages' rules (consent, opt-outs, quota, sending
hours) hold through the API because it calls the same services."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message, MessageRule, OptOut, Send
from portal.models import OnboardingRequest
from projects import crypto

pytestmark = pytest.mark.django_db


def test_a_project_shows_its_links_plan_and_this_months_use(world, api):
    body = api("viewer", "GET", reverse("api-project-detail", args=[world.project.pk])).json()
    assert body["title"] == "Sleep and Mood" and body["role"] == "viewer"
    assert body["links"]["provider"]["linked"] is True
    assert body["links"]["provider"]["paused"] is False
    assert body["links"]["redcap"]["linked"] is False
    assert body["setup"] == {"redcap": False, "provider": True, "mapping": True, "synced": False}
    assert body["plan"]["name"] == world.account.plan.name
    assert body["usage"]["used"] == 12 and body["usage"]["project_units"] == 0
    assert body["sending_hours"] == {"start": "00:00", "end": "23:59", "days": list(range(7))}


def test_no_answer_ever_holds_a_participants_number(world, api):
    number = crypto.decrypt(world.participant.phone_encrypted)
    p, part = world.project.pk, world.participant.pk
    for url in (
        reverse("api-participant-list", args=[p]),
        reverse("api-participant-detail", args=[p, part]),
        reverse("api-reply-list", args=[p]),
        reverse("api-message-list", args=[p]),
        reverse("api-message-detail", args=[p, world.message.pk]),
    ):
        text = api("viewer", "GET", url).content.decode()
        assert number not in text and number[2:] not in text, url
    row = api("viewer", "GET", reverse("api-participant-detail", args=[p, part])).json()
    assert row["phone"] == f"•••-•••-{world.participant.phone_last4}"


def test_participants_filter_by_view_and_search(world, api):
    url = reverse("api-participant-list", args=[world.project.pk])
    assert api("viewer", "GET", url).json()["count"] == 2
    assert [r["record_id"] for r in api("viewer", "GET", url + "?search=2").json()["results"]] == [
        "2"
    ]
    assert api("viewer", "GET", url + "?show=withdrawn").json()["count"] == 0


def test_a_staff_opt_out_shows_in_the_status_and_the_consent_timeline(world, api):
    p, part = world.project.pk, world.participant.pk
    response = api(
        "editor",
        "POST",
        reverse("api-participant-opt-out", args=[p, part]),
        {"reason": "Asked by phone on March 4"},
    )
    assert response.status_code == 200, response.content
    assert response.json()["participant"]["status"] == "opted_out"
    detail = api("viewer", "GET", reverse("api-participant-detail", args=[p, part])).json()
    assert detail["suppressed"] is True
    (event,) = detail["consent_timeline"]
    assert event["event"] == "opted_out" and event["by_staff"] is True
    assert "Asked by phone on March 4" in event["detail"]
    listed = api("viewer", "GET", reverse("api-participant-list", args=[p]) + "?search=1").json()
    assert listed["results"][0]["status"] == "opted_out"


def test_an_ad_hoc_text_is_queued_as_from_the_web_page(world, api):
    url = reverse("api-participant-text", args=[world.project.pk, world.participant.pk])
    response = api("editor", "POST", url, {"body": "Hi [first_name], see you Tuesday."})
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["id"])
    assert (message.kind, message.created_by, message.participant) == (
        "adhoc",
        world.users["editor"],
        world.participant,
    )
    assert message.status in (Message.Status.QUEUED, Message.Status.SENT)


def test_an_opted_out_participant_cannot_be_texted_through_the_api_either(world, api):
    OptOut.objects.create(
        project=world.project,
        participant=world.participant,
        phone_fingerprint=world.participant.phone_fingerprint,
        source=OptOut.Source.KEYWORD,
    )
    url = reverse("api-participant-text", args=[world.project.pk, world.participant.pk])
    before = Message.objects.count()
    response = api("editor", "POST", url, {"body": "Hi"})
    assert response.status_code == 400
    assert "cannot be texted" in response.json()["fields"]["non_field_errors"][0]
    assert Message.objects.count() == before


def test_send_now_answers_the_sends_id_and_its_progress_address(world, api):
    url = reverse("api-rule-send-now", args=[world.project.pk, world.rule.pk])
    response = api("editor", "POST", url, {"audience": "everyone"})
    assert response.status_code == 202, response.content
    body = response.json()
    send = Send.objects.get(pk=body["id"])
    assert body["total"] == send.total == 2
    progress = api("viewer", "GET", body["progress"]).json()
    assert progress["id"] == send.pk and progress["progress"]["total"] == 2
    assert progress["rule"] == {"id": world.rule.pk, "name": "Check-in"}


def test_send_now_by_default_texts_only_those_who_have_not_received_it(world, api):
    url = reverse("api-rule-send-now", args=[world.project.pk, world.rule.pk])

    response = api("editor", "POST", url)

    assert response.status_code == 202, response.content
    send = Send.objects.get(pk=response.json()["id"])
    assert send.total == 1  # Sam received it already; only Kim is texted
    assert list(send.messages.values_list("participant__record_id", flat=True)) == ["2"]


def test_send_now_refuses_an_audience_it_does_not_know(world, api):
    url = reverse("api-rule-send-now", args=[world.project.pk, world.rule.pk])
    before = Send.objects.count()

    response = api("editor", "POST", url, {"audience": "all"})

    assert response.status_code == 400
    assert "audience" in response.json()["fields"]
    assert Send.objects.count() == before


def test_a_paused_rule_cannot_be_sent_now(world, api):
    p, r = world.project.pk, world.rule.pk
    assert (
        api("editor", "POST", reverse("api-rule-pause", args=[p, r])).json()["status"] == "paused"
    )
    response = api("editor", "POST", reverse("api-rule-send-now", args=[p, r]))
    assert response.status_code == 400
    assert response.json()["fields"]["non_field_errors"] == ["This message is paused."]


def test_a_rule_is_created_activated_changed_and_archived(world, api):
    rules = reverse("api-rule-list", args=[world.project.pk])
    once = (timezone.localdate() + datetime.timedelta(days=3)).isoformat()
    made = api(
        "editor",
        "POST",
        rules,
        {
            "kind": "reminder",
            "name": "Visit",
            "body": "Hi [first_name], your visit is soon.",
            "schedule": "once",
            "once_date": once,
            "send_time": "10:30",
        },
    )
    assert made.status_code == 201, made.content
    rule_id = made.json()["id"]
    assert made.json()["send_time"] == "10:30" and made.json()["status"] == "draft"
    p = world.project.pk
    assert api("editor", "POST", reverse("api-rule-activate", args=[p, rule_id])).json()[
        "status"
    ] == ("active")
    changed = api("editor", "PATCH", reverse("api-rule-detail", args=[p, rule_id]), {"name": "V2"})
    assert changed.json()["name"] == "V2" and changed.json()["status"] == "active"
    archived = api("owner", "POST", reverse("api-rule-archive", args=[p, rule_id])).json()
    assert archived["status"] == "archived"
    refused = api("editor", "PATCH", reverse("api-rule-detail", args=[p, rule_id]), {"name": "V3"})
    assert refused.status_code == 400
    assert "archived" in refused.json()["detail"]
    assert MessageRule.objects.get(pk=rule_id).name == "V2"
    listed = api("viewer", "GET", rules + "?status=archived").json()["results"]
    assert [r["id"] for r in listed] == [rule_id]


def test_the_message_log_filters_by_status_rule_participant_and_day(world, api):
    url = reverse("api-message-list", args=[world.project.pk])
    now = timezone.now()
    Message.objects.create(
        project=world.project,
        participant=world.other_participant,
        occurrence="adhoc",
        dedup_key="adhoc:x",
        status="failed",
        due_at=now - datetime.timedelta(days=10),
        not_before=now,
    )

    def ids(query: str) -> list[int]:
        return [m["id"] for m in api("viewer", "GET", url + query).json()["results"]]

    assert ids("?status=delivered") == [world.message.pk]
    assert ids("?status=delivered,failed") != [] and len(ids("?status=delivered,failed")) == 2
    assert ids(f"?rule={world.rule.pk}") == [world.message.pk]
    assert ids(f"?participant={world.other_participant.pk}") != [world.message.pk]
    assert ids(f"?participant={world.participant.pk}") == [world.message.pk]
    assert ids("?record=2") == ids(f"?participant={world.other_participant.pk}")
    day = timezone.localdate()
    assert ids(f"?since={day.isoformat()}") == [world.message.pk]
    assert world.message.pk not in ids(f"?until={(day - datetime.timedelta(days=5)).isoformat()}")


def test_a_message_shows_its_text_calls_and_delivery(world, api):
    url = reverse("api-message-detail", args=[world.project.pk, world.message.pk])
    body = api("viewer", "GET", url).json()
    assert body["body"] == "Hi Sam, a reminder from the study."
    assert [a["outcome"] for a in body["attempt_log"]] == ["accepted"]
    assert body["delivery"]["status"] == "delivered"
    assert body["delivery"]["provider_message_id"] == "LM1"
    assert body["participant"] == {"id": world.participant.pk, "record_id": "1"}


def test_replies_list_masks_numbers_and_filters_by_participant(world, api):
    url = reverse("api-reply-list", args=[world.project.pk])
    rows = api("viewer", "GET", url).json()["results"]
    assert [r["body"] for r in rows] == ["Thanks!"]
    assert rows[0]["phone"].startswith("•••-•••-")
    other = api("viewer", "GET", url + f"?participant={world.other_participant.pk}").json()
    assert other["count"] == 0


def test_billing_usage_history_and_credit_packs(world, api):
    accounts = api("viewer", "GET", reverse("api-account-list")).json()["results"]
    assert [(a["name"], a["role"]) for a in accounts] == [("Sleep Lab", "member")]
    assert accounts[0]["usage"]["used"] == 12
    usage = api("viewer", "GET", reverse("api-account-usage", args=[world.account.pk])).json()
    assert usage["period"]["used"] == 12 and usage["unit"] == "message"
    assert usage["projection"]["projected"] >= 12
    assert {p["title"] for p in usage["projects"]} == {"Sleep and Mood"}
    periods = api("viewer", "GET", reverse("api-account-periods", args=[world.account.pk]))
    assert periods.json()["count"] == 1
    past = api(
        "viewer",
        "GET",
        reverse("api-account-usage", args=[world.account.pk])
        + f"?period={periods.json()['results'][0]['id']}",
    )
    assert past.status_code == 200
    packs = reverse("api-credit-pack-request-list", args=[world.account.pk])
    assert api("viewer", "GET", packs).json()["count"] == 1
    denied = api("viewer", "POST", packs, {"packs": 1})
    assert denied.status_code == 403
    assert "Only an owner" in denied.json()["detail"]


def test_an_onboarding_request_is_drafted_changed_submitted_and_commented(world, api):
    from billing.models import Plan

    made = api(
        "viewer",
        "POST",
        reverse("api-onboarding-request-list"),
        {
            "redcap_instance_id": world.instance.pk,
            "redcap_project_id": 5151,
            "project_title": "Walk more",
        },
    )
    assert made.status_code == 201, made.content
    pk = made.json()["id"]
    assert made.json()["status"] == "draft"
    detail = reverse("api-onboarding-request-detail", args=[pk])
    incomplete = api("viewer", "POST", reverse("api-onboarding-request-submit", args=[pk]))
    assert incomplete.status_code == 400
    assert "Before submitting, add the PI's name." in incomplete.json()["fields"]["pi_name"]
    changed = api(
        "viewer",
        "PATCH",
        detail,
        {
            "pi_name": "Dana Park",
            "pi_email": "dana@uni.test",
            "irb_protocol": "IRB-7",
            "irb_status": "approved",
            "summary": "Adults walk more.",
            "expected_participants": 50,
            "expected_messages_per_month": 200,
            "message_kinds": ["reminder"],
            "new_account_name": "Walking Lab",
            "new_account_plan_id": Plan.objects.first().pk,
            "new_account_time_zone": "America/Chicago",
            "attest_no_phi": True,
            "attest_consent": True,
        },
    )
    assert changed.status_code == 200, changed.content
    submitted = api("viewer", "POST", reverse("api-onboarding-request-submit", args=[pk]))
    assert submitted.json()["status"] == "submitted"
    late = api("viewer", "PATCH", detail, {"pi_name": "Someone"})
    assert late.status_code == 400 and "can no longer be edited" in late.json()["detail"]
    comments = reverse("api-onboarding-comment-list", args=[pk])
    assert api("viewer", "POST", comments, {"body": "Letter attached soon."}).status_code == 201
    assert api("viewer", "GET", comments).json()["results"][0]["author"] == "Vi Viewer"
    withdrawn = api("viewer", "POST", reverse("api-onboarding-request-withdraw", args=[pk]))
    assert withdrawn.json()["status"] == "withdrawn"
    assert OnboardingRequest.objects.get(pk=pk).status == "withdrawn"


def test_dates_and_times_come_in_the_callers_time_zone(world, api):
    world.users["viewer"].time_zone = "America/Denver"
    world.users["viewer"].save()
    url = reverse("api-message-detail", args=[world.project.pk, world.message.pk])
    due = api("viewer", "GET", url).json()["due_at"]
    assert due.endswith(("-07:00", "-06:00"))
