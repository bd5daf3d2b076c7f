"""Provider requests go only to the configured API host, with our credentials or not at all.

The first test reproduces the security review's finding (it failed before the pin): Twilio's
find_sent followed an absolute next_page_uri, sending the next request, with Basic auth, to
any host the answer named."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx
from django.test import override_settings

from messaging.gateways import GatewayError
from messaging.gateways.mosio import MosioGateway
from messaging.gateways.twilio import TwilioGateway

BASE = "https://api.twilio.test/2010-04-01/"
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "f" * 32
TO = "+12025550123"
MESSAGES = f"{BASE}Accounts/{SID}/Messages.json"


@pytest.fixture
def twilio():
    with override_settings(TWILIO_API_BASE=BASE), respx.mock(assert_all_called=False) as mock:
        yield mock


def gateway():
    return TwilioGateway({"account_sid": SID, "auth_token": TOKEN, "sender": "+12025550100"})


@pytest.mark.parametrize(
    "next_page",
    [
        "https://evil.test/2010-04-01/Accounts/x/Messages.json?Page=1",
        "//evil.test/2010-04-01/Accounts/x/Messages.json?Page=1",
        "http://api.twilio.test/2010-04-01/Accounts/x/Messages.json?Page=1",
        "https://api.twilio.test:8443/2010-04-01/Accounts/x/Messages.json?Page=1",
    ],
)
def test_find_sent_never_follows_a_next_page_off_the_api_host(twilio, next_page):
    evil = twilio.route(host="evil.test").mock(return_value=httpx.Response(200, json={}))
    other = twilio.route(port=8443).mock(return_value=httpx.Response(200, json={}))
    plain = twilio.route(scheme="http").mock(return_value=httpx.Response(200, json={}))
    twilio.get(MESSAGES).mock(
        return_value=httpx.Response(200, json={"messages": [], "next_page_uri": next_page})
    )
    since = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(GatewayError, match="only to the configured API host"):
        gateway().find_sent(to=TO, body="Hello", since=since)
    assert not (evil.called or other.called or plain.called)


def test_a_relative_next_page_on_the_api_host_is_still_followed(twilio):
    page2 = f"/2010-04-01/Accounts/{SID}/Messages.json?Page=1&PageToken=PA1"
    twilio.get(MESSAGES, params={"Page": "1"}).mock(
        return_value=httpx.Response(200, json={"messages": [], "next_page_uri": None})
    )
    first = twilio.get(MESSAGES).mock(
        return_value=httpx.Response(200, json={"messages": [], "next_page_uri": page2})
    )
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert gateway().find_sent(to=TO, body="Hello", since=since) is None
    assert first.call_count == 1


def test_every_mosio_request_stays_on_the_configured_host():
    with override_settings(MOSIO_API_BASE="https://api.mosio.test/api/"):
        mosio = MosioGateway({"api_key": "k" * 20})
        with respx.mock(assert_all_called=False) as mock:
            evil = mock.route(host="evil.test").mock(return_value=httpx.Response(200))
            with pytest.raises(GatewayError, match="only to the configured API host"):
                mosio._request("GET", "https://evil.test/api/text_history")
            assert not evil.called
