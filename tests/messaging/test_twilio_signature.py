"""Vectors from twilio-python's tests/unit/test_request_validator.py (docs/twilio.md,
"Webhook signatures")."""

import base64
import hashlib
import hmac

import pytest
from django.http import QueryDict

from messaging.gateways.twilio import compute_signature, validate_twilio_signature

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
BODY = '{"property": "value", "boolean": true}'
BODY_HASH = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620"
DUPLICATE_EXPECTED = "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_the_signed_string_is_the_url_then_sorted_names_and_values():
    signed = (
        "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309"
        "Digits1234From+14158675309To+18005551212"
    )
    digest = hmac.new(TOKEN.encode(), signed.encode(), hashlib.sha1).digest()
    assert base64.b64encode(digest).decode() == EXPECTED
    assert compute_signature(URL, PARAMS, TOKEN) == EXPECTED


def test_it_accepts_the_published_vector():
    assert validate_twilio_signature(URL, PARAMS, EXPECTED, TOKEN)


def test_repeated_parameters_are_sorted_and_deduplicated_in_a_query_dict():
    params = QueryDict("Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234")
    assert compute_signature(URL, params, TOKEN) == DUPLICATE_EXPECTED
    assert validate_twilio_signature(URL, params, DUPLICATE_EXPECTED, TOKEN)


def test_repeated_parameters_as_lists_in_a_plain_dict():
    params = {"Sid": "CA123", "SidAccount": "AC123", "Digits": ["5678", "1234", "1234"]}
    assert compute_signature(URL, params, TOKEN) == DUPLICATE_EXPECTED


def test_a_port_twilio_did_not_sign_is_removed_on_https():
    assert validate_twilio_signature(URL.replace(".com", ".com:1234"), PARAMS, EXPECTED, TOKEN)


def test_a_non_default_port_on_http_is_kept_when_it_was_signed():
    url = URL.replace(".com", ".com:1234").replace("https", "http")
    assert validate_twilio_signature(url, PARAMS, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=", TOKEN)


def test_the_default_port_is_added_on_https():
    assert validate_twilio_signature(URL, PARAMS, "kvajT1Ptam85bY51eRf/AJRuM3w=", TOKEN)


def test_the_default_port_is_added_on_http():
    url = URL.replace("https", "http")
    assert validate_twilio_signature(url, PARAMS, "0ZXoZLH/DfblKGATFgpif+LLRf4=", TOKEN)


def test_a_json_body_is_checked_by_its_hash_and_the_url_signature():
    url = f"{URL}&bodySHA256={BODY_HASH}"
    assert hashlib.sha256(BODY.encode()).hexdigest() == BODY_HASH
    assert validate_twilio_signature(url, BODY, "a9nBmqA0ju/hNViExpshrM61xv4=", TOKEN)
    assert validate_twilio_signature(url, BODY.encode(), "a9nBmqA0ju/hNViExpshrM61xv4=", TOKEN)


def test_a_json_body_that_does_not_match_its_hash_is_refused():
    url = f"{URL}&bodySHA256={BODY_HASH}"
    assert not validate_twilio_signature(url, BODY + " ", "a9nBmqA0ju/hNViExpshrM61xv4=", TOKEN)
    assert not validate_twilio_signature(URL, BODY, "a9nBmqA0ju/hNViExpshrM61xv4=", TOKEN)


@pytest.mark.parametrize(
    "change",
    [
        lambda u, p, s, t: (u, {**p, "Digits": "9999"}, s, t),
        lambda u, p, s, t: (u, {**p, "Extra": "1"}, s, t),
        lambda u, p, s, t: (u.replace("foo=1", "foo=2"), p, s, t),
        lambda u, p, s, t: (u.replace("https", "http"), p, s, t),
        lambda u, p, s, t: (u, p, s, "54321"),
        lambda u, p, s, t: (u, p, s[:-2] + "A=", t),
        lambda u, p, s, t: (u, p, "", t),
        lambda u, p, s, t: (u, p, None, t),
        lambda u, p, s, t: (u, p, s, ""),
    ],
)
def test_any_change_invalidates_the_signature(change):
    assert not validate_twilio_signature(*change(URL, PARAMS, EXPECTED, TOKEN))


def test_credentials_in_the_url_survive_port_removal():
    url = "https://user:pw@mycompany.com:8443/hook"
    signature = compute_signature("https://user:pw@mycompany.com/hook", {}, TOKEN)
    assert validate_twilio_signature(url, {}, signature, TOKEN)


def test_the_comparison_is_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(
        "messaging.gateways.twilio.hmac.compare_digest",
        lambda a, b: calls.append((a, b)) or real(a, b),
    )
    assert validate_twilio_signature(URL, PARAMS, EXPECTED, TOKEN)
    assert len(calls) == 2  # with and without the port, each compared in full
