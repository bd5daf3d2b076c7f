from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from django.core.exceptions import ValidationError
from django.test import override_settings

from messaging.gateways.base import GatewayError, Reason
from messaging.gateways.mosio import MosioGateway, parse_inbound, verify_inbound_key
from tests.fakes.provider import FakeProvider

BASE = "https://api.mosio.test/api/"
KEY = "mosio-key-7f3a9c21"
TO = "+14155550143"
SEND = f"{BASE}send_single_sms"
HISTORY = f"{BASE}text_history"


@pytest.fixture(autouse=True)
def _mosio_base():
    with override_settings(MOSIO_API_BASE=BASE):
        yield


@pytest.fixture
def gateway():
    return MosioGateway({"api_key": KEY})


@pytest.fixture
def mosio():
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def ok(**extra):
    return httpx.Response(
        200,
        json={"Success": True, "ErrorCode": 0, "ErrorMessage": "", "TransactionId": 981, **extra},
    )


def failed(message, code=7, status=200):
    return httpx.Response(
        status, json={"Success": False, "ErrorCode": code, "ErrorMessage": message}
    )


def history(*contacts):
    return httpx.Response(200, json={"Success": True, "Contacts": list(contacts)})


def send_error(gateway) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        gateway.send(to=TO, body="Your visit is tomorrow.")
    return caught.value


# --- config ------------------------------------------------------------------------------------
def test_validate_config_strips_the_key_and_drops_unknown_fields():
    assert MosioGateway.validate_config({"api_key": f"  {KEY}\n", "other": "x"}) == {"api_key": KEY}


@pytest.mark.parametrize(
    "key, message", [("", "API key is required."), ("a b c d e f g h", "no spaces")]
)
def test_validate_config_explains_a_bad_key(key, message):
    with pytest.raises(ValidationError) as caught:
        MosioGateway.validate_config({"api_key": key})
    assert message in caught.value.message_dict["api_key"][0]


def test_the_key_is_secret_and_repr_hides_it(gateway):
    assert MosioGateway.secret_keys() == {"api_key"}
    assert KEY not in repr(gateway)
    assert "<hidden>" in repr(gateway)


# --- send --------------------------------------------------------------------------------------
def test_send_posts_an_11_digit_phone_with_the_key_header(gateway, mosio):
    route = mosio.post(SEND).mock(return_value=ok())
    result = gateway.send(to=TO, body="Hi Sam", status_callback="https://ignored.test/")
    assert (result.provider_message_id, result.status, result.segments) == ("981", "accepted", None)
    request = route.calls.last.request
    assert parse_qs(request.content.decode()) == {"Phone": ["14155550143"], "Message": ["Hi Sam"]}
    assert request.headers["X-ApiKey"] == KEY
    assert "Authorization" not in request.headers


def test_success_may_be_spelled_as_redcap_does(gateway, mosio):
    mosio.post(SEND).mock(return_value=ok(Success="1", ErrorCode="0"))
    assert gateway.send(to=TO, body="Hi").provider_message_id == "981"


@pytest.mark.parametrize(
    "message, reason",
    [
        ("Recipient has opted out", Reason.OPTED_OUT),
        ("Number is unsubscribed", Reason.OPTED_OUT),
        ("Invalid phone number", Reason.INVALID_NUMBER),
        ("The number is a landline", Reason.INVALID_NUMBER),
        ("Invalid API key", Reason.BAD_CREDENTIALS),
        ("Unauthorized", Reason.BAD_CREDENTIALS),
        ("Rate limit exceeded", Reason.RATE_LIMITED),
        ("Account has no credits", Reason.REJECTED),
        ("", Reason.REJECTED),
    ],
)
def test_success_false_is_classified_by_its_message(gateway, mosio, message, reason):
    mosio.post(SEND).mock(return_value=failed(message))
    caught = send_error(gateway)
    assert caught.reason is reason
    assert caught.code == 7
    assert caught.permanent is reason.permanent


def test_a_nonzero_error_code_is_a_failure_even_with_success_true(gateway, mosio):
    mosio.post(SEND).mock(return_value=ok(ErrorCode=12, ErrorMessage="Message too long"))
    caught = send_error(gateway)
    assert (caught.reason, caught.code) == (Reason.REJECTED, 12)
    assert "Message too long" in caught.message


# --- check_credentials, history, reconciliation ------------------------------------------------
def test_check_credentials_reads_one_history_item_without_a_content_type(gateway, mosio):
    route = mosio.get(HISTORY).mock(return_value=history())
    assert "accepted the API key" in gateway.check_credentials()
    request = route.calls.last.request
    assert request.url.params["Limit"] == "1"
    assert request.headers["X-ApiKey"] == KEY
    assert "Content-Type" not in request.headers


@pytest.mark.parametrize(
    "response", [httpx.Response(401), failed("Invalid API key"), failed("Unauthorized", status=403)]
)
def test_check_credentials_refuses_a_bad_key(gateway, mosio, response):
    mosio.get(HISTORY).mock(return_value=response)
    with pytest.raises(GatewayError) as caught:
        gateway.check_credentials()
    assert caught.value.reason is Reason.BAD_CREDENTIALS


