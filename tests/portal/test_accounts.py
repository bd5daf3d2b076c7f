"""Sign-up with e-mail verification, sign-in with throttling, password reset, profile, API token."""

import datetime
import hashlib
import re

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

from portal.models import ApiToken, AuditEvent, OnboardingRequest, User
from portal.services.accounts import email_verification_token
from tests.factories import (
    OnboardingRequestFactory,
    ProjectFactory,
    UserFactory,
    verified_login,
)

pytestmark = pytest.mark.django_db

PASSWORD = "a-good-long-password"


def signup_data(**overrides) -> dict:
    data = {
        "full_name": "Sam Scientist",
        "email": "Sam@Uni.test",
        "time_zone": "America/Chicago",
        "password1": "correct horse battery",
        "password2": "correct horse battery",
    }
    data.update(overrides)
    return data


def sign_in(client, email, password, **extra):
    return client.post(reverse("login"), {"username": email, "password": password}, **extra)


def link_in(message) -> str:
    match = re.search(r"https?://\S+", message.body)
    assert match, message.body
    return match.group(0)


def path_of(url: str) -> str:
    return re.sub(r"^https?://[^/]+", "", url)


# --- Sign up and verify ---------------------------------------------------------------------------
def test_signing_up_creates_an_unverified_researcher_and_emails_a_link(
    client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("signup"), signup_data())
    assert response.status_code == 200
    assert "We sent a confirmation link to <strong>sam@uni.test</strong>" in (
        response.content.decode()
    )
    user = User.objects.get()
    assert user.email == "sam@uni.test"
    assert user.full_name == "Sam Scientist"
    assert user.time_zone == "America/Chicago"
    assert not user.email_verified
    assert not user.is_server_admin
    assert user.check_password("correct horse battery")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["sam@uni.test"]
    assert mail.outbox[0].subject == "[StudyText] Confirm your e-mail address"
    assert link_in(mail.outbox[0]).startswith(settings.SITE_URL + "/accounts/verify/")
    assert AuditEvent.objects.filter(action="user.signed_up", actor=user).exists()


@pytest.mark.parametrize("typed", ["riley@uni.test", "RILEY@UNI.TEST"])
def test_signing_up_with_a_taken_address_looks_the_same_and_tells_only_the_owner(
    client, researcher, typed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        taken = client.post(reverse("signup"), signup_data(email=typed))
    with django_capture_on_commit_callbacks(execute=True):
        fresh = client.post(reverse("signup"), signup_data(email="Nobody@Uni.test"))
    assert taken.status_code == fresh.status_code == 200
    assert taken.templates[0].name == fresh.templates[0].name == "registration/signup_done.html"
    assert "already" not in taken.content.decode()
    assert list(User.objects.filter(email__iexact="riley@uni.test")) == [researcher]
    [notice] = [m for m in mail.outbox if m.to == [researcher.email]]
    assert "Someone tried to sign up with your address" in notice.subject
    assert reverse("password_reset") in notice.body


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "not-an-address"}, "email", "Enter a valid email address."),
        ({"email": ""}, "email", "This field is required."),
        ({"full_name": ""}, "full_name", "This field is required."),
        ({"password2": "something else"}, "password2", "The two passwords differ."),
        ({"password1": "short", "password2": "short"}, "password1", "too short"),
        ({"password1": "password123", "password2": "password123"}, "password1", "too common"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Select a valid choice."),
    ],
)
def test_sign_up_with_bad_input_says_what_is_wrong_and_writes_nothing(
    client, researcher, overrides, field, message, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("signup"), signup_data(**overrides))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert list(User.objects.all()) == [researcher]
    assert mail.outbox == []


def test_an_unverified_researcher_cannot_sign_in_and_is_told_why(client):
    UserFactory(email="sam@uni.test", email_verified=False)
    response = sign_in(client, "sam@uni.test", PASSWORD)
    page = response.content.decode()
    assert response.status_code == 200
    assert "Confirm your e-mail address first: open the link we sent to sam@uni.test." in page
    assert "_auth_user_id" not in client.session


