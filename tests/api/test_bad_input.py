"""Bad input gets a clear 4xx with a JSON error naming the field, and nothing is written."""

import datetime

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from billing.models import CreditPackRequest
from messaging.models import Message, MessageRule
from portal.models import ApiToken, OnboardingRequest
from portal.services.profile import api_token_create
from tests.api.conftest import call

pytestmark = pytest.mark.django_db


def _rules(world) -> str:
    return reverse("api-rule-list", args=[world.project.pk])


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"status", "code", "detail", "fields"}
    assert body["status"] == status
    return body


def test_malformed_json_is_refused_in_words_and_nothing_is_written(world, api):
    before = MessageRule.objects.count()
    body = _error(api("editor", "POST", _rules(world), '{"name": "Reminder",'), 400)
    assert body["code"] == "parse_error"
    assert "not valid JSON" in body["detail"]
    assert MessageRule.objects.count() == before


@pytest.mark.parametrize("content_type", ["multipart", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_refused_as_the_wrong_media_type(world, content_type):
    from django.test import Client

    before = MessageRule.objects.count()
    headers = {"HTTP_AUTHORIZATION": f"Token {world.tokens['editor']}"}
    if content_type == "multipart":
        response = Client().post(_rules(world), {"name": "Reminder"}, **headers)
    else:
        response = Client().post(
            _rules(world), "name=Reminder", content_type=content_type, **headers
        )
    body = _error(response, 415)
    assert body["code"] == "unsupported_media_type"
    assert "JSON" in body["detail"]
    assert MessageRule.objects.count() == before


def test_a_json_list_instead_of_an_object_is_refused(world, api):
    body = _error(api("editor", "POST", _rules(world), [1, 2]), 400)
    assert "non_field_errors" in body["fields"]


def _counts() -> tuple[int, int, int]:
    return MessageRule.objects.count(), CreditPackRequest.objects.count(), Message.objects.count()


@pytest.mark.parametrize(
    ("route", "payload", "field"),
    [
        ("rules", {"name": 123}, "name"),
        ("rules", {"stop_when_complete": "true"}, "stop_when_complete"),
        ("rules", {"offset_days": "3"}, "offset_days"),
        ("rules", {"recur_days": "0,1"}, "recur_days"),
        ("rules", {"recur_days": [0, 9]}, "recur_days.1"),
        ("rules", {"send_time": "25:00"}, "send_time"),
        ("rules", {"once_date": "20260301"}, "once_date"),
        ("rules", {"kind": "newsletter"}, "kind"),
        ("credit-packs", {"packs": "2"}, "packs"),
        ("credit-packs", {"packs": True}, "packs"),
        ("credit-packs", {"packs": 0}, "packs"),
        ("onboarding", {"redcap_instance_id": "1"}, "redcap_instance_id"),
        ("onboarding", {"attest_no_phi": "yes"}, "attest_no_phi"),
        ("text", {"body": ["Hi"]}, "body"),
    ],
)
def test_a_wrong_type_is_refused_naming_the_field(world, api, route, payload, field):
    url = {
        "rules": _rules(world),
        "credit-packs": reverse("api-credit-pack-request-list", args=[world.account.pk]),
        "onboarding": reverse("api-onboarding-request-list"),
        "text": reverse("api-participant-text", args=[world.project.pk, world.participant.pk]),
    }[route]
    counts = (
        MessageRule.objects.count(),
        CreditPackRequest.objects.count(),
        Message.objects.count(),
    )
    body = _error(api("owner", "POST", url, payload), 400)
    assert field in body["fields"], body
    assert body["fields"][field][0]
    assert field.split(".")[0] in body["detail"]
    after = (
        MessageRule.objects.count(),
        CreditPackRequest.objects.count(),
        Message.objects.count(),
    )
    assert after == counts


def test_unknown_fields_are_refused_one_by_one(world, api):
    body = _error(api("editor", "POST", _rules(world), {"nmae": "x", "colour": "red"}), 400)
    assert set(body["fields"]) == {"nmae", "colour"}
    assert "This operation accepts:" in body["fields"]["nmae"][0]
    assert "name" in body["fields"]["nmae"][0]


def test_an_oversized_body_is_refused_before_it_is_read(world, api):
    before = MessageRule.objects.count()
    huge = {"name": "x", "body": "y" * (70 * 1024)}
    body = _error(api("editor", "POST", _rules(world), huge), 413)
    assert body["code"] == "payload_too_large"
    assert "64 KB" in body["detail"]
    assert MessageRule.objects.count() == before


def test_an_expired_token_is_refused_with_its_date(world):
    ApiToken.objects.filter(user=world.users["editor"]).update(
        expires_at=timezone.now() - datetime.timedelta(days=1)
    )
    body = _error(call(world.tokens["editor"], "GET", _rules(world)), 401)
    assert "expired on" in body["detail"]
    assert body["code"] == "authentication_failed"


def test_a_token_revoked_by_a_password_change_is_refused_and_writes_nothing(world):
    editor = world.users["editor"]
    editor.set_password("a brand new passphrase")
    editor.save()
    before = MessageRule.objects.count()
    body = _error(call(world.tokens["editor"], "POST", _rules(world), {"name": "x"}), 401)
    assert "revoked" in body["detail"]
    assert MessageRule.objects.count() == before


def test_no_token_at_all_is_401_with_the_scheme_named(world):
    response = call(None, "GET", _rules(world))
    _error(response, 401)
    assert response["WWW-Authenticate"] == "Token"


def test_a_read_only_token_may_not_write(world):
    key = api_token_create(user=world.users["editor"], scope="read")
    before = MessageRule.objects.count()
    body = _error(call(key, "POST", _rules(world), {"name": "x"}), 403)
    assert "read-only" in body["detail"]
    assert MessageRule.objects.count() == before
    assert call(key, "GET", _rules(world)).status_code == 200


def test_another_users_token_on_a_project_they_are_not_in_is_404_and_writes_nothing(world):
    theirs = reverse("api-rule-list", args=[world.outsider_project.pk])
    before = MessageRule.objects.count()
    body = _error(call(world.tokens["editor"], "POST", theirs, {"name": "x", "body": "y"}), 404)
    assert body["detail"] == "No such project."
    assert MessageRule.objects.count() == before


def test_a_rule_the_form_would_refuse_gets_the_forms_messages_field_by_field(world, api, client):
    """The same bad rule through the web form and through the API: the same words, per field."""
    from tests.factories import verified_login

    bad = {
        "kind": "invitation",
        "name": "Weekly survey",
        "body": "Hello [favourite_colour]",
        "recipients": "records",
        "schedule": "recurring",
        "send_time": "10:00",
    }
    verified_login(client, world.users["editor"])
    page = client.post(
        reverse("rule-create", args=[world.project.pk]),
        {**bad, "record_ids": "", "offset_days": "0"},
    )
    form_errors = {k: list(v) for k, v in page.context["form"].errors.items()}
    body = _error(api("editor", "POST", _rules(world), bad), 400)
    assert set(body["fields"]) == set(form_errors) >= {"body", "record_ids", "start_date"}
    for field, messages in form_errors.items():
        assert body["fields"][field] == messages, field
    assert not MessageRule.objects.filter(name="Weekly survey").exists()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=100000", "limit"),
        ("offset=-1", "offset"),
        ("offset=1.5", "offset"),
        ("limit=10&limit=20", "limit"),
        ("stauts=failed", "stauts"),
        ("status=sent,lost", "status"),
        ("rule=seven", "rule"),
        ("since=2026-02-30", "since"),
        ("since=2026-03-05&until=2026-03-01", "until"),
        ("participant=999999", "participant"),
    ],
)
def test_junk_in_the_query_string_is_refused_naming_the_parameter(world, api, query, field):
    url = reverse("api-message-list", args=[world.project.pk]) + "?" + query
    body = _error(api("viewer", "GET", url), 400)
    assert field in body["fields"], body


