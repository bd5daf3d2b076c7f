"""`manage.py seed_demo` and `manage.py check --deploy`."""

import io
import os
import re
import secrets
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import Account
from portal import demo
from portal.models import OnboardingRequest, User
from projects.models import Membership, Project, RedcapInstance

DEMO_PASSWORD = "demo-password-for-tests"


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_the_password(settings, capsys):
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out

    for out in (first, second):
        assert "Demo data ready." in out
        assert f"Password (both):      {DEMO_PASSWORD}" in out
        assert demo.ADMIN_EMAIL in out
        assert demo.RESEARCHER_EMAIL in out
    admins = [u for u in User.objects.all() if u.is_server_admin]
    assert [u.email for u in admins] == [demo.ADMIN_EMAIL]
    assert User.objects.count() == 2
    assert RedcapInstance.objects.count() == 1
    assert OnboardingRequest.objects.count() == 1
    assert Account.objects.count() == 1
    project = Project.objects.get()
    assert project.redcap_project_id == demo.DEMO_PID
    owner = Membership.objects.get(project=project, role="owner").user
    assert owner.email == demo.RESEARCHER_EMAIL
    assert OnboardingRequest.objects.get().status == OnboardingRequest.Status.APPROVED


@pytest.mark.django_db
def test_the_demo_people_sign_in_with_the_demo_password(settings, client):
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    call_command("seed_demo", stdout=io.StringIO())
    for email in (demo.ADMIN_EMAIL, demo.RESEARCHER_EMAIL):
        response = client.post(reverse("login"), {"username": email, "password": DEMO_PASSWORD})
        assert response.status_code == 302, email
        if email == demo.ADMIN_EMAIL:
            # The administrator's second step: the code `manage.py demo_totp` prints.
            assert response.url.startswith(reverse("two-factor-verify"))
            settings.DEBUG = True
            out = io.StringIO()
            call_command("demo_totp", stdout=out)
            response = client.post(response.url, {"code": out.getvalue().strip(), "next": "/"})
        assert response.url == reverse("dashboard")
        assert client.get(reverse("dashboard")).status_code == 200
        client.post(reverse("logout"))


@pytest.mark.django_db
def test_demo_totp_refuses_outside_development(settings):
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    call_command("seed_demo", stdout=io.StringIO())
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only in development"):
        call_command("demo_totp", stdout=io.StringIO())


@pytest.mark.django_db
def test_seed_demo_follows_a_changed_password(settings):
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    call_command("seed_demo", stdout=io.StringIO())
    settings.DEMO_PASSWORD = "another-demo-password"
    call_command("seed_demo", stdout=io.StringIO())
    assert User.objects.get(email=demo.ADMIN_EMAIL).check_password("another-demo-password")


@pytest.mark.django_db
def test_seed_demo_needs_a_password(settings):
    settings.DEMO_PASSWORD = ""
    with pytest.raises(CommandError, match="Set DEMO_PASSWORD"):
        call_command("seed_demo")
    assert not User.objects.exists()


# Set by the deployment's environment, and deliberately off by default: preloading HSTS is a
# commitment a site cannot quickly undo (SECURE_HSTS_PRELOAD=true in .env opts in).
TOLERATED_DEPLOY_WARNINGS = {"security.W021"}


def _production_env(**overrides) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "studytext.example.edu",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://studytext.example.edu",
        "SITE_URL": "https://studytext.example.edu",
        "DATABASE_URL": "sqlite:////tmp/studytext-deploy-check.sqlite3",
        "SECRETS_ENCRYPTION_KEYS": "w2nrQiDO3D_4uvgFdTsmaMCiQ_Qx0pb4fwTJ3dJsMBE=",
        "SECRETS_FINGERPRINT_KEY": secrets.token_urlsafe(32),
        "SANDBOX_ENABLED": "false",
        "SMS_GATEWAY_OVERRIDE": "",
        "EMAIL_URL": "smtp+tls://studytext:pass@smtp.example.edu:587",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


