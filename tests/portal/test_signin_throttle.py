"""Sign-in throttling that stops guessing without letting a stranger lock anyone out, the
client address behind trusted proxies only, and rate limits on the pages that send e-mail.

The first tests reproduce the security review's findings (they failed before the throttle was
rebuilt): a lockout anyone could trigger through the proxy, spraying that was never stopped, and
a password-reset page that e-mailed one victim fifteen times."""

import re

import pytest
from django.core import mail
from django.test import RequestFactory
from django.urls import reverse

from portal import throttle
from portal.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-good-long-password"
PROXY = "10.0.0.2"


def sign_in(client, email, password, *, ip="198.51.100.7", **extra):
    return client.post(
        reverse("login"), {"username": email, "password": password}, REMOTE_ADDR=ip, **extra
    )


def behind_proxy(client, email, password, *, forwarded):
    return sign_in(client, email, password, ip=PROXY, HTTP_X_FORWARDED_FOR=forwarded)


# --- The reproduced holes ----------------------------------------------------------------------
def test_a_stranger_behind_the_proxy_cannot_lock_the_owner_out(client, researcher, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    owner = client.__class__()
    assert behind_proxy(owner, researcher.email, PASSWORD, forwarded="203.0.113.5").status_code
    owner.post(reverse("logout"))
    # Five wrong passwords, each "from" another address the stranger made up.
    for n in range(settings.SIGNIN_ACCOUNT_FAILURE_LIMIT):
        behind_proxy(client, researcher.email, "wrong", forwarded=f"192.0.2.{n}, 198.51.100.9")
    # The owner's own browser still signs in.
    response = behind_proxy(owner, researcher.email, PASSWORD, forwarded="203.0.113.5")
    assert response.status_code == 302
    assert "_auth_user_id" in owner.session


def test_twenty_addresses_guessing_one_account_are_stopped(client, researcher):
    for n in range(20):
        for _ in range(4):
            sign_in(client, researcher.email, "wrong", ip=f"198.51.100.{n + 1}")
    response = sign_in(client, researcher.email, PASSWORD, ip="198.51.100.200")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_one_address_spraying_ten_accounts_is_stopped(client, settings):
    people = [UserFactory(email=f"p{n}@uni.test") for n in range(10)]
    for person in people:
        for _ in range(4):
            sign_in(client, person.email, "wrong")
    fresh = UserFactory(email="fresh@uni.test")
    response = sign_in(client, fresh.email, PASSWORD)
    assert response.status_code == 429
    assert "from your network" in response.content.decode()


def test_fifteen_password_resets_do_not_send_fifteen_emails(client, researcher):
    statuses = [
        client.post(reverse("password_reset"), {"email": researcher.email}).status_code
        for _ in range(15)
    ]
    assert len(mail.outbox) <= 3
    assert statuses.count(429) >= 12
    response = client.post(reverse("password_reset"), {"email": researcher.email})
    assert response.status_code == 429
    assert response["Retry-After"]
    assert "Try again in" in response.content.decode()


# --- The account throttle ------------------------------------------------------------------------
def test_repeated_failures_from_an_unknown_browser_pause_it_with_a_clear_message(
    client, researcher, settings
):
    limit = settings.SIGNIN_ACCOUNT_FAILURE_LIMIT
    for _ in range(limit - 1):
        response = sign_in(client, researcher.email, "wrong password")
        assert response.status_code == 200
        assert "do not match an account" in response.content.decode()
    response = sign_in(client, researcher.email, "wrong password")
    page = response.content.decode()
    assert response.status_code == 429
    assert "Too many failed sign-ins" in page
    assert "Try again in" in page
    assert reverse("password_reset") in page
    # Even the right password is refused from an unknown browser while paused ...
    assert sign_in(client, researcher.email, PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    # ... and it is audited, and the owner is e-mailed a link that unlocks their browser.
    assert AuditEvent.objects.filter(action="user.sign_in_failed").count() == limit
    assert AuditEvent.objects.filter(action="user.locked_out", object_id=str(researcher.pk))
    [notice] = [m for m in mail.outbox if m.to == [researcher.email]]
    assert "paused" in notice.subject
    link = re.search(r"https?://\S+", notice.body).group(0)
    client.get(re.sub(r"^https?://[^/]+", "", link))
    assert sign_in(client, researcher.email, PASSWORD).status_code == 302


def test_the_unlock_link_works_once_and_not_for_another_account(client, researcher):
    other = UserFactory(email="other@uni.test")
    for _ in range(5):
        sign_in(client, researcher.email, "wrong")
        sign_in(client, other.email, "wrong")
    link = re.search(r"https?://\S+", mail.outbox[0].body).group(0)
    path = re.sub(r"^https?://[^/]+", "", link)
    client.get(path)
    # The link made this browser known to the researcher's account only.
    assert sign_in(client, other.email, PASSWORD).status_code == 429
    assert sign_in(client, researcher.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    # Signing in changed last_login: the same link is spent.
    stranger = client.__class__()
    response = stranger.get(path, follow=True)
    assert "expired or was already used" in response.content.decode()


def test_varying_the_case_of_the_address_does_not_dodge_the_throttle(client, researcher):
    variants = ["riley@uni.test", "RILEY@uni.test", "Riley@Uni.Test", "rILEY@UNI.test"]
    for i in range(5):
        response = sign_in(client, variants[i % len(variants)], "wrong password")
    assert response.status_code == 429
    assert sign_in(client, "riley@UNI.TEST", PASSWORD).status_code == 429


def test_a_pause_is_per_account(client, researcher, other_researcher):
    for _ in range(5):
        sign_in(client, researcher.email, "wrong password")
    assert sign_in(client, other_researcher.email, PASSWORD).status_code == 302


def test_a_known_browser_has_its_own_allowance(client, researcher, settings):
    assert sign_in(client, researcher.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(settings.SIGNIN_DEVICE_FAILURE_LIMIT - 1):
        assert sign_in(client, researcher.email, "wrong").status_code == 200
    assert sign_in(client, researcher.email, PASSWORD).status_code == 302
    client.post(reverse("logout"))
    for _ in range(settings.SIGNIN_DEVICE_FAILURE_LIMIT):
        sign_in(client, researcher.email, "wrong")
    assert sign_in(client, researcher.email, PASSWORD).status_code == 429


def test_a_forged_device_cookie_counts_as_an_unknown_browser(client, researcher):
    client.cookies[throttle.DEVICE_COOKIE] = "forged"
    for _ in range(5):
        sign_in(client, researcher.email, "wrong")
    assert sign_in(client, researcher.email, PASSWORD).status_code == 429


def test_sign_in_and_sign_out_are_audited_with_the_address(client, researcher):
    sign_in(client, researcher.email, PASSWORD, ip="198.51.100.77")
    client.post(reverse("logout"))
    signed_in = AuditEvent.objects.get(action="user.signed_in")
    assert signed_in.data == {"ip": "198.51.100.77"}
    assert AuditEvent.objects.filter(action="user.signed_out", actor=researcher).exists()


# --- The client's address ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "6.6.6.6", "10.0.0.2"),  # no proxy: the header is a client's word, ignored
        (1, "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # our proxy appended the real one
        (1, "203.0.113.9", "203.0.113.9"),
        (2, "6.6.6.6, 203.0.113.9, 10.0.0.9", "203.0.113.9"),
        (1, "", "10.0.0.2"),  # did not come through the proxy
        (2, "203.0.113.9", "10.0.0.2"),
        (1, "not-an-address", "10.0.0.2"),
    ],
)
def test_the_client_address_trusts_only_the_configured_proxies(
    settings, proxies, forwarded, expected
):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)
    assert throttle.client_ip(request) == expected


def test_a_forged_forwarded_for_from_an_untrusted_client_changes_nothing(client, settings):
    settings.TRUSTED_PROXY_COUNT = 0
    people = [UserFactory(email=f"q{n}@uni.test") for n in range(6)]
    for n, person in enumerate(people * 4):
        sign_in(client, person.email, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    # 24 failures from one real address, whatever the header claimed: that address is paused.
    response = sign_in(client, people[0].email, PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.250")
    assert response.status_code == 429


# --- Rate limits on the pages that send e-mail ---------------------------------------------------
def test_sign_up_is_rate_limited_per_address(client):
    for n in range(10):
        client.post(reverse("signup"), {"email": f"n{n}@uni.test"})
    response = client.post(reverse("signup"), {"email": "late@uni.test"})
    assert response.status_code == 429
    assert "Too many sign-ups" in response.content.decode()


def test_resend_verification_is_rate_limited_per_target(client):
    UserFactory(email="new@uni.test", email_verified=False)
    for n in range(3):
        client.post(
            reverse("resend-verification"), {"email": "new@uni.test"}, REMOTE_ADDR=f"198.51.100.{n}"
        )
    response = client.post(
        reverse("resend-verification"), {"email": "new@uni.test"}, REMOTE_ADDR="198.51.100.99"
    )
    assert response.status_code == 429
    assert len(mail.outbox) == 3
