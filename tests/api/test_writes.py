"""Writes: fields only the server sets cannot be posted (mass assignment), and every write goes
through the same service the web page calls (patched here, and seen called)."""

from unittest import mock

import pytest
from django.urls import reverse

from billing.models import CreditPackRequest, UsagePeriod
from messaging.models import Message, MessageRule, OptOut
from portal.models import OnboardingRequest

pytestmark = pytest.mark.django_db


# --- Mass assignment ---------------------------------------------------------------------------
def test_posting_a_rules_status_project_or_author_is_refused_and_creates_nothing(world, api):
    url = reverse("api-rule-list", args=[world.project.pk])
    before = MessageRule.objects.count()
    body = api(
        "editor",
        "POST",
        url,
        {
            "name": "Sneaky",
            "kind": "reminder",
            "body": "Hi",
            "schedule": "manual",
            "status": "active",
            "project": world.outsider_project.pk,
            "created_by": world.users["outsider"].pk,
            "materialized_through": "2020-01-01T00:00:00Z",
        },
    ).json()
    assert set(body["fields"]) == {"status", "project", "created_by", "materialized_through"}
    assert MessageRule.objects.count() == before


def test_a_rule_made_without_them_is_a_draft_of_this_project_by_the_caller(world, api):
    url = reverse("api-rule-list", args=[world.project.pk])
    data = {"name": "By hand", "kind": "reminder", "body": "Hi", "schedule": "manual"}
    response = api("editor", "POST", url, data)
    assert response.status_code == 201, response.content
    rule = MessageRule.objects.get(pk=response.json()["id"])
    assert (rule.project, rule.created_by, rule.status) == (
        world.project,
        world.users["editor"],
        MessageRule.Status.DRAFT,
    )


def test_patching_a_rules_status_is_refused_and_the_rule_is_unchanged(world, api):
    url = reverse("api-rule-detail", args=[world.project.pk, world.rule.pk])
    response = api("editor", "PATCH", url, {"status": "archived", "name": "Renamed"})
    assert response.status_code == 400
    world.rule.refresh_from_db()
    assert (world.rule.status, world.rule.name) == ("active", "Check-in")


def test_a_credit_pack_request_cannot_name_its_units_status_or_account(world, api):
    url = reverse("api-credit-pack-request-list", args=[world.account.pk])
    before = CreditPackRequest.objects.count()
    response = api(
        "owner",
        "POST",
        url,
        {
            "packs": 1,
            "units": 1_000_000,
            "pack_size": 1_000_000,
            "status": "approved",
            "account": world.outsider_account.pk,
            "credits": 5000,
        },
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"units", "pack_size", "status", "account", "credits"}
    assert CreditPackRequest.objects.count() == before
    made = api("owner", "POST", url, {"packs": 2}).json()
    assert (made["units"], made["status"]) == (2 * world.account.plan.pack_size, "requested")
    period = UsagePeriod.objects.get(account=world.account)
    assert period.credits == 0  # nothing is added until an administrator approves


def test_an_onboarding_request_cannot_be_filed_approved_or_for_someone_else(world, api):
    url = reverse("api-onboarding-request-list")
    before = OnboardingRequest.objects.count()
    response = api(
        "viewer",
        "POST",
        url,
        {
            "redcap_instance_id": world.instance.pk,
            "redcap_project_id": 4242,
            "project_title": "Mine",
            "status": "approved",
            "requester": world.users["owner"].pk,
            "project": world.project.pk,
            "decided_by": world.users["owner"].pk,
        },
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"status", "requester", "project", "decided_by"}
    assert OnboardingRequest.objects.count() == before


def test_an_onboarding_request_cannot_bill_an_account_the_caller_is_not_on(world, api):
    response = api(
        "viewer",
        "POST",
        reverse("api-onboarding-request-list"),
        {
            "redcap_instance_id": world.instance.pk,
            "redcap_project_id": 4243,
            "project_title": "Mine",
            "billing_account_id": world.outsider_account.pk,
        },
    )
    assert response.status_code == 400
    assert response.json()["fields"]["billing_account_id"] == [
        "You can only bill a project to an account you belong to."
    ]


def test_an_ad_hoc_text_cannot_choose_its_status_or_recipient(world, api):
    url = reverse("api-participant-text", args=[world.project.pk, world.participant.pk])
    before = Message.objects.count()
    response = api(
        "editor",
        "POST",
        url,
        {"body": "Hi", "status": "sent", "participant": world.other_participant.pk, "units": 0},
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"status", "participant", "units"}
    assert Message.objects.count() == before


def test_a_staff_opt_out_cannot_choose_its_source(world, api):
    url = reverse("api-participant-opt-out", args=[world.project.pk, world.participant.pk])
    response = api("editor", "POST", url, {"reason": "Asked by phone", "source": "keyword"})
    assert response.status_code == 400
    assert not OptOut.objects.exists()