def test_the_link_verifies_and_then_sign_in_works(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("signup"), signup_data())
    response = client.get(path_of(link_in(mail.outbox[0])), follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    assert "Your e-mail address is confirmed. Sign in to continue." in response.content.decode()
    user = User.objects.get()
    assert user.email_verified
    assert AuditEvent.objects.filter(action="user.email_verified", actor=user).exists()
    response = sign_in(client, "sam@uni.test", "correct horse battery")
    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    assert int(client.session["_auth_user_id"]) == user.pk


def test_a_used_link_is_refused(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("signup"), signup_data())
    path = path_of(link_in(mail.outbox[0]))
    client.get(path)
    before = AuditEvent.objects.count()
    response = client.get(path, follow=True)
    assert (
        '<li class="flash-error">This confirmation link was already used, and your e-mail '
        "address is confirmed. Sign in below.</li>" in response.content.decode()
    )
    assert AuditEvent.objects.count() == before


def test_an_expired_link_is_refused(client, monkeypatch, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("signup"), signup_data())
    path = path_of(link_in(mail.outbox[0]))
    timeout = datetime.timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)
    later = datetime.datetime.now() + timeout + datetime.timedelta(minutes=1)
    monkeypatch.setattr(email_verification_token, "_now", lambda: later)
    response = client.get(path, follow=True)
    page = response.content.decode()
    assert (
        "This confirmation link has expired or was already used. Use “Send the link again” "
        "below to get a new one." in page
    )
    assert not User.objects.get().email_verified


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/verify/xyz/abc-123/",
        "/accounts/verify/OTk5OTk/abc-123/",
        "/accounts/verify/!!/x/",
    ],
)
def test_a_forged_link_is_refused(client, researcher, path):
    unverified = UserFactory(email_verified=False)
    response = client.get(path, follow=True)
    assert "This confirmation link" in response.content.decode()
    unverified.refresh_from_db()
    assert not unverified.email_verified


def test_another_users_token_does_not_verify(client, django_capture_on_commit_callbacks):
    victim = UserFactory(email="victim@uni.test", email_verified=False)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("signup"), signup_data())
    uid, token = path_of(link_in(mail.outbox[0])).strip("/").split("/")[-2:]
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    victim_uid = urlsafe_base64_encode(force_bytes(victim.pk))
    client.get(reverse("verify-email", args=[victim_uid, token]))
    victim.refresh_from_db()
    assert not victim.email_verified


@pytest.mark.parametrize("who", ["unknown", "verified", "unverified"])
def test_resending_the_link_gives_the_same_answer_whoever_asks(
    client, researcher, who, django_capture_on_commit_callbacks
):
    UserFactory(email="new@uni.test", email_verified=False)
    email = {
        "unknown": "nobody@uni.test",
        "verified": researcher.email,
        "unverified": "new@uni.test",
    }[who]
    response = client.post(reverse("resend-verification"), {"email": email}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("login")
    assert (
        "If that address has an unconfirmed account, a new confirmation link is on its way."
        in response.content.decode()
    )
    assert [m.to for m in mail.outbox] == ([["new@uni.test"]] if who == "unverified" else [])


def test_a_resent_link_works(client):
    user = UserFactory(email="new@uni.test", email_verified=False)
    client.post(reverse("resend-verification"), {"email": "NEW@uni.test"})
    client.get(path_of(link_in(mail.outbox[0])))
    user.refresh_from_db()
    assert user.email_verified


def test_a_signed_in_user_is_sent_from_sign_up_to_the_dashboard(as_user, researcher):
    response = as_user(researcher).get(reverse("signup"))
    assert response.status_code == 302
    assert response.url == reverse("dashboard")


# --- Sign in and out ------------------------------------------------------------------------------
def test_signing_in_goes_to_the_dashboard_or_next(client, researcher):
    response = sign_in(client, "RILEY@uni.test", PASSWORD)
    assert response.status_code == 302
    assert response.url == reverse("dashboard")
    client.post(reverse("logout"))
    response = client.post(
        reverse("login"),
        {"username": researcher.email, "password": PASSWORD, "next": reverse("project-list")},
    )
    assert response.url == reverse("project-list")


def test_sign_in_does_not_redirect_to_another_site(client, researcher):
    response = client.post(
        reverse("login"),
        {"username": researcher.email, "password": PASSWORD, "next": "https://evil.test/"},
    )
    assert response.status_code == 302
    assert response.url == reverse("dashboard")


def test_a_signed_in_user_changes_their_password(as_user, researcher):
    client = as_user(researcher)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "another long passphrase",
            "new_password2": "another long passphrase",
        },
    )
    assert response.status_code == 302
    assert response.url == reverse("password_change_done")
    researcher.refresh_from_db()
    assert researcher.check_password("another long passphrase")


def test_a_wrong_password_is_refused_with_a_clear_message(client, researcher):
    response = sign_in(client, researcher.email, "wrong password")
    assert response.status_code == 200
    assert (
        "That e-mail and password do not match an account. Check both and try again."
        in response.content.decode()
    )
    assert "_auth_user_id" not in client.session


