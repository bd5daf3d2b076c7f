"""The Gateway contract (messaging/gateways/base.py), checked for every real provider at once.

Each case runs against Twilio and Mosio with their own answers (respx at the one HTTP choke
point); what only one provider does is in test_gateway_twilio.py and test_gateway_mosio.py.
"""

import base64
import logging
from dataclasses import dataclass, field

import httpx
import pytest
import respx
from django.test import override_settings

from messaging.gateways.base import Gateway, GatewayError, Reason
from messaging.gateways.mosio import MosioGateway
from messaging.gateways.twilio import TwilioGateway

TO = "+14155550143"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "f" * 28 + "9c1e"
MOSIO_KEY = "mosio-key-7f3a9c21"


@dataclass
class Provider:
    """What the contract needs to know of one provider."""

    slug: str
    setting: str  # where its API base is configured
    base: str
    gateway: Gateway
    send_path: str
    check: tuple[str, str]  # method and path of check_credentials' first call
    ok: httpx.Response
    echoing: httpx.Response  # a refusal that repeats the number back
    bad_credentials_words: str
    not_textable: list[str]  # numbers refused before any call
    unreadable: list[httpx.Response]  # 2xx answers that say nothing certain
    secrets: list[str] = field(default_factory=list)


PROVIDERS = {
    "twilio": lambda: Provider(
        slug="twilio",
        setting="TWILIO_API_BASE",
        base="https://api.twilio.test/2010-04-01/",
        gateway=TwilioGateway(
            {"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "sender": "+15005550006"}
        ),
        send_path=f"Accounts/{TWILIO_SID}/Messages.json",
        check=("GET", f"Accounts/{TWILIO_SID}.json"),
        ok=httpx.Response(201, json={"sid": "SM" + "1" * 32, "status": "queued"}),
        echoing=httpx.Response(
            400, json={"code": 21211, "message": f"The 'To' number {TO} is not valid."}
        ),
        bad_credentials_words="account SID and auth token",
        not_textable=["4155550143", "+0123", "", "+1415555014x"],
        unreadable=[httpx.Response(201, json=["a list"]), httpx.Response(201, json={})],
        secrets=[
            TWILIO_TOKEN,
            base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode(),
        ],
    ),
    "mosio": lambda: Provider(
        slug="mosio",
        setting="MOSIO_API_BASE",
        base="https://api.mosio.test/api/",
        gateway=MosioGateway({"api_key": MOSIO_KEY}),
        send_path="send_single_sms",
        check=("GET", "text_history"),
        ok=httpx.Response(200, json={"Success": True, "ErrorCode": 0, "TransactionId": 981}),
        echoing=httpx.Response(
            200,
            json={"Success": False, "ErrorCode": 7, "ErrorMessage": "Invalid phone 14155550143"},
        ),
        bad_credentials_words="Check it on the provider settings page",
        not_textable=["+447700900123", "14155550143", "+1415555014", ""],
        unreadable=[
            httpx.Response(200, json={"Success": True, "ErrorCode": 0, "TransactionId": None})
        ],
        secrets=[MOSIO_KEY, "14155550143"],
    ),
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request):
    described = PROVIDERS[request.param]()
    with override_settings(**{described.setting: described.base}):
        described.gateway = type(described.gateway)(described.gateway.config)  # reads the base
        with respx.mock(assert_all_called=False) as mock:
            described.mock = mock
            described.send = mock.post(described.base + described.send_path)
            yield described


def refused(provider: Provider) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        provider.gateway.send(to=TO, body="Your visit is tomorrow.")
    return caught.value


def test_a_send_returns_the_providers_id(provider):
    provider.send.mock(return_value=provider.ok)
    result = provider.gateway.send(to=TO, body="Hi")
    assert result.provider_message_id
    assert provider.send.call_count == 1


def test_a_number_it_cannot_text_is_refused_without_a_call(provider):
    for number in provider.not_textable:
        with pytest.raises(GatewayError) as caught:
            provider.gateway.send(to=number, body="Hi")
        assert caught.value.reason is Reason.INVALID_NUMBER and caught.value.permanent, number
    assert not provider.send.called


def test_an_empty_body_is_refused_without_a_call(provider):
    with pytest.raises(GatewayError) as caught:
        provider.gateway.send(to=TO, body="")
    assert caught.value.reason is Reason.REJECTED
    assert not provider.send.called


@pytest.mark.parametrize(
    "status, reason",
    [
        (401, Reason.BAD_CREDENTIALS),
        (403, Reason.BAD_CREDENTIALS),
        (429, Reason.RATE_LIMITED),
        (500, Reason.AMBIGUOUS),
        (502, Reason.AMBIGUOUS),
        (503, Reason.AMBIGUOUS),
        (504, Reason.AMBIGUOUS),
        (408, Reason.AMBIGUOUS),
        (404, Reason.REJECTED),
        (400, Reason.REJECTED),
    ],
)
def test_an_http_status_alone_says_what_happened(provider, status, reason):
    provider.send.mock(return_value=httpx.Response(status, text="<html>oops</html>"))
    caught = refused(provider)
    assert (caught.reason, caught.status_code) == (reason, status)
    assert caught.permanent is reason.permanent


def test_a_429_carries_retry_after_and_is_safe_to_retry(provider):
    provider.send.mock(return_value=httpx.Response(429, headers={"Retry-After": "3"}))
    caught = refused(provider)
    assert (caught.reason, caught.retry_after, caught.permanent) == (
        Reason.RATE_LIMITED,
        3.0,
        False,
    )
    assert caught.reason.safe_to_retry


def test_refused_credentials_say_what_to_check(provider):
    provider.send.mock(return_value=httpx.Response(401))
    caught = refused(provider)
    assert caught.reason is Reason.BAD_CREDENTIALS
    assert provider.bad_credentials_words in caught.message


def test_a_server_error_says_the_text_may_have_gone_out(provider):
    provider.send.mock(return_value=httpx.Response(503))
    caught = refused(provider)
    assert caught.reason is Reason.AMBIGUOUS and not caught.reason.safe_to_retry
    assert "may or may not have gone out" in caught.message


def test_a_redirect_is_never_followed(provider):
    provider.send.mock(
        return_value=httpx.Response(307, headers={"Location": "https://elsewhere.test/"})
    )
    elsewhere = provider.mock.post("https://elsewhere.test/")
    caught = refused(provider)
    assert caught.reason is Reason.REJECTED
    assert "redirect" in caught.message and provider.setting in caught.message
    assert not elsewhere.called


def test_an_unreadable_success_is_ambiguous(provider):
    for answer in [httpx.Response(200, text="<html>maintenance</html>"), *provider.unreadable]:
        provider.send.mock(return_value=answer)
        assert refused(provider).reason is Reason.AMBIGUOUS, answer


@pytest.mark.parametrize(
    "exc, reason",
    [
        (httpx.ConnectError("[Errno -2] Name or service not known"), Reason.UNREACHABLE),
        (httpx.ConnectError("TLS handshake failed"), Reason.UNREACHABLE),
        (httpx.ConnectTimeout("timed out"), Reason.UNREACHABLE),
        (httpx.PoolTimeout("pool"), Reason.UNREACHABLE),
        (httpx.ReadTimeout("timed out"), Reason.AMBIGUOUS),
        (httpx.WriteTimeout("timed out"), Reason.AMBIGUOUS),
        (httpx.ReadError("reset"), Reason.AMBIGUOUS),
        (httpx.RemoteProtocolError("Server disconnected"), Reason.AMBIGUOUS),
    ],
)
def test_a_transport_failure_is_classified_by_whether_the_request_left(provider, exc, reason):
    provider.send.mock(side_effect=exc)
    caught = refused(provider)
    assert caught.reason is reason and not caught.permanent
    assert type(exc).__name__ in caught.message


def test_a_number_the_provider_echoes_is_masked_in_the_error(provider):
    provider.send.mock(return_value=provider.echoing)
    caught = refused(provider)
    assert TO not in caught.message and TO[1:] not in caught.message
    assert "…0143" in caught.message


def test_nothing_secret_or_identifying_is_logged(provider, caplog):
    caplog.set_level(logging.DEBUG)
    provider.send.mock(side_effect=[provider.ok, provider.echoing])
    provider.gateway.send(to=TO, body="Hi Sam")
    with pytest.raises(GatewayError):
        provider.gateway.send(to=TO, body="Hi Sam")
    assert caplog.records, "the send should log something"
    for secret in (TO, "Hi Sam", *provider.secrets):
        assert secret not in caplog.text


def test_check_credentials_refuses_refused_credentials(provider):
    method, path = provider.check
    provider.mock.request(method, provider.base + path).mock(return_value=httpx.Response(401))
    with pytest.raises(GatewayError) as caught:
        provider.gateway.check_credentials()
    assert caught.value.reason is Reason.BAD_CREDENTIALS
    assert provider.bad_credentials_words in caught.value.message


def test_a_request_off_the_configured_host_is_refused(provider):
    elsewhere = provider.mock.get("https://elsewhere.test/x")
    with pytest.raises(GatewayError) as caught:
        provider.gateway._request("GET", "https://elsewhere.test/x")
    assert caught.value.reason is Reason.REJECTED
    assert not elsewhere.called
