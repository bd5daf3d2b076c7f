import base64
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from django.core.exceptions import ValidationError
from django.test import override_settings

from messaging.gateways.base import GatewayError, Reason
from messaging.gateways.twilio import (
    ERROR_REASONS,
    TwilioGateway,
    parse_inbound,
    parse_status_callback,
)
from tests.fakes.provider import FakeProvider

BASE = "https://api.twilio.test/2010-04-01/"
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "f" * 28 + "9c1e"
SENDER = "+15005550006"
MG = "MG" + "a" * 32
TO = "+14155550143"
MESSAGES = f"{BASE}Accounts/{SID}/Messages.json"
MESSAGE_SID = "SM" + "1" * 32


@pytest.fixture(autouse=True)
def _twilio_base():
    with override_settings(TWILIO_API_BASE=BASE):
        yield


@pytest.fixture
def gateway():
    return TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": SENDER})


@pytest.fixture
def twilio():
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def created(**extra):
    return httpx.Response(
        201, json={"sid": MESSAGE_SID, "status": "queued", "num_segments": "2", **extra}
    )


def error(status, code=None, message="", headers=None):
    body = {"status": status, "message": message}
    if code is not None:
        body["code"] = code
    return httpx.Response(status, json=body, headers=headers)


def send_error(gateway, **kwargs) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        gateway.send(to=TO, body="Your visit is tomorrow.", **kwargs)
    return caught.value


# --- config ------------------------------------------------------------------------------------
def test_validate_config_normalises_the_values():
    cleaned = TwilioGateway.validate_config(
        {
            "account_sid": " " + SID.upper().replace("AC", "ac", 1),
            "auth_token": TOKEN.upper(),
            "sender": "(415) 555-0100",
            "extra": "dropped",
        }
    )
    assert cleaned == {"account_sid": SID, "auth_token": TOKEN, "sender": "+14155550100"}


@pytest.mark.parametrize("sender", [SENDER, "+44 7700 900123", "12345", MG, MG.upper()])
def test_validate_config_accepts_numbers_short_codes_and_messaging_services(sender):
    cleaned = TwilioGateway.validate_config(
        {"account_sid": SID, "auth_token": TOKEN, "sender": sender}
    )
    assert cleaned["sender"] in (sender.replace(" ", ""), MG)


def test_validate_config_explains_each_bad_value():
    with pytest.raises(ValidationError) as caught:
        TwilioGateway.validate_config(
            {"account_sid": "SK123", "auth_token": "short", "sender": "MG123"}
        )
    errors = caught.value.message_dict
    assert "AC followed by 32 hexadecimal" in errors["account_sid"][0]
    assert "32 hexadecimal" in errors["auth_token"][0]
    assert "Messaging Service SID" in errors["sender"][0]


def test_validate_config_requires_every_field():
    with pytest.raises(ValidationError) as caught:
        TwilioGateway.validate_config({"account_sid": SID})
    assert caught.value.message_dict == {
        "auth_token": ["Auth token is required."],
        "sender": ["Sender is required."],
    }


def test_the_auth_token_is_the_only_secret_and_repr_hides_it(gateway):
    assert TwilioGateway.secret_keys() == {"auth_token"}
    assert [f.key for f in TwilioGateway.config_fields] == ["account_sid", "auth_token", "sender"]
    assert TOKEN not in repr(gateway)
    assert TOKEN[-4:] not in repr(gateway)
    assert "auth_token='<hidden>'" in repr(gateway)


# --- send --------------------------------------------------------------------------------------
def test_send_posts_the_form_with_basic_auth_and_returns_the_result(gateway, twilio):
    route = twilio.post(MESSAGES).mock(return_value=created())
    result = gateway.send(to=TO, body="Hi Sam", status_callback="https://portal.test/cb/1")
    assert (result.provider_message_id, result.status, result.segments) == (
        MESSAGE_SID,
        "queued",
        2,
    )
    request = route.calls.last.request
    assert parse_qs(request.content.decode()) == {
        "To": [TO],
        "Body": ["Hi Sam"],
        "From": [SENDER],
        "StatusCallback": ["https://portal.test/cb/1"],
    }
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert (
        request.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    )


def test_a_messaging_service_sender_goes_as_messaging_service_sid(twilio):
    gateway = TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": MG})
    route = twilio.post(MESSAGES).mock(return_value=created(status="accepted"))
    assert gateway.send(to=TO, body="Hi").status == "accepted"
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["MessagingServiceSid"] == [MG]
    assert "From" not in form
    assert "StatusCallback" not in form


