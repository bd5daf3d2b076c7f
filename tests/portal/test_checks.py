"""The portal's deploy checks: keys for secrets at rest, no fake SMS gateway, an https SITE_URL,
e-mail that reaches people."""

import mimetypes
from xml.etree import ElementTree

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from portal import checks

GOOD_KEY = "w2nrQiDO3D_4uvgFdTsmaMCiQ_Qx0pb4fwTJ3dJsMBE="
PRODUCTION = {
    "DEBUG": False,
    "SECRETS_ENCRYPTION_KEYS": [GOOD_KEY],
    "SECRETS_FINGERPRINT_KEY": "a-long-random-fingerprint-key",
    "SMS_GATEWAY_OVERRIDE": "",
    "SITE_URL": "https://studytext.example.edu",
    "SANDBOX_ENABLED": False,
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
}


def _ids(**overrides) -> list[str]:
    with override_settings(**{**PRODUCTION, **overrides}):
        return [
            e.id
            for check in (
                checks.check_secrets_keys,
                checks.check_no_sms_override_in_production,
                checks.check_site_url_is_https,
                checks.check_email_is_delivered_in_production,
            )
            for e in check(None)
        ]


def test_production_settings_pass_every_portal_check():
    assert _ids() == []


@pytest.mark.parametrize("keys", [[], [""], ["  "]])
def test_it_refuses_empty_encryption_keys(keys):
    assert _ids(SECRETS_ENCRYPTION_KEYS=keys) == ["portal.E001"]


def test_it_names_an_encryption_key_that_is_not_a_fernet_key():
    with override_settings(**{**PRODUCTION, "SECRETS_ENCRYPTION_KEYS": [GOOD_KEY, "oops"]}):
        errors = checks.check_secrets_keys(None)
    assert [e.id for e in errors] == ["portal.E002"]
    assert "key number 2" in errors[0].msg


@pytest.mark.parametrize("value", ["", "   "])
def test_it_refuses_an_empty_fingerprint_key(value):
    assert _ids(SECRETS_FINGERPRINT_KEY=value) == ["portal.E003"]


@pytest.mark.parametrize("fake", ["console", "locmem", "sandbox"])
def test_it_refuses_a_gateway_override_in_production(fake):
    assert _ids(SMS_GATEWAY_OVERRIDE=fake) == ["portal.E004"]
    with override_settings(**{**PRODUCTION, "SMS_GATEWAY_OVERRIDE": fake}):
        message = checks.check_no_sms_override_in_production(None)[0].msg
    assert f"“{fake}”" in message


def test_the_gateway_override_is_fine_while_debugging():
    assert _ids(SMS_GATEWAY_OVERRIDE="console", DEBUG=True) == []


@pytest.mark.parametrize(
    "url", ["http://studytext.example.edu", "http://127.0.0.1:8000", "studytext.example.edu"]
)
def test_it_refuses_a_site_url_that_is_not_https(url):
    assert _ids(SITE_URL=url) == ["portal.E005"]


def test_an_https_site_url_in_capitals_is_accepted():
    assert _ids(SITE_URL="HTTPS://StudyText.example.edu") == []


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        ("console", "prints every e-mail to the console"),
        ("locmem", "keeps every e-mail in memory"),
        ("dummy", "throws every e-mail away"),
        ("filebased", "writes every e-mail to a file"),
    ],
)
def test_it_refuses_an_email_backend_that_reaches_nobody_in_production(backend, words):
    path = f"django.core.mail.backends.{backend}.EmailBackend"
    assert _ids(EMAIL_BACKEND=path) == ["portal.E006"]
    with override_settings(**{**PRODUCTION, "EMAIL_BACKEND": path}):
        error = checks.check_email_is_delivered_in_production(None)[0]
    assert f"“{path}” while DEBUG is off: it {words}" in error.msg
    assert "smtp+tls://" in error.hint


def test_the_console_email_backend_is_fine_while_debugging():
    assert _ids(EMAIL_BACKEND="django.core.mail.backends.console.EmailBackend", DEBUG=True) == []


def test_check_deploy_runs_them_and_fails():
    settings = {
        **PRODUCTION,
        "SECRETS_FINGERPRINT_KEY": "",
        "SITE_URL": "http://x.example.edu",
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    }
    with override_settings(**settings), pytest.raises(SystemCheckError) as caught:
        call_command("check", deploy=True)
    assert "portal.E003" in str(caught.value)
    assert "portal.E005" in str(caught.value)
    assert "portal.E006" in str(caught.value)


def test_the_plain_check_does_not_run_them():
    with override_settings(**{**PRODUCTION, "SECRETS_ENCRYPTION_KEYS": [], "SITE_URL": "http://x"}):
        call_command("check")


# --- The favicon ------------------------------------------------------------------------------
@pytest.mark.django_db
def test_every_page_names_the_favicon_and_it_is_served_as_svg(client):
    page = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in page
    # The file is one of the project's own static files (collectstatic picks it up), and it is
    # an SVG drawing: valid XML whose root is <svg>.
    path = finders.find("img/favicon.svg")
    assert path is not None
    root = ElementTree.parse(path).getroot()  # noqa: S314  (our own file)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert mimetypes.guess_type(path)[0] == "image/svg+xml"


@pytest.mark.django_db
def test_the_old_favicon_address_leads_to_the_svg(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response.url == "/static/img/favicon.svg"
