import logging
import pickle
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from messaging import gateways
from messaging.forms import ProviderLinkForm
from messaging.gateways import (
    FAKE_GATEWAYS,
    GATEWAYS,
    GatewayError,
    Reason,
    gateway_class,
    get_gateway,
    locmem,
    provider_choices,
)
from messaging.gateways import base as gateway_base
from messaging.gateways.base import (
    Gateway,
    backoff_delay,
    mask_phone,
    parse_retry_after,
    scrub,
    shared_client,
)
from messaging.gateways.console import ConsoleGateway
from messaging.gateways.locmem import LocmemGateway
from messaging.gateways.mosio import MosioGateway
from messaging.gateways.sandbox import SandboxGateway
from messaging.gateways.twilio import TwilioGateway
from projects.models import ProviderLink

TO = "+14155550143"
TWILIO_CONFIG = {"account_sid": "AC" + "a" * 32, "auth_token": "b" * 32, "sender": "+15005550006"}


@dataclass
class Link:
    provider: str
    config: dict = field(default_factory=dict)


# --- registry ----------------------------------------------------------------------------------
def test_every_registered_slug_imports_a_gateway_with_that_slug():
    for slug in GATEWAYS:
        cls = gateway_class(slug)
        assert issubclass(cls, Gateway)
        assert cls.slug == slug
        assert cls.label


def test_the_provider_choices_are_the_real_providers_with_their_labels():
    assert [slug for slug, _ in provider_choices()] == ["mosio", "twilio", "sandbox"]
    for slug, label in provider_choices():
        assert gateway_class(slug).label == label


def test_a_provider_link_names_only_what_the_registry_offers(settings):
    """The model's choices, the link form's and the labels all come from the registry."""
    field = ProviderLink._meta.get_field("provider")
    assert field.choices == provider_choices()
    assert ProviderLink(provider="twilio").get_provider_display() == "Twilio"
    settings.SANDBOX_ENABLED = False
    assert [slug for slug, _ in ProviderLinkForm().fields["provider"].choices] == [
        "mosio",
        "twilio",
    ]


def test_fakes_say_so_and_real_providers_do_not():
    assert {slug for slug in GATEWAYS if gateway_class(slug).is_fake} == FAKE_GATEWAYS
    assert not MosioGateway.is_fake and not TwilioGateway.is_fake


def test_an_unknown_slug_is_a_configuration_error():
    with pytest.raises(ImproperlyConfigured, match="Unknown SMS gateway 'pigeon'"):
        gateway_class("pigeon")


@override_settings(SMS_GATEWAY_OVERRIDE="")
def test_get_gateway_builds_the_links_provider_with_its_config():
    gateway = get_gateway(Link("twilio", TWILIO_CONFIG))
    assert isinstance(gateway, TwilioGateway)
    assert gateway.config == TWILIO_CONFIG
    assert gateway.link.provider == "twilio"


@override_settings(SMS_GATEWAY_OVERRIDE="")
def test_get_gateway_passes_a_client_and_timeout_through():
    client = httpx.Client()
    timeout = httpx.Timeout(1.0)
    gateway = get_gateway(Link("mosio", {"api_key": "k" * 12}), client=client, timeout=timeout)
    assert gateway.client is client
    assert gateway.timeout is timeout
    client.close()


@override_settings(SMS_GATEWAY_OVERRIDE="locmem")
def test_the_override_sends_every_link_through_the_fake_without_its_credentials(outbox):
    gateway = get_gateway(Link("twilio", TWILIO_CONFIG))
    assert isinstance(gateway, LocmemGateway)
    assert gateway.config == {}
    gateway.send(to=TO, body="Hello")
    assert [(m.to, m.body, m.provider) for m in outbox] == [(TO, "Hello", "twilio")]


@override_settings(SMS_GATEWAY_OVERRIDE="twilio")
def test_the_override_must_name_a_fake():
    with pytest.raises(ImproperlyConfigured, match="SMS_GATEWAY_OVERRIDE"):
        get_gateway(Link("mosio"))


def test_the_test_settings_use_the_locmem_override():
    assert gateways.override_slug() == "locmem"


# --- GatewayError and Reason --------------------------------------------------------------------
def test_permanent_follows_the_reason():
    assert {r for r in Reason if r.permanent} == {
        Reason.INVALID_NUMBER,
        Reason.OPTED_OUT,
        Reason.BAD_CREDENTIALS,
        Reason.REJECTED,
    }
    assert {r for r in Reason if r.safe_to_retry} == {
        Reason.UNREACHABLE,
        Reason.RATE_LIMITED,
        Reason.QUEUE_FULL,
    }
    assert not Reason.AMBIGUOUS.permanent and not Reason.AMBIGUOUS.safe_to_retry
    for reason in Reason:
        assert GatewayError("x", reason=reason).permanent is reason.permanent