# --- Every write goes through the web pages' service -------------------------------------------
def _writes(world):
    p, r, part = world.project.pk, world.rule.pk, world.participant.pk
    editor = world.users["editor"]
    owner = world.users["owner"]
    return [
        (
            "messaging.services.rule_save",
            "editor",
            "POST",
            reverse("api-rule-list", args=[p]),
            {"name": "New", "kind": "reminder", "body": "Hi", "schedule": "manual"},
            {"project": world.project, "actor": editor},
        ),
        (
            "messaging.services.rule_save",
            "editor",
            "PATCH",
            reverse("api-rule-detail", args=[p, r]),
            {"name": "Renamed"},
            {"project": world.project, "actor": editor, "rule": world.rule},
        ),
        (
            "messaging.services.rule_set_status",
            "editor",
            "POST",
            reverse("api-rule-pause", args=[p, r]),
            None,
            {"rule": world.rule, "status": "paused", "actor": editor},
        ),
        (
            "messaging.services.rule_set_status",
            "editor",
            "POST",
            reverse("api-rule-archive", args=[p, r]),
            None,
            {"rule": world.rule, "status": "archived", "actor": editor},
        ),
        (
            "messaging.services.rule_set_status",
            "editor",
            "POST",
            reverse("api-rule-activate", args=[p, r]),
            None,
            {"rule": world.rule, "status": "active", "actor": editor},
        ),
        (
            "messaging.services.send_now",
            "editor",
            "POST",
            reverse("api-rule-send-now", args=[p, r]),
            None,
            {"rule": world.rule, "actor": editor},
        ),
        (
            "messaging.services.adhoc_send",
            "editor",
            "POST",
            reverse("api-participant-text", args=[p, part]),
            {"body": "Hi [first_name]"},
            {"participant": world.participant, "body": "Hi [first_name]", "actor": editor},
        ),
        (
            "messaging.services.participant_opt_out",
            "editor",
            "POST",
            reverse("api-participant-opt-out", args=[p, part]),
            {"reason": "Asked by phone"},
            {"participant": world.participant, "actor": editor, "reason": "Asked by phone"},
        ),
        (
            "billing.services.credit_pack_request_create",
            "owner",
            "POST",
            reverse("api-credit-pack-request-list", args=[world.account.pk]),
            {"packs": 3, "note": "Busy month"},
            {"account": world.account, "packs": 3, "note": "Busy month", "actor": owner},
        ),
        (
            "portal.services.onboarding.onboarding_request_create",
            "owner",
            "POST",
            reverse("api-onboarding-request-list"),
            {"redcap_instance_id": world.instance.pk, "redcap_project_id": 9, "project_title": "T"},
            {"requester": owner, "submit": False},
        ),
        (
            "portal.services.onboarding.onboarding_request_update",
            "owner",
            "PATCH",
            reverse("api-onboarding-request-detail", args=[world.onboarding.pk]),
            {"pi_name": "Dana Park"},
            {"onboarding_request": world.onboarding, "actor": owner},
        ),
        (
            "portal.services.onboarding.onboarding_request_submit",
            "owner",
            "POST",
            reverse("api-onboarding-request-submit", args=[world.onboarding.pk]),
            None,
            {"onboarding_request": world.onboarding, "actor": owner},
        ),
        (
            "portal.services.onboarding.onboarding_request_withdraw",
            "owner",
            "POST",
            reverse("api-onboarding-request-withdraw", args=[world.onboarding.pk]),
            None,
            {"onboarding_request": world.onboarding, "actor": owner},
        ),
        (
            "portal.services.onboarding.onboarding_comment_create",
            "owner",
            "POST",
            reverse("api-onboarding-comment-list", args=[world.onboarding.pk]),
            {"body": "Any news?"},
            {"onboarding_request": world.onboarding, "author": owner, "body": "Any news?"},
        ),
    ]


WRITE_COUNT = 14


def _complete(request: OnboardingRequest) -> None:
    from billing.models import Plan

    OnboardingRequest.objects.filter(pk=request.pk).update(
        pi_name="Dana Park",
        pi_email="dana@uni.test",
        irb_protocol="IRB-1",
        irb_status="approved",
        summary="A study.",
        expected_participants=10,
        expected_messages_per_month=100,
        message_kinds=["reminder"],
        new_account_name="New lab",
        new_account_plan=Plan.objects.first(),
        new_account_time_zone="America/Chicago",
        attest_no_phi=True,
        attest_consent=True,
    )


@pytest.mark.parametrize("index", range(WRITE_COUNT))
def test_each_write_calls_the_service_the_web_page_calls(world, api, index):
    writes = _writes(world)
    assert len(writes) == WRITE_COUNT
    target, persona, method, url, body, expected = writes[index]
    if target.endswith("onboarding_request_submit"):
        _complete(world.onboarding)
    module_path, name = target.rsplit(".", 1)
    module = __import__(module_path, fromlist=[name])
    real = getattr(module, name)
    with mock.patch(target, wraps=real) as service:
        response = api(persona, method, url, body)
    assert response.status_code < 300, response.content
    service.assert_called_once()
    kwargs = service.call_args.kwargs
    for key, value in expected.items():
        assert kwargs[key] == value, key


def test_an_opt_in_calls_the_opt_in_service(world, api):
    from messaging.services import participant_opt_in, participant_opt_out

    participant_opt_out(
        participant=world.participant, actor=world.users["owner"], reason="Asked by phone"
    )
    url = reverse("api-participant-opt-in", args=[world.project.pk, world.participant.pk])
    with mock.patch("messaging.services.participant_opt_in", wraps=participant_opt_in) as service:
        response = api("editor", "POST", url, {"reason": "Asked in clinic to resume"})
    assert response.status_code == 200, response.content
    service.assert_called_once_with(
        participant=world.participant,
        actor=world.users["editor"],
        reason="Asked in clinic to resume",
    )
    assert response.json()["opted_in_at"] is not None