def test_the_base_url_comes_from_the_setting(twilio):
    route = twilio.post(f"http://127.0.0.1:9/x/2010-04-01/Accounts/{SID}/Messages.json").mock(
        return_value=created()
    )
    with override_settings(TWILIO_API_BASE="http://127.0.0.1:9/x/2010-04-01"):
        gateway = TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": SENDER})
        gateway.send(to=TO, body="Hi")
    assert route.called


def test_segments_are_none_when_twilio_does_not_say(gateway, twilio):
    twilio.post(MESSAGES).mock(return_value=created(num_segments=None))
    assert gateway.send(to=TO, body="Hi").segments is None


@pytest.mark.parametrize(
    "code, reason",
    [
        (21211, Reason.INVALID_NUMBER),
        (21612, Reason.INVALID_NUMBER),
        (21614, Reason.INVALID_NUMBER),
        (30006, Reason.INVALID_NUMBER),
        (21610, Reason.OPTED_OUT),
        (21611, Reason.QUEUE_FULL),
        (30001, Reason.QUEUE_FULL),
        (20429, Reason.RATE_LIMITED),
        (20003, Reason.BAD_CREDENTIALS),
        (30002, Reason.BAD_CREDENTIALS),
        (21606, Reason.BAD_CREDENTIALS),
        (21617, Reason.REJECTED),
        (21408, Reason.REJECTED),
        (21608, Reason.REJECTED),
        (99999, Reason.REJECTED),  # unknown code: permanent, shown to the coordinator
    ],
)
def test_twilio_error_codes_map_to_reasons(gateway, twilio, code, reason):
    status = {20429: 429, 20003: 401}.get(code, 400)
    twilio.post(MESSAGES).mock(return_value=error(status, code, f"Twilio says {code}"))
    caught = send_error(gateway)
    assert caught.reason is reason
    assert caught.code == code
    assert caught.status_code == status
    assert caught.permanent is reason.permanent