def test_a_bare_gateway_error_is_never_safe_to_resend():
    # The style guide's GatewayError(message, permanent=...) still works, and an unclassified
    # transient error is treated as ambiguous, never as "resend".
    assert GatewayError("x").reason is Reason.AMBIGUOUS
    assert GatewayError("x", permanent=True).reason is Reason.REJECTED
    error = GatewayError("x", permanent=False, reason=Reason.REJECTED)
    assert error.permanent is False


def test_a_gateway_error_reads_as_its_message():
    error = GatewayError("Twilio said no.", reason=Reason.REJECTED, code=21617, status_code=400)
    assert str(error) == "Twilio said no."
    assert "rejected" in repr(error) and "21617" in repr(error)


def test_a_gateway_error_survives_pickling_with_its_classification():
    error = GatewayError("Slow down.", reason=Reason.RATE_LIMITED, retry_after=3, code=20429)
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (our own bytes)
    assert (str(copy), copy.reason, copy.retry_after, copy.code, copy.permanent) == (
        "Slow down.",
        Reason.RATE_LIMITED,
        3,
        20429,
        False,
    )


def test_reasons_are_strings_for_storage():
    assert Reason.OPTED_OUT == "opted_out"
    assert Reason("bad_credentials") is Reason.BAD_CREDENTIALS


# --- backoff ----------------------------------------------------------------------------------
def test_backoff_grows_exponentially_under_the_cap():
    top = random.Random(0)
    top.uniform = lambda a, b: b  # the jitter's upper bound
    assert [backoff_delay(n, base=0.5, cap=8, rng=top) for n in range(1, 7)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        8.0,
    ]


def test_backoff_honours_retry_after_even_above_the_cap():
    delay = backoff_delay(1, base=0.5, cap=2, retry_after=10, rng=random.Random(1))
    assert 10 <= delay <= 10.5


def test_backoff_counts_retries_from_one():
    with pytest.raises(ValueError):
        backoff_delay(0)


@given(
    st.integers(min_value=1, max_value=10_000),
    st.floats(min_value=0.01, max_value=5),
    st.floats(min_value=0.01, max_value=120),
    st.one_of(st.none(), st.floats(min_value=0, max_value=3600)),
    st.integers(),
)
def test_backoff_is_within_its_bounds(attempt, base, cap, retry_after, seed):
    delay = backoff_delay(
        attempt, base=base, cap=cap, retry_after=retry_after, rng=random.Random(seed)
    )
    ceiling = min(cap, base * 2 ** min(attempt - 1, 62))
    if retry_after:
        assert retry_after <= delay <= retry_after + base
    else:
        assert 0 <= delay <= ceiling


def test_backoff_jitter_spreads_workers_out():
    delays = {round(backoff_delay(5, rng=random.Random(seed)), 6) for seed in range(50)}
    assert len(delays) > 40


def test_retry_after_is_read_as_seconds_or_an_http_date():
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30)), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30)), now=now) == 0.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# --- masking ----------------------------------------------------------------------------------
def test_mask_phone_keeps_the_country_code_and_the_last_four():
    assert mask_phone("+14155550143") == "+1…0143"
    assert mask_phone("12345") == "…45"
    assert mask_phone("") == "…"


def test_scrub_masks_numbers_in_any_format_but_not_error_codes():
    text = "To +1 (415) 555-0143 or 14155550143 failed: error 21211, see /errors/21211"
    cleaned = scrub(text)
    assert "555-0143" not in cleaned and "14155550143" not in cleaned
    assert cleaned.count("…0143") == 2
    assert "error 21211" in cleaned and "/errors/21211" in cleaned


def test_scrub_caps_long_messages():
    assert len(scrub("x" * 1000)) == 300


# --- the shared client ------------------------------------------------------------------------
def test_the_shared_client_is_reused_and_never_follows_redirects():
    client = shared_client()
    assert shared_client() is client
    assert client.follow_redirects is False
    assert client.timeout.connect == 5.0
    assert client.timeout.read == 15.0


def test_a_forked_process_gets_its_own_client(monkeypatch):
    client = shared_client()
    monkeypatch.setattr(gateway_base.os, "getpid", lambda: -1)
    assert shared_client() is not client


def test_a_gateway_without_a_client_uses_the_shared_one():
    assert ConsoleGateway({}).client is shared_client()


