"""Input refused before any view sees it, response headers, and API tokens that expire, are
revoked and carry a scope."""

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from portal.models import ApiToken, OnboardingRequest
from portal.services.profile import api_token_create
from tests.factories import ProviderLinkFactory

pytestmark = pytest.mark.django_db


# --- Invalid UTF-8 and file parts ----------------------------------------------------------------
def test_a_form_with_invalid_utf8_is_refused_with_a_message_and_nothing_is_stored(
    as_user, researcher
):
    client = as_user(researcher)
    body = b"full_name=Riley%FF%FE&time_zone=America%2FChicago"
    response = client.post(
        reverse("profile"), body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert "not valid text" in response.content.decode()
    researcher.refresh_from_db()
    assert researcher.full_name == "Riley Researcher" and researcher.time_zone != "America/Chicago"


def test_raw_invalid_bytes_in_a_form_are_refused_too(as_user, researcher):
    response = as_user(researcher).post(
        reverse("profile"),
        b"full_name=Riley\xff&time_zone=UTC",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400


def test_an_address_with_invalid_utf8_is_refused(as_user, researcher):
    response = as_user(researcher).get(reverse("onboarding-list") + "?q=%C3%28")
    assert response.status_code == 400
    assert "not valid text" in response.content.decode()


def test_a_webhook_with_invalid_utf8_is_refused_and_stores_no_reply(client):
    link = ProviderLinkFactory(provider="mosio")
    response = client.post(
        reverse("mosio-inbound", args=[link.webhook_secret]),
        b"ApiKey=x&From=12025550123&Body=ST%FFOP",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400
    assert response.content.decode() == "The form contains characters that are not valid text."
    from messaging.models import Reply

    assert not Reply.objects.exists()


def test_valid_unicode_in_a_form_is_kept(as_user, researcher):
    as_user(researcher).post(
        reverse("profile"), {"full_name": "Zoë Ñúñez 王", "time_zone": "America/Chicago"}
    )
    researcher.refresh_from_db()
    assert researcher.full_name == "Zoë Ñúñez 王"


def test_a_file_posted_to_a_form_that_takes_none_is_refused(as_user, researcher, instance):
    client = as_user(researcher)
    response = client.post(
        reverse("onboarding-create"),
        {
            "redcap_instance": instance.pk,
            "redcap_project_id": "77",
            "project_title": "With a file",
            "account_choice": "new",
            "attachment": SimpleUploadedFile("x.pdf", b"%PDF-1.4 data"),
        },
    )
    assert response.status_code == 400
    assert "takes no files" in response.content.decode()
    assert not OnboardingRequest.objects.exists()


# --- Headers ----------
def test_every_answer_has_a_permissions_policy_and_no_server_banner(client):
    for url in (reverse("login"), "/no-such-page/", reverse("signup")):
        response = client.get(url)
        assert "camera=()" in response["Permissions-Policy"]
        assert "geolocation=()" in response["Permissions-Policy"]
        assert "Server" not in response


def test_gunicorns_own_server_header_carries_no_version():
    import gunicorn
    from gunicorn.http import wsgi

    assert wsgi.SERVER == "gunicorn"
    assert gunicorn.__version__ not in wsgi.SERVER


# --- API tokens ----------
def api(client, key, method="get"):
    return getattr(client, method)(reverse("api-project-list"), HTTP_AUTHORIZATION=f"Token {key}")


def test_an_expired_token_is_refused_with_the_date(researcher):
    key = api_token_create(user=researcher, days=30)
    assert api(Client(), key).status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - datetime.timedelta(minutes=1))
    response = api(Client(), key)
    assert response.status_code == 401
    assert "expired on" in response.json()["detail"]


def test_a_token_without_expiry_lasts(researcher):
    key = api_token_create(user=researcher, days=0)
    assert ApiToken.objects.get().expires_at is None
    assert api(Client(), key).status_code == 200


def test_a_revoked_or_replaced_token_is_refused_with_a_message(researcher):
    old = api_token_create(user=researcher)
    api_token_create(user=researcher)
    response = api(Client(), old)
    assert response.status_code == 401
    assert "revoked, replaced" in response.json()["detail"]


def test_a_password_reset_revokes_the_token(client, researcher):
    import re

    from django.core import mail

    key = api_token_create(user=researcher)
    client.post(reverse("password_reset"), {"email": researcher.email})
    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    page = client.get(re.sub(r"^https?://[^/]+", "", link), follow=True)
    set_url = page.redirect_chain[-1][0]
    client.post(
        set_url, {"new_password1": "another good phrase", "new_password2": "another good phrase"}
    )
    assert api(Client(), key).status_code == 401


def test_a_read_only_token_cannot_write_and_a_read_write_one_can_try(researcher):
    read = api_token_create(user=researcher, scope="read")
    response = api(Client(), read, "post")
    assert response.status_code == 403
    assert "read-only" in response.json()["detail"]
    write = api_token_create(user=researcher, scope="write")
    assert api(Client(), write, "post").status_code == 405  # no write endpoint yet; allowed
    assert api(Client(), write).status_code == 200


def test_the_profile_makes_a_token_with_the_chosen_scope_and_expiry(as_user, researcher):
    response = as_user(researcher).post(
        reverse("api-token-create"), {"scope": "write", "days": "30"}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    assert token.scope == "write"
    assert (token.expires_at - timezone.now()).days in (29, 30)


@pytest.mark.parametrize(
    ("data", "field"), [({"scope": "admin"}, "scope"), ({"days": "9999"}, "days")]
)
def test_a_token_form_with_bad_choices_is_refused_and_makes_nothing(
    as_user, researcher, data, field
):
    response = as_user(researcher).post(reverse("api-token-create"), data)
    assert response.status_code == 400
    assert response.context["token_form"].errors[field]
    assert not ApiToken.objects.exists()