def test_find_sent_matches_an_outgoing_text_to_that_phone_with_that_body(gateway, mosio):
    since = datetime(2025, 3, 1, 14, 5, 30, 123, tzinfo=UTC)
    route = mosio.get(HISTORY).mock(
        return_value=history(
            {"Id": 1, "Phone": "14155550143", "Body": "Your visit is tomorrow.", "Direction": "in"},
            {
                "Id": 2,
                "Phone": "14155550199",
                "Body": "Your visit is tomorrow.",
                "Direction": "out",
            },
            {"Id": 3, "Phone": "14155550143", "Body": "Other", "Direction": "out"},
            {
                "Id": 4,
                "Phone": "14155550143",
                "Body": "Your visit is tomorrow.",
                "Direction": "out",
            },
        )
    )
    assert gateway.find_sent(to=TO, body="Your visit is tomorrow.", since=since) == "4"
    # Asked from a little before `since` (clock skew), in UTC, whole seconds.
    assert route.calls.last.request.url.params["Since"] == "2025-03-01T14:03:30"


def test_find_sent_returns_none_when_nothing_matches(gateway, mosio):
    mosio.get(HISTORY).mock(return_value=history())
    assert gateway.find_sent(to=TO, body="x", since=datetime.now(UTC)) is None


def test_poll_inbound_returns_incoming_texts_as_e164(gateway, mosio):
    mosio.get(HISTORY).mock(
        return_value=history(
            {
                "Id": 8,
                "Phone": "14155550143",
                "Body": "STOP",
                "Date": "2025-03-01T14:06:00",
                "Direction": "in",
            },
            {
                "Id": 9,
                "Phone": "4155550143",
                "Body": "out",
                "Date": "2025-03-01T14:06:00",
                "Direction": "out",
            },
        )
    )
    [sms] = gateway.poll_inbound(since=datetime(2025, 3, 1, tzinfo=UTC))
    assert (sms.provider_message_id, sms.from_number, sms.body) == ("8", TO, "STOP")
    assert sms.received_at == datetime(2025, 3, 1, 14, 6, tzinfo=UTC)


def test_a_history_failure_while_polling_is_a_gateway_error(gateway, mosio):
    mosio.get(HISTORY).mock(return_value=httpx.Response(502))
    with pytest.raises(GatewayError) as caught:
        gateway.poll_inbound(since=datetime.now(UTC))
    assert not caught.value.permanent


def test_fetch_status_is_unknown_for_mosio(gateway, mosio):
    assert gateway.fetch_status(provider_message_id="981") is None
    assert not mosio.calls


# --- inbound -----------------------------------------------------------------------------------
def test_the_inbound_key_must_match_exactly():
    assert verify_inbound_key(KEY, KEY)
    assert not verify_inbound_key(KEY + "x", KEY)
    assert not verify_inbound_key("", KEY)
    assert not verify_inbound_key(None, KEY)
    assert not verify_inbound_key("", "")


def test_the_inbound_key_is_compared_in_constant_time(monkeypatch):
    calls = []
    monkeypatch.setattr(
        "messaging.gateways.mosio.hmac.compare_digest", lambda a, b: calls.append(1) or a == b
    )
    verify_inbound_key(KEY, KEY)
    assert calls == [1]


@pytest.mark.parametrize("field", ["Body", "Message", "Text"])
def test_parse_inbound_reads_the_text_from_any_known_field(field):
    sms = parse_inbound({"From": "14155550143", "ApiKey": KEY, "MosioAccountId": "9", field: "YES"})
    assert (sms.from_number, sms.body) == (TO, "YES")


# --- over real loopback HTTP, against the fake provider -------------------------------------------
def test_loopback_send_check_find_and_poll(fake_provider):
    gateway = MosioGateway({"api_key": KEY})
    since = datetime.now(UTC) - timedelta(seconds=1)
    assert "accepted" in gateway.check_credentials()
    result = gateway.send(to=TO, body="Loopback hi")
    assert gateway.find_sent(to=TO, body="Loopback hi", since=since) == result.provider_message_id
    fake_provider.add_inbound(from_number=TO, body="STOP")
    [sms] = gateway.poll_inbound(since=since)
    assert (sms.from_number, sms.body) == (TO, "STOP")
    assert fake_provider.stats()["accepted"] == 1


def test_loopback_a_get_with_a_content_type_would_be_refused(fake_provider):
    # The fake behaves as Mosio is reported to; the gateway never sends one (above).
    response = httpx.get(
        f"{fake_provider.mosio_api_base}text_history",
        headers={"X-ApiKey": KEY, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400


def test_loopback_wrong_key_is_bad_credentials():
    with (
        FakeProvider(mosio_api_key="the-right-key") as fake,
        override_settings(MOSIO_API_BASE=fake.mosio_api_base),
        pytest.raises(GatewayError) as caught,
    ):
        MosioGateway({"api_key": KEY}).check_credentials()
    assert caught.value.reason is Reason.BAD_CREDENTIALS


def test_loopback_server_error_is_ambiguous():
    fake = FakeProvider(failure_rate=1.0, failure_kinds=("500",))
    with (
        fake,
        override_settings(MOSIO_API_BASE=fake.mosio_api_base),
        pytest.raises(GatewayError) as caught,
    ):
        MosioGateway({"api_key": KEY}).send(to=TO, body="Hi")
    assert caught.value.reason is Reason.AMBIGUOUS
