"""Two-factor sign-in: administrators must pass it, researchers may turn it on; enrolment with a
QR code drawn here, recovery codes shown once, codes never accepted twice, all audited."""

import re

import pytest
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import ApiToken, AuditEvent
from portal.services.profile import api_token_create
from tests.factories import ServerAdminFactory, next_totp_code, totp_code

pytestmark = pytest.mark.django_db

PASSWORD = "a-good-long-password"


def password_sign_in(client, user):
    return client.post(reverse("login"), {"username": user.email, "password": PASSWORD})


ADMIN_PAGES = [
    "admin:index",
    "admin:portal_user_changelist",
    "onboarding-queue",
    "audit-log",
    "dashboard",
    "profile",
]


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_an_administrator_with_only_a_password_reaches_no_page(client, server_admin, name):
    response = password_sign_in(client, server_admin)
    assert response.url.startswith(reverse("two-factor-verify"))
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response.url.startswith(reverse("two-factor-verify"))


def test_the_api_refuses_an_unverified_administrator_session(client, server_admin):
    password_sign_in(client, server_admin)
    response = client.get(reverse("api-project-list"))
    assert response.status_code == 403
    assert "two-factor" in response.json()["detail"]


def test_the_code_opens_the_admin_site_and_a_reused_code_is_refused(client, server_admin):
    password_sign_in(client, server_admin)
    code = totp_code(server_admin)
    response = client.post(reverse("two-factor-verify"), {"code": code, "next": "/admin/"})
    assert response.status_code == 302
    assert response.url == "/admin/"
    assert client.get(reverse("admin:index")).status_code == 200
    # Another browser, the same password, the same code within its 30 seconds: refused.
    other = client.__class__()
    password_sign_in(other, server_admin)
    response = other.post(reverse("two-factor-verify"), {"code": code})
    assert response.status_code == 200
    assert "already used" in response.content.decode()
    assert other.get(reverse("admin:index")).status_code == 302
    assert AuditEvent.objects.filter(action="user.2fa_failed", object_id=str(server_admin.pk))


@pytest.mark.parametrize("code", ["", "12345", "abcdef", "1234567890"])
def test_a_wrong_code_is_refused_with_a_message(client, server_admin, code):
    password_sign_in(client, server_admin)
    response = client.post(reverse("two-factor-verify"), {"code": code})
    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert client.get(reverse("dashboard")).status_code == 302


def test_an_administrator_without_an_app_must_set_one_up_and_gets_recovery_codes_once(client):
    admin = ServerAdminFactory(email="new.admin@uni.test", authenticator=False)
    response = password_sign_in(client, admin)
    assert response.url.startswith(reverse("two-factor-setup"))
    page = client.get(response.url)
    html = page.content.decode()
    assert "<svg" in html  # the QR code is drawn by the portal, inline
    assert "https://" not in re.search(r'<div class="qr"[^>]*>.*?</div>', html, re.S).group(0)
    device = TOTPDevice.objects.get(user=admin, confirmed=False)
    wrong = client.post(reverse("two-factor-setup"), {"code": "000000"})
    assert "does not match" in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=admin, confirmed=True).exists()
    held = client.post(reverse("two-factor-setup"), {"code": totp_code_for(device)})
    assert "wait 1 second" in held.content.decode()  # django-otp's throttle after a miss
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
    done = client.post(reverse("two-factor-setup"), {"code": totp_code_for(device)})
    codes = re.findall(r'<li class="code">(\w+)</li>', done.content.decode())
    assert len(codes) == 10
    assert "no-store" in done["Cache-Control"]
    assert client.get(reverse("admin:index")).status_code == 200
    assert AuditEvent.objects.filter(action="user.2fa_enrolled", object_id=str(admin.pk))
    # Shown once: the profile never shows them again.
    assert codes[0] not in client.get(reverse("profile")).content.decode()
    # A recovery code signs in once.
    other = client.__class__()
    password_sign_in(other, admin)
    assert other.post(reverse("two-factor-verify"), {"code": codes[0]}).status_code == 302
    assert not StaticToken.objects.filter(token=codes[0]).exists()
    third = client.__class__()
    password_sign_in(third, admin)
    assert third.post(reverse("two-factor-verify"), {"code": codes[0]}).status_code == 200
    assert AuditEvent.objects.filter(action="user.2fa_recovery_used")