def test_a_deactivated_user_cannot_sign_in(client):
    UserFactory(email="gone@uni.test", is_active=False)
    response = sign_in(client, "gone@uni.test", PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session


def test_signing_out_needs_a_post(as_user, researcher):
    client = as_user(researcher)
    assert client.get(reverse("logout")).status_code == 405
    assert "_auth_user_id" in client.session
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response.url == reverse("login")
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("dashboard")).status_code == 302


def test_every_page_offers_sign_out_as_a_form(as_user, researcher):
    page = as_user(researcher).get(reverse("dashboard")).content.decode()
    assert f'<form method="post" action="{reverse("logout")}">' in page


# --- Throttling: tests/portal/test_signin_throttle.py ---------------------------------------------


# --- Password reset -------------------------------------------------------------------------------
def test_password_reset_emails_a_link_that_sets_a_new_password(client, researcher):
    response = client.post(reverse("password_reset"), {"email": "Riley@uni.test"}, follow=True)
    assert "If an account uses that address" in response.content.decode()
    assert [m.to for m in mail.outbox] == [[researcher.email]]
    assert mail.outbox[0].subject == "[StudyText] Reset your password"
    link = path_of(link_in(mail.outbox[0]))
    response = client.get(link, follow=True)
    set_url = response.redirect_chain[-1][0]
    assert "Choose a new password" in response.content.decode()
    response = client.post(
        set_url,
        {"new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )
    assert response.status_code == 302
    assert response.url == reverse("password_reset_complete")
    researcher.refresh_from_db()
    assert researcher.check_password("a brand new passphrase")
    assert sign_in(client, researcher.email, "a brand new passphrase").status_code == 302
    # The link works once.
    client.post(reverse("logout"))
    page = client.get(link, follow=True).content.decode()
    assert "This link has expired or was already used." in page


def test_password_reset_for_an_unknown_address_sends_nothing_and_says_the_same(client):
    response = client.post(reverse("password_reset"), {"email": "nobody@uni.test"}, follow=True)
    assert "If an account uses that address" in response.content.decode()
    assert mail.outbox == []


def test_a_new_password_must_be_good(client, researcher):
    client.post(reverse("password_reset"), {"email": researcher.email})
    response = client.get(path_of(link_in(mail.outbox[0])), follow=True)
    response = client.post(
        response.redirect_chain[-1][0], {"new_password1": "abc", "new_password2": "abc"}
    )
    assert response.status_code == 200
    assert "too short" in response.content.decode()
    researcher.refresh_from_db()
    assert researcher.check_password(PASSWORD)


# --- Profile and time zone ------------------------------------------------------------------------
def test_the_profile_needs_sign_in(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_profile_saves_name_and_time_zone(as_user, researcher):
    client = as_user(researcher)
    response = client.post(
        reverse("profile"), {"full_name": "Riley R.", "time_zone": "Pacific/Honolulu"}, follow=True
    )
    assert "Profile saved." in response.content.decode()
    researcher.refresh_from_db()
    assert (researcher.full_name, researcher.time_zone) == ("Riley R.", "Pacific/Honolulu")


def test_the_profile_refuses_an_unknown_time_zone(as_user, researcher):
    response = as_user(researcher).post(
        reverse("profile"), {"full_name": "Riley", "time_zone": "Mars/Olympus"}
    )
    assert response.status_code == 200
    assert "Select a valid choice." in " ".join(response.context["form"].errors["time_zone"])
    researcher.refresh_from_db()
    assert researcher.time_zone == "America/New_York"


def test_times_are_shown_in_the_viewers_time_zone(as_user, researcher):
    obj = OnboardingRequestFactory(requester=researcher)
    noon_utc = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)
    OnboardingRequest.objects.filter(pk=obj.pk).update(updated_at=noon_utc)
    client = as_user(researcher)
    assert "Mar 2, 2026 7:00 a.m." in client.get(reverse("onboarding-list")).content.decode()
    client.post(reverse("profile"), {"full_name": "Riley", "time_zone": "Asia/Tokyo"})
    page = client.get(reverse("onboarding-list")).content.decode()
    assert "Mar 2, 2026 9:00 p.m." in page
    assert "times shown in Asia/Tokyo" in page


# --- Personal API token ---------------------------------------------------------------------------
@pytest.fixture
def token_key(as_user, researcher):
    response = as_user(researcher).post(reverse("api-token-create"))
    match = re.search(r'id="api-token">([0-9a-f]+)</span>', response.content.decode())
    assert match
    return match.group(1)


def test_a_token_is_shown_once_and_only_its_hash_is_stored(as_user, researcher, token_key):
    token = ApiToken.objects.get(user=researcher)
    assert token.key_hash == hashlib.sha256(token_key.encode()).hexdigest()
    assert token.last4 == token_key[-4:]
    stored = [str(v) for v in ApiToken.objects.values_list().get()]
    assert not any(token_key in v for v in stored)
    page = as_user(researcher).get(reverse("profile")).content.decode()
    assert f"…{token_key[-4:]}" in page
    assert token_key not in page
    assert AuditEvent.objects.filter(action="api_token.created", actor=researcher).exists()
    assert not AuditEvent.objects.filter(message__contains=token_key).exists()


def test_the_page_showing_the_key_is_never_cached(as_user, researcher):
    response = as_user(researcher).post(reverse("api-token-create"))
    assert "no-store" in response["Cache-Control"]


def test_making_a_token_needs_a_post(as_user, researcher):
    assert as_user(researcher).get(reverse("api-token-create")).status_code == 405
    assert not ApiToken.objects.exists()


def test_the_token_authenticates_api_calls_to_the_callers_projects_only(
    client, researcher, other_researcher, token_key
):
    mine = ProjectFactory(title="Heart Health", owner=researcher)
    ProjectFactory(title="Lung Study", owner=other_researcher)
    client.logout()
    response = client.get(reverse("api-project-list"), HTTP_AUTHORIZATION=f"Token {token_key}")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [mine.pk]
    assert response.json()["results"][0]["title"] == "Heart Health"
    assert ApiToken.objects.get().last_used_at is not None


def test_an_administrators_token_lists_every_project(client, server_admin):
    ProjectFactory.create_batch(2)
    verified_login(client, server_admin)
    key = re.search(
        r'id="api-token">([0-9a-f]+)<', client.post(reverse("api-token-create")).content.decode()
    ).group(1)
    client.logout()
    response = client.get(reverse("api-project-list"), HTTP_AUTHORIZATION=f"Token {key}")
    assert response.json()["count"] == 2


@pytest.mark.parametrize("header", ["Token wrong-key", "Token ", "Bearer abc", None])
def test_a_missing_or_wrong_token_is_401(client, token_key, header):
    client.logout()
    kwargs = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    response = client.get(reverse("api-project-list"), **kwargs)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "results" not in response.json()


def test_a_revoked_token_is_401(as_user, researcher, token_key):
    client = as_user(researcher)
    response = client.post(reverse("api-token-revoke"), follow=True)
    assert "Your API token is revoked." in response.content.decode()
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.filter(action="api_token.revoked").exists()
    client.logout()
    response = client.get(reverse("api-project-list"), HTTP_AUTHORIZATION=f"Token {token_key}")
    assert response.status_code == 401


def test_replacing_a_token_retires_the_old_one(as_user, researcher, token_key):
    client = as_user(researcher)
    client.post(reverse("api-token-create"))
    client.logout()
    response = client.get(reverse("api-project-list"), HTTP_AUTHORIZATION=f"Token {token_key}")
    assert response.status_code == 401
    assert ApiToken.objects.count() == 1


def test_a_deactivated_users_token_is_401(client, researcher, token_key):
    User.objects.filter(pk=researcher.pk).update(is_active=False)
    client.logout()
    response = client.get(reverse("api-project-list"), HTTP_AUTHORIZATION=f"Token {token_key}")
    assert response.status_code == 401


def test_the_onboarding_api_lists_only_the_callers_requests(
    client, researcher, other_researcher, token_key
):
    mine = OnboardingRequestFactory(requester=researcher)
    OnboardingRequestFactory(requester=other_researcher)
    client.logout()
    response = client.get(
        reverse("api-onboarding-request-list"), HTTP_AUTHORIZATION=f"Token {token_key}"
    )
    assert [r["id"] for r in response.json()["results"]] == [mine.pk]


def test_the_api_costs_the_same_with_5_or_100_projects(
    client, researcher, token_key, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.logout()
    auth = {"HTTP_AUTHORIZATION": f"Token {token_key}"}
    ProjectFactory.create_batch(5, owner=researcher)
    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("api-project-list"), **auth)
    ProjectFactory.create_batch(95, owner=researcher)
    with django_assert_max_num_queries(len(ctx.captured_queries)):
        response = client.get(reverse("api-project-list"), **auth)
    assert response.json()["count"] == 100


def test_a_signed_in_browser_session_also_reaches_the_api(as_user, researcher):
    ProjectFactory(owner=researcher)
    response = as_user(researcher).get(reverse("api-project-list"))
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_the_api_schema_is_published_and_documents_the_token(client):
    response = client.get(reverse("api-schema"))
    assert response.status_code == 200
    schema = response.content.decode()
    assert "/api/projects/" in schema
    assert "tokenAuth" in schema