def documented_codes() -> dict[int, Reason]:
    """The error-code table of docs/twilio.md: {code: reason}."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "twilio.md").read_text()
    table = {}
    for codes, reason in re.findall(r"^\| ([0-9][0-9 /]*) \| [^|]+ \| `([A-Z_]+)` \|$", text, re.M):
        for code in codes.split("/"):
            table[int(code)] = Reason[reason]
    return table


def test_every_code_in_the_table_maps_to_a_reason(gateway, twilio):
    """The gateway's table is the one docs/twilio.md states (no code added, dropped or classed
    differently on one side only), and a send refused with each code is classified by it."""
    documented = documented_codes()
    assert len(documented) >= 25
    assert documented == ERROR_REASONS
    for code, reason in ERROR_REASONS.items():
        twilio.post(MESSAGES).mock(return_value=error(400, code, f"Twilio says {code}"))
        caught = send_error(gateway)
        assert (caught.reason, caught.code, caught.permanent) == (reason, code, reason.permanent)


# --- check_credentials ---------------------------------------------------------------------------
def account(status="active", kind="Full"):
    return httpx.Response(
        200, json={"sid": SID, "friendly_name": "Sleep Study", "status": status, "type": kind}
    )


def test_check_credentials_describes_the_account_and_checks_the_sender(gateway, twilio):
    twilio.get(f"{BASE}Accounts/{SID}.json").mock(return_value=account())
    numbers = twilio.get(f"{BASE}Accounts/{SID}/IncomingPhoneNumbers.json").mock(
        return_value=httpx.Response(200, json={"incoming_phone_numbers": [{"sid": "PN1"}]})
    )
    assert gateway.check_credentials() == "Sleep Study (full account, active)"
    assert numbers.calls.last.request.url.params["PhoneNumber"] == SENDER


def test_check_credentials_mentions_a_trial_account(gateway, twilio):
    twilio.get(f"{BASE}Accounts/{SID}.json").mock(return_value=account(kind="Trial"))
    twilio.get(f"{BASE}Accounts/{SID}/IncomingPhoneNumbers.json").mock(
        return_value=httpx.Response(200, json={"incoming_phone_numbers": [{"sid": "PN1"}]})
    )
    assert "only texts verified numbers" in gateway.check_credentials()


def test_check_credentials_refuses_a_suspended_account(gateway, twilio):
    twilio.get(f"{BASE}Accounts/{SID}.json").mock(return_value=account(status="suspended"))
    with pytest.raises(GatewayError) as caught:
        gateway.check_credentials()
    assert caught.value.reason is Reason.BAD_CREDENTIALS
    assert "suspended" in caught.value.message


def test_check_credentials_refuses_a_sender_the_account_does_not_own(gateway, twilio):
    twilio.get(f"{BASE}Accounts/{SID}.json").mock(return_value=account())
    twilio.get(f"{BASE}Accounts/{SID}/IncomingPhoneNumbers.json").mock(
        return_value=httpx.Response(200, json={"incoming_phone_numbers": []})
    )
    with pytest.raises(GatewayError) as caught:
        gateway.check_credentials()
    assert caught.value.reason is Reason.BAD_CREDENTIALS
    assert "+1…0006 is not a phone number of the Twilio account" in caught.value.message


def test_check_credentials_with_a_messaging_service_makes_one_call(twilio):
    gateway = TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": MG})
    twilio.get(f"{BASE}Accounts/{SID}.json").mock(return_value=account())
    numbers = twilio.get(f"{BASE}Accounts/{SID}/IncomingPhoneNumbers.json")
    gateway.check_credentials()
    assert not numbers.called


# --- fetch_status and find_sent -------------------------------------------------------------------
def test_fetch_status_reads_the_message(gateway, twilio):
    twilio.get(f"{BASE}Accounts/{SID}/Messages/{MESSAGE_SID}.json").mock(
        return_value=httpx.Response(200, json={"sid": MESSAGE_SID, "status": "delivered"})
    )
    assert gateway.fetch_status(provider_message_id=MESSAGE_SID) == "delivered"


def test_fetch_status_of_an_unknown_message_is_none(gateway, twilio):
    twilio.get(f"{BASE}Accounts/{SID}/Messages/{MESSAGE_SID}.json").mock(
        return_value=error(404, 20404, "not found")
    )
    assert gateway.fetch_status(provider_message_id=MESSAGE_SID) is None


def test_fetch_status_never_puts_a_malformed_id_in_a_url(gateway, twilio):
    assert gateway.fetch_status(provider_message_id="../../Accounts") is None
    assert not twilio.calls


def listed(*messages, next_page_uri=None):
    return httpx.Response(200, json={"messages": list(messages), "next_page_uri": next_page_uri})


def message(
    sid, *, body="Your visit is tomorrow.", to=TO, created_at=None, direction="outbound-api"
):
    created_at = created_at or datetime.now(UTC)
    return {
        "sid": sid,
        "to": to,
        "body": body,
        "direction": direction,
        "date_created": format_datetime(created_at),
        "date_sent": None,
        "status": "queued",
    }


def test_find_sent_finds_a_queued_message_with_the_same_body(gateway, twilio):
    since = datetime.now(UTC) - timedelta(seconds=5)
    route = twilio.get(MESSAGES).mock(
        return_value=listed(
            message("SM" + "2" * 32, body="Something else"),
            message("SM" + "3" * 32),
        )
    )
    assert gateway.find_sent(to=TO, body="Your visit is tomorrow.", since=since) == "SM" + "3" * 32
    params = route.calls.last.request.url.params
    assert params["To"] == TO
    assert params["From"] == SENDER
    assert "DateSent>" not in str(route.calls.last.request.url)  # queued ones have no date_sent


def test_find_sent_ignores_older_and_inbound_messages(gateway, twilio):
    since = datetime.now(UTC)
    twilio.get(MESSAGES).mock(
        return_value=listed(
            message("SM" + "4" * 32, created_at=since - timedelta(hours=1)),
            message("SM" + "5" * 32, direction="inbound"),
        )
    )
    assert gateway.find_sent(to=TO, body="Your visit is tomorrow.", since=since) is None


def test_find_sent_allows_for_clock_skew(gateway, twilio):
    since = datetime.now(UTC)
    twilio.get(MESSAGES).mock(
        return_value=listed(message("SM" + "6" * 32, created_at=since - timedelta(seconds=30)))
    )
    assert gateway.find_sent(to=TO, body="Your visit is tomorrow.", since=since) == "SM" + "6" * 32


def test_find_sent_follows_the_next_page(gateway, twilio):
    since = datetime.now(UTC) - timedelta(seconds=5)
    page2 = f"/2010-04-01/Accounts/{SID}/Messages.json?To=x&Page=1&PageToken=PA1"
    twilio.get(MESSAGES, params={"Page": "1"}).mock(return_value=listed(message("SM" + "7" * 32)))
    twilio.get(MESSAGES).mock(
        return_value=listed(message("SM" + "8" * 32, body="no"), next_page_uri=page2)
    )
    assert gateway.find_sent(to=TO, body="Your visit is tomorrow.", since=since) == "SM" + "7" * 32


# --- webhooks ----------------------------------------------------------------------------------
def test_parse_inbound_reads_twilios_form():
    sms = parse_inbound({"MessageSid": "SM9", "From": TO, "To": SENDER, "Body": "STOP"})
    assert (sms.provider_message_id, sms.from_number, sms.to_number, sms.body) == (
        "SM9",
        TO,
        SENDER,
        "STOP",
    )


def test_parse_status_callback_classifies_the_error_code():
    update = parse_status_callback(
        {"MessageSid": "SM9", "MessageStatus": "undelivered", "ErrorCode": "30006"}
    )
    assert (update.status, update.error_code, update.reason) == (
        "undelivered",
        30006,
        Reason.INVALID_NUMBER,
    )
    delivered = parse_status_callback({"MessageSid": "SM9", "MessageStatus": "delivered"})
    assert (delivered.error_code, delivered.reason) == (None, None)


# --- over real loopback HTTP, against the fake provider -------------------------------------------
@pytest.fixture
def loopback(fake_provider):
    return TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": SENDER})


def test_loopback_send_check_fetch_and_find(fake_provider, loopback):
    since = datetime.now(UTC)
    assert "active" in loopback.check_credentials()
    result = loopback.send(to=TO, body="Loopback hello", status_callback="https://p.test/cb")
    assert result.provider_message_id.startswith("SM")
    assert loopback.fetch_status(provider_message_id=result.provider_message_id) == "delivered"
    assert loopback.find_sent(to=TO, body="Loopback hello", since=since) == (
        result.provider_message_id
    )
    assert loopback.find_sent(to=TO, body="Something else", since=since) is None
    assert fake_provider.messages[0]["status_callback"] == "https://p.test/cb"


@pytest.mark.parametrize(
    "to, reason",
    [
        ("+15005550001", Reason.INVALID_NUMBER),
        ("+15005550009", Reason.INVALID_NUMBER),
        ("+15005550004", Reason.OPTED_OUT),
    ],
)
def test_loopback_magic_numbers_fail_permanently(fake_provider, loopback, to, reason):
    with pytest.raises(GatewayError) as caught:
        loopback.send(to=to, body="Hi")
    assert caught.value.reason is reason
    assert to not in caught.value.message


def test_loopback_wrong_token_is_bad_credentials():
    with (
        FakeProvider(auth_token="e" * 32) as fake,
        override_settings(TWILIO_API_BASE=fake.twilio_api_base),
    ):
        gateway = TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": SENDER})
        with pytest.raises(GatewayError) as caught:
            gateway.check_credentials()
    assert caught.value.reason is Reason.BAD_CREDENTIALS


def test_loopback_rate_limit_is_rate_limited_with_retry_after():
    with (
        FakeProvider(rate=1, burst=1, retry_after=2) as fake,
        override_settings(TWILIO_API_BASE=fake.twilio_api_base),
    ):
        gateway = TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": SENDER})
        gateway.send(to=TO, body="first")
        with pytest.raises(GatewayError) as caught:
            gateway.send(to=TO, body="second")
    assert (caught.value.reason, caught.value.code, caught.value.retry_after) == (
        Reason.RATE_LIMITED,
        20429,
        2.0,
    )


def test_loopback_read_timeout_is_ambiguous_and_reconciles_to_the_accepted_message():
    fake = FakeProvider(failure_rate=1.0, failure_kinds=("timeout",), hang_s=1.0)
    with fake, override_settings(TWILIO_API_BASE=fake.twilio_api_base):
        gateway = TwilioGateway(
            {"account_sid": SID, "auth_token": TOKEN, "sender": SENDER},
            timeout=httpx.Timeout(2.0, read=0.2),
        )
        since = datetime.now(UTC)
        with pytest.raises(GatewayError) as caught:
            gateway.send(to=TO, body="Maybe sent")
        assert caught.value.reason is Reason.AMBIGUOUS
        assert gateway.find_sent(to=TO, body="Maybe sent", since=since) == (fake.messages[0]["sid"])


def test_loopback_dropped_connection_is_ambiguous_and_reconciles_to_nothing():
    fake = FakeProvider(failure_rate=1.0, failure_kinds=("drop",))
    with fake, override_settings(TWILIO_API_BASE=fake.twilio_api_base):
        gateway = TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": SENDER})
        since = datetime.now(UTC)
        with pytest.raises(GatewayError) as caught:
            gateway.send(to=TO, body="Dropped")
        assert caught.value.reason is Reason.AMBIGUOUS
        assert gateway.find_sent(to=TO, body="Dropped", since=since) is None


def test_loopback_closed_port_is_unreachable():
    fake = FakeProvider().start()
    base = fake.twilio_api_base
    fake.stop()  # nothing listens there any more
    with override_settings(TWILIO_API_BASE=base):
        gateway = TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": SENDER})
        with pytest.raises(GatewayError) as caught:
            gateway.send(to=TO, body="Hi")
    assert caught.value.reason is Reason.UNREACHABLE
    assert caught.value.reason.safe_to_retry