def totp_code_for(device) -> str:
    import time

    from django_otp.oath import TOTP

    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():06d}"


def test_a_password_alone_cannot_replace_the_authenticator(client, server_admin):
    password_sign_in(client, server_admin)
    response = client.get(reverse("two-factor-setup"))
    assert response.url.startswith(reverse("two-factor-verify"))
    assert TOTPDevice.objects.filter(user=server_admin).count() == 1


def test_a_researcher_may_opt_in_and_then_needs_the_code_too(as_user, client, researcher):
    signed_in = as_user(researcher)
    assert "Turn on" in signed_in.get(reverse("profile")).content.decode()
    signed_in.get(reverse("two-factor-setup"))
    device = TOTPDevice.objects.get(user=researcher, confirmed=False)
    signed_in.post(reverse("two-factor-setup"), {"code": totp_code_for(device)})
    signed_in.post(reverse("logout"))
    response = password_sign_in(client, researcher)
    assert response.url.startswith(reverse("two-factor-verify"))
    assert client.get(reverse("dashboard")).status_code == 302
    client.post(reverse("two-factor-verify"), {"code": next_totp_code(researcher)})
    assert client.get(reverse("dashboard")).status_code == 200


def test_a_researcher_turns_it_off_with_the_password_and_an_administrator_cannot(
    as_user, researcher, server_admin
):
    TOTPDevice.objects.create(user=researcher, confirmed=True)
    client = as_user(researcher)
    wrong = client.post(reverse("two-factor-remove"), {"password": "nope"})
    assert "not your password" in wrong.content.decode()
    client.post(reverse("two-factor-remove"), {"password": PASSWORD})
    assert not TOTPDevice.objects.filter(user=researcher).exists()
    assert AuditEvent.objects.filter(action="user.2fa_removed", object_id=str(researcher.pk))
    admin_client = as_user(server_admin)
    response = admin_client.post(reverse("two-factor-remove"), {"password": PASSWORD}, follow=True)
    assert "must keep two-factor sign-in" in response.content.decode()
    assert TOTPDevice.objects.filter(user=server_admin).exists()


def test_an_administrator_resets_a_lost_phone_in_the_admin_and_it_is_audited(as_user, server_admin):
    colleague = ServerAdminFactory(email="colleague@uni.test")
    device = TOTPDevice.objects.get(user=colleague)
    response = as_user(server_admin).post(
        reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=colleague).exists()
    event = AuditEvent.objects.get(action="user.2fa_removed", object_id=str(colleague.pk))
    assert event.actor == server_admin


def test_the_admin_never_shows_an_authenticator_secret(as_user, server_admin):
    device = TOTPDevice.objects.get(user=server_admin)
    client = as_user(server_admin)
    for url in (
        reverse("admin:otp_totp_totpdevice_changelist"),
        reverse("admin:otp_totp_totpdevice_change", args=[device.pk]),
    ):
        page = client.get(url).content.decode()
        assert device.key not in page
        assert "otpauth://" not in page


def test_a_password_change_is_audited_and_revokes_the_api_token(as_user, researcher):
    api_token_create(user=researcher)
    client = as_user(researcher)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a brand new passphrase",
            "new_password2": "a brand new passphrase",
        },
    )
    assert response.status_code == 302
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.filter(action="user.password_changed", object_id=str(researcher.pk))
    assert AuditEvent.objects.get(action="api_token.revoked").message.endswith(
        "the password changed."
    )


@pytest.mark.parametrize("signed_in_this_step", [False, True])
def test_the_test_helpers_code_is_accepted_when_a_step_ends_before_the_server_checks_it(
    server_admin, monkeypatch, signed_in_this_step
):
    """The browser journeys type `next_totp_code` and the server checks it a moment later; a
    30-second step may end in between (CI once failed a sign-in that way)."""
    import time

    device = TOTPDevice.objects.get(user=server_admin, confirmed=True)
    boundary = device.t0 + device.step * (int(time.time() - device.t0) // device.step + 1)
    monkeypatch.setattr(time, "time", lambda: boundary - 0.01)
    if signed_in_this_step:
        assert device.verify_token(next_totp_code(server_admin))
    code = next_totp_code(server_admin)
    monkeypatch.setattr(time, "time", lambda: boundary + 0.01)
    device.refresh_from_db()
    assert device.verify_token(code)