def _check_deploy(**overrides) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=settings.BASE_DIR,
        env=_production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_no_errors_with_production_settings():
    result = _check_deploy()
    output = result.stdout + result.stderr
    assert "ERRORS:" not in output, output
    found = set(re.findall(r"\(([\w.]+\.[WE]\d+)\)", output))
    assert found <= TOLERATED_DEPLOY_WARNINGS, output


def test_check_deploy_is_clean_once_hsts_preload_is_chosen():
    result = _check_deploy(SECURE_HSTS_PRELOAD="true")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_refuses_the_default_console_email():
    # .env.example's EMAIL_URL=consolemail:// (the development default) is caught.
    result = _check_deploy(EMAIL_URL="consolemail://")
    assert result.returncode != 0
    assert "portal.E006" in result.stdout + result.stderr


def test_check_deploy_catches_a_weak_secret_key():
    # The check is real: a short key is reported.
    result = _check_deploy(DJANGO_SECRET_KEY="short")
    assert result.returncode != 0
    assert "security.W009" in result.stdout + result.stderr


def _run(args: list[str], **overrides) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=settings.BASE_DIR,
        env=_production_env(**overrides),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_makemigrations_check_runs_without_a_secret_key():
    # A fresh checkout has no .env: an empty DJANGO_SECRET_KEY (it wins over any .env) stands
    # for it. Commands that need no stable key still run.
    result = _run(["manage.py", "makemigrations", "--check", "--dry-run"], DJANGO_SECRET_KEY="")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_check_deploy_refuses_a_missing_secret_key():
    result = _check_deploy(DJANGO_SECRET_KEY="")
    assert result.returncode != 0
    assert "portal.E007" in result.stdout + result.stderr


@pytest.mark.parametrize("module", ["portal.wsgi", "portal.asgi"])
def test_the_site_refuses_to_serve_without_a_secret_key(module):
    result = _run(["-c", f"import {module}"], DJANGO_SECRET_KEY="")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    served = _run(["-c", f"import {module}"])  # with a key it loads
    assert served.returncode == 0, served.stderr


# --- Runtime guards: the processes themselves refuse, not only `check --deploy` ------------------
UNSAFE_WITHOUT_DEBUG = [
    ({"SANDBOX_ENABLED": "true"}, "SANDBOX_ENABLED is on"),
    ({"SMS_GATEWAY_OVERRIDE": "console"}, "SMS_GATEWAY_OVERRIDE"),
    ({"EMAIL_URL": "consolemail://"}, "console"),
    ({"REDCAP_ALLOW_LOOPBACK_HTTP": "true"}, "REDCAP_ALLOW_LOOPBACK_HTTP"),
]


@pytest.mark.parametrize(("unsafe", "said"), UNSAFE_WITHOUT_DEBUG)
@pytest.mark.parametrize(
    "start",
    [["-c", "import portal.wsgi"], ["-c", "import portal.asgi"], ["manage.py", "qcluster"]],
    ids=["wsgi", "asgi", "qcluster"],
)
def test_web_and_worker_processes_refuse_to_start_unsafe_with_debug_off(start, unsafe, said):
    result = _run(start, **unsafe)
    assert result.returncode != 0
    assert "will not start with DEBUG off" in result.stderr
    assert said in result.stderr


def test_with_debug_on_the_development_settings_start():
    result = _run(
        ["-c", "import portal.wsgi"],
        DJANGO_DEBUG="true",
        SANDBOX_ENABLED="true",
        SMS_GATEWAY_OVERRIDE="sandbox",
        EMAIL_URL="consolemail://",
    )
    assert result.returncode == 0, result.stderr


def test_check_deploy_refuses_loopback_redcap():
    result = _check_deploy(REDCAP_ALLOW_LOOPBACK_HTTP="true")
    assert result.returncode != 0
    assert "portal.E008" in result.stdout + result.stderr
