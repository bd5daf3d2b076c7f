"""Logs never hold a token, a provider secret or a full phone number: a whole set-up (REDCap
link, Mosio link, mapping, sync, test connections, a refused token) logged at DEBUG."""

import logging

import httpx
import pytest
import respx
from django.test import override_settings
from django.urls import reverse

from projects.models import Participant
from projects.sandbox.data import DEMO_TOKEN, LONGITUDINAL_TOKEN
from tests.projects.conftest import MAPPING

MOSIO = "https://api.mosio.test/api/"
MOSIO_KEY = "mosio-key-7f3a9c21"


@pytest.fixture
def everything_logged(caplog):
    """DEBUG for every logger, including the ones settings quiet down (httpx, httpcore)."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "projects", "messaging", "django"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def test_a_whole_set_up_logs_no_secret_and_no_phone(
    as_user, researcher, sandbox_project, everything_logged
):
    client = as_user(researcher)
    pk = sandbox_project.pk
    instance = sandbox_project.redcap_instance_id
    client.post(
        reverse("project-redcap", args=[pk]),
        {"redcap_instance": instance, "token": LONGITUDINAL_TOKEN},  # refused: another project
    )
    client.post(
        reverse("project-redcap", args=[pk]),
        {"redcap_instance": instance, "token": "0123456789ABCDEF" * 2},  # refused by REDCap
    )
    client.post(
        reverse("project-redcap", args=[pk]), {"redcap_instance": instance, "token": DEMO_TOKEN}
    )
    client.post(reverse("project-redcap-test", args=[pk]))
    with override_settings(MOSIO_API_BASE=MOSIO), respx.mock() as mosio:
        history = mosio.get(f"{MOSIO}text_history").mock(
            return_value=httpx.Response(200, json={"Success": True, "Contacts": []})
        )
        client.post(
            reverse("project-provider", args=[pk]),
            {"provider": "mosio", "api_key": MOSIO_KEY, "rate_per_second": "1"},
        )
        client.post(reverse("project-provider-action", args=[pk]), {"action": "test"})
    assert history.call_count == 2
    mapping = {k: v for k, v in MAPPING.items() if k != "event"}
    assert client.post(reverse("project-fields", args=[pk]), mapping).status_code == 302
    client.post(reverse("project-sync-start", args=[pk]))

    phones = [p.phone for p in Participant.objects.exclude(phone_encrypted="")]
    assert phones, "the sync stored no phone: the test would prove nothing"
    records = everything_logged.records
    assert any(r.name.startswith("httpx") for r in records)  # the calls were logged at all
    logged = "\n".join(
        [everything_logged.text]
        + [repr(r.args) for r in records]
        + [r.exc_text or "" for r in records]
    )
    for secret in (DEMO_TOKEN, DEMO_TOKEN.lower(), LONGITUDINAL_TOKEN, MOSIO_KEY):
        assert secret not in logged
    for phone in phones:
        assert phone not in logged and phone[2:] not in logged