def test_paging_parameters_on_an_address_that_is_not_a_list_are_refused(world, api):
    url = reverse("api-project-detail", args=[world.project.pk]) + "?limit=5"
    body = _error(api("viewer", "GET", url), 400)
    assert "no query parameters" in body["fields"]["limit"][0]


def test_text_that_is_not_utf8_in_the_address_gets_the_json_error(world, api):
    url = reverse("api-message-list", args=[world.project.pk]) + "?record=%ff"
    body = _error(api("viewer", "GET", url), 400)
    assert "not valid text" in body["detail"]


def test_an_address_under_api_that_names_nothing_is_a_json_404(world, api):
    body = _error(api("viewer", "POST", "/api/projects/1/nothing-here/"), 404)
    assert "/api/" in body["detail"]


def test_an_id_too_long_for_the_database_is_a_404_not_an_error(world, api):
    body = _error(api("viewer", "GET", "/api/projects/99999999999999999999999/"), 404)
    assert body["code"] == "not_found"


@override_settings(API_MAX_BODY_BYTES=100)
def test_the_size_limit_holds_without_a_content_length(world):
    """A body sent without a length (chunked) is cut at the limit too."""
    from io import BytesIO

    from django.test import Client

    payload = b'{"body": "' + b"x" * 500 + b'"}'
    response = Client().generic(
        "POST",
        reverse("api-participant-text", args=[world.project.pk, world.participant.pk]),
        data=b"",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {world.tokens['editor']}",
        **{"wsgi.input": BytesIO(payload), "CONTENT_LENGTH": ""},
    )
    assert response.status_code in (400, 413)
    assert not Message.objects.filter(adhoc_body__startswith="xxx").exists()


def test_an_onboarding_request_with_the_same_redcap_project_is_refused_naming_it(world, api):
    url = reverse("api-onboarding-request-list")
    data = {
        "redcap_instance_id": world.instance.pk,
        "redcap_project_id": world.onboarding.redcap_project_id,
        "project_title": "Twin",
    }
    before = OnboardingRequest.objects.count()
    body = _error(api("owner", "POST", url, data), 400)
    assert "already an open request" in body["fields"]["redcap_project_id"][0]
    assert OnboardingRequest.objects.count() == before