def test_the_shared_client_keeps_every_connection_a_busy_sender_opens(fake_provider):
    """More calls at once than httpcore's default keep-alive limit: the pool keeps each
    connection for the next call instead of closing it (closing "idle" connections past that
    limit is how httpcore 1.0.9 closed one under a call it had just handed out: docs/sending.md,
    "The HTTP client")."""
    import threading

    threads = 30
    limits = gateway_base.client_limits()
    assert limits.max_keepalive_connections == limits.max_connections > threads
    url = f"{fake_provider.twilio_api_base}Accounts/AC{'0' * 32}/Messages.json"
    ready = threading.Barrier(threads)
    failures = []

    def caller(n: int) -> None:
        ready.wait(10)
        for round_ in range(4):
            response = client.post(
                url,
                data={"To": f"+1415555{n:04d}", "Body": f"round {round_}", "From": "+15005550006"},
                auth=(f"AC{'0' * 32}", "token"),
            )
            if response.status_code != 201:
                failures.append(response.status_code)

    with gateway_base.new_client() as client:
        workers = [threading.Thread(target=caller, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    assert failures == []
    assert fake_provider.stats()["accepted"] == 4 * threads
    # Each thread's connection served its four calls: none was closed and opened again.
    assert fake_provider.connections_opened <= threads


# --- fakes ------------------------------------------------------------------------------------
def test_console_logs_a_masked_number_and_the_length_only(caplog):
    caplog.set_level(logging.INFO, logger="messaging.gateways.console")
    result = ConsoleGateway({}).send(to=TO, body="Hi Sam, your visit is tomorrow")
    assert result.provider_message_id.startswith("CON-")
    assert result.segments == 1
    assert "SMS to +1…0143 (masked): 30 characters, 1 segment(s) GSM-7" in caplog.text
    assert TO not in caplog.text
    assert "Hi Sam" not in caplog.text


def test_locmem_records_sent_texts(outbox):
    gateway = LocmemGateway({})
    result = gateway.send(to=TO, body="Hello", status_callback="https://p.test/cb")
    [message] = outbox
    assert (message.to, message.body, message.status_callback) == (TO, "Hello", "https://p.test/cb")
    assert message.provider_message_id == result.provider_message_id
    assert gateway.fetch_status(provider_message_id=result.provider_message_id) == "queued"
    assert locmem.sent_to(TO) == [message]


def test_locmem_fails_the_next_sends_as_asked(outbox):
    gateway = LocmemGateway({})
    locmem.fail_next(Reason.RATE_LIMITED, retry_after=2, times=2)
    for _ in range(2):
        with pytest.raises(GatewayError) as caught:
            gateway.send(to=TO, body="Hello")
        assert (caught.value.reason, caught.value.retry_after) == (Reason.RATE_LIMITED, 2)
    gateway.send(to=TO, body="Hello")
    assert len(outbox) == 1


def test_locmem_ambiguous_and_accepted_can_be_reconciled(outbox):
    gateway = LocmemGateway({})
    since = datetime.now(UTC)
    locmem.fail_next(Reason.AMBIGUOUS, accepted=True)
    with pytest.raises(GatewayError):
        gateway.send(to=TO, body="Hello")
    assert gateway.find_sent(to=TO, body="Hello", since=since) == outbox[0].provider_message_id
    locmem.fail_next(Reason.AMBIGUOUS)
    with pytest.raises(GatewayError):
        gateway.send(to=TO, body="Other")
    assert gateway.find_sent(to=TO, body="Other", since=since) is None


def test_locmem_polls_its_inbox():
    now = datetime.now(UTC)
    locmem.inbox.append(gateways.InboundSms("LM-1", TO, "STOP", received_at=now))
    locmem.inbox.append(gateways.InboundSms("LM-0", TO, "old", received_at=now - timedelta(days=1)))
    assert [m.body for m in LocmemGateway({}).poll_inbound(since=now - timedelta(minutes=1))] == [
        "STOP"
    ]


def test_locmem_is_reset_between_tests(outbox):
    assert outbox == []


def test_sandbox_issues_sbx_ids_and_reports_them_delivered():
    gateway = SandboxGateway({})
    result = gateway.send(to=TO, body="Hello")
    assert result.provider_message_id.startswith("SBX-")
    assert gateway.fetch_status(provider_message_id=result.provider_message_id) == "delivered"
    assert gateway.fetch_status(provider_message_id="SM123") is None


@pytest.mark.parametrize("cls", [ConsoleGateway, LocmemGateway, SandboxGateway])
def test_fakes_check_credentials_without_any(cls):
    assert cls({}).check_credentials()
    assert cls.config_fields == ()


def test_providers_without_polling_say_so():
    with pytest.raises(NotImplementedError, match="webhook"):
        TwilioGateway(TWILIO_CONFIG).poll_inbound(since=datetime.now(UTC))
    assert MosioGateway.supports_polling and not TwilioGateway.supports_polling
