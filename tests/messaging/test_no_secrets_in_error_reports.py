"""A crash on the send path never puts a provider secret or a participant's number into Django's
error report (the e-mail to the administrators, or a 500 page with DEBUG on).

Every call site that holds them is marked with `sensitive_variables`: the sender's pool-thread
call, `record.deliver`, the gateways' provider calls and `get_gateway`. The reports are built as
Django builds them, by `ExceptionReporter` with the default `SafeExceptionReporterFilter`.
"""

import base64
import datetime
import logging
import sys
import time
import uuid

import httpx
import pytest
from django.utils import timezone
from django.views.debug import ExceptionReporter

from messaging import segments, sender
from messaging.gateways.mosio import MosioGateway
from messaging.gateways.twilio import TwilioGateway
from messaging.models import Message
from messaging.services import release
from projects import crypto
from projects.models import ProviderLink
from tests.factories import ParticipantFactory, ProjectFactory, ProviderLinkFactory

pytestmark = pytest.mark.django_db

PHONE = "+12025550123"
MOSIO_KEY = "mosio-key-5ecret-77aa99"
TWILIO_SID = "AC" + "1" * 32
TWILIO_TOKEN = "9f" * 16
TWILIO_BASIC = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
CONFIGS = {
    "mosio": {"api_key": MOSIO_KEY},
    "twilio": {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "sender": "+14155550100"},
}
GATEWAYS = {"mosio": MosioGateway, "twilio": TwilioGateway}


@pytest.fixture(autouse=True)
def crashing_http(monkeypatch, settings):
    """The real gateways (no fake override), and an HTTP library that crashes deep inside, after
    the request, its headers and its credentials were built."""
    settings.SMS_GATEWAY_OVERRIDE = ""

    def explode(self, request):
        raise RuntimeError("the HTTP library crashed")

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", explode)


def assert_no_secret(exc_info) -> None:
    reporter = ExceptionReporter(None, *exc_info)
    for report in (reporter.get_traceback_text(), reporter.get_traceback_html()):
        assert "the HTTP library crashed" in report  # the report is about the crash
        for secret in (MOSIO_KEY, TWILIO_TOKEN, TWILIO_BASIC, PHONE, PHONE[2:]):
            assert secret not in report


def crash(call) -> tuple:
    try:
        call()
    except RuntimeError:
        return sys.exc_info()
    pytest.fail("the crash did not propagate")


def claimed_message(provider: str) -> tuple[Message, ProviderLink]:
    # Open all day: the last gate refuses a text outside the sending hours before any call.
    project = ProjectFactory(always_open=True)
    link = ProviderLinkFactory(
        project=project, provider=provider, config_encrypted=crypto.encrypt_json(CONFIGS[provider])
    )
    phone = PHONE
    participant = ParticipantFactory(
        project=project,
        phone_encrypted=crypto.encrypt(phone),
        phone_fingerprint=crypto.fingerprint(phone, purpose="phone"),
        phone_last4=phone[-4:],
    )
    now = timezone.now()
    message = Message.objects.create(
        project=project,
        participant=participant,
        kind="adhoc",
        occurrence="adhoc",
        dedup_key=f"adhoc:{uuid.uuid4()}",
        body="Hi Ana, your visit is tomorrow.",
        due_at=now,
        not_before=now,
        status=Message.Status.SENDING,
        reserved_at=now,
        units=1,
    )
    return message, link


@pytest.mark.parametrize("threads", [0, 2], ids=["inline", "pool"])
@pytest.mark.parametrize("provider", ["mosio", "twilio"])
def test_a_crash_in_the_provider_call_shows_no_key_token_or_number(provider, threads, caplog):
    """The sender's one provider call (on a pool thread, or inline without a pool as in the
    tests): the exception is handed back, the loop logs it (an ERROR with exc_info: what the
    administrators' e-mail is built from)."""
    message, link = claimed_message(provider)
    loop = sender._Loop("owner", sender.SenderReport(), threads=threads, batch_size=10)
    state = loop._state(link)
    body = message.body
    count = segments.count(body)
    prepared = release.Prepared(message=message, body=body, count=count, units=1)
    state.in_flight += 1
    loop.in_flight += 1
    try:
        if loop.pool is None:
            loop._call(state, prepared, time.monotonic(), None)
        else:
            loop.pool.submit(loop._call, state, prepared, time.monotonic(), None)
        item = loop.results.get(timeout=10)
        with caplog.at_level(logging.ERROR, logger="messaging.sender"):
            loop._record([item])
    finally:
        loop.close(orderly=False)
    [logged] = [r for r in caplog.records if r.exc_info]
    assert "failed unexpectedly" in logged.getMessage()
    assert_no_secret(logged.exc_info)


@pytest.mark.parametrize("provider", ["mosio", "twilio"])
def test_a_crash_while_checking_credentials_or_reconciling_shows_no_secret(provider):
    gateway = GATEWAYS[provider](CONFIGS[provider])
    assert_no_secret(crash(gateway.check_credentials))
    since = timezone.now() - datetime.timedelta(minutes=5)
    assert_no_secret(crash(lambda: gateway.find_sent(to=PHONE, body="Hi", since=since)))
