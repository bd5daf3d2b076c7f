"""The REDCap client against respx, with the response shapes in docs/redcap.md."""

import json
import logging
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from projects.redcap import (
    RedcapAuthError,
    RedcapClient,
    RedcapConfigError,
    RedcapConnectionError,
    RedcapError,
    RedcapNotLongitudinal,
    RedcapRequestError,
    RedcapServerError,
    RedcapTimeout,
    mask_token,
    validate_api_url,
    validate_token,
)

URL = "https://redcap.example.edu/api/"
TOKEN = "0123456789ABCDEF0123456789ABCDEF"
METADATA_ROW = {
    "field_name": "record_id",
    "form_name": "contact",
    "section_header": "",
    "field_type": "text",
    "field_label": "Record ID",
    "select_choices_or_calculations": "",
    "field_note": "",
    "text_validation_type_or_show_slider_number": "",
    "text_validation_min": "",
    "text_validation_max": "",
    "identifier": "",
    "branching_logic": "",
    "required_field": "",
    "custom_alignment": "",
    "question_number": "",
    "matrix_group_name": "",
    "matrix_ranking": "",
    "field_annotation": "",
}
PHONE_ROW = {
    **METADATA_ROW,
    "field_name": "phone",
    "field_label": "Mobile",
    "text_validation_type_or_show_slider_number": "phone",
    "identifier": "y",
}


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}


@pytest.fixture
def redcap():
    with respx.mock(assert_all_called=False) as mock:
        yield mock.post(URL)


@pytest.fixture
def client():
    return RedcapClient(URL, TOKEN, timeout=5)


# --- Construction -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://redcap.example.edu/api/", "must use https"),
        ("https://redcap.example.edu/", "must end in /api/"),
        ("https://redcap.example.edu/api", "must end in /api/"),
        ("https://redcap.example.edu/api/?x=1", "must not contain"),
        ("https://user:pw@redcap.example.edu/api/", "must not contain"),
        ("ftp://redcap.example.edu/api/", "must be a web address"),
        ("redcap.example.edu/api/", "must be a web address"),
        ("", "must be a web address"),
    ],
)
def test_it_refuses_an_api_url_that_cannot_be_right(url, problem):
    with pytest.raises(RedcapConfigError, match=problem):
        RedcapClient(url, TOKEN)


def test_it_accepts_https_urls_and_http_only_to_the_sandbox_on_this_machine(settings):
    assert RedcapClient(URL, TOKEN).api_url == URL
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = True  # the development sandbox (test settings)
    assert validate_api_url("http://127.0.0.1:8000/sandbox/redcap/api/")
    assert validate_api_url("http://localhost:9/api/")
    with pytest.raises(RedcapConfigError):
        validate_api_url("http://redcap.test/api/")
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(RedcapConfigError, match="must use https"):
        validate_api_url("http://127.0.0.1:8000/sandbox/redcap/api/")


def test_debug_alone_no_longer_allows_http(settings):
    settings.DEBUG = True
    with pytest.raises(RedcapConfigError, match="must use https"):
        RedcapClient("http://redcap.test/api/", TOKEN)


@pytest.mark.parametrize(
    "token",
    [TOKEN[:-1], TOKEN + "0", "G" * 32, f" {TOKEN[1:]}", "", None],
)
def test_it_refuses_a_token_that_is_not_32_hex_characters_without_repeating_it(token):
    with pytest.raises(RedcapConfigError) as caught:
        RedcapClient(URL, token)
    assert "32 characters" in caught.value.message
    if token:
        assert token.strip() not in str(caught.value)


def test_lowercase_tokens_are_accepted():
    assert validate_token(TOKEN.lower()) == TOKEN.lower()


def test_it_never_shows_more_than_the_last_four_characters_of_the_token(client):
    assert TOKEN not in repr(client)
    assert "…CDEF" in repr(client)
    assert mask_token(TOKEN) == "…CDEF"


def test_a_batch_size_below_one_is_refused():
    with pytest.raises(RedcapConfigError):
        RedcapClient(URL, TOKEN, batch_size=0)


# --- Methods ------------------------------------------------------------------------------
def test_every_call_is_a_form_post_with_token_content_and_json_formats(redcap, client):
    redcap.mock(return_value=httpx.Response(200, text="14.5.11\n"))
    assert client.version() == "14.5.11"
    sent = redcap.calls.last.request
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(sent) == {
        "token": TOKEN,
        "content": "version",
        "format": "json",
        "returnFormat": "json",
    }


def test_project_info_returns_the_project(redcap, client):
    info = {"project_id": 101, "project_title": "Demo", "is_longitudinal": 0, "in_production": 1}
    redcap.mock(return_value=httpx.Response(200, json=info))
    assert client.project_info() == info
    assert form(redcap.calls.last.request)["content"] == "project"


def test_metadata_sends_fields_and_forms_as_indexed_arrays(redcap, client):
    redcap.mock(return_value=httpx.Response(200, json=[METADATA_ROW, PHONE_ROW]))
    assert client.metadata(fields=["record_id", "phone"], forms=["contact"]) == [
        METADATA_ROW,
        PHONE_ROW,
    ]
    sent = form(redcap.calls.last.request)
    assert sent["content"] == "metadata"
    assert (sent["fields[0]"], sent["fields[1]"], sent["forms[0]"]) == (
        "record_id",
        "phone",
        "contact",
    )


def test_field_names_instruments_and_the_record_id_field(redcap, client):
    names = [
        {"original_field_name": "optout", "choice_value": "1", "export_field_name": "optout___1"}
    ]
    redcap.mock(return_value=httpx.Response(200, json=names))
    assert client.field_names(field="optout") == names
    assert form(redcap.calls.last.request) | {"token": ""} == {
        "token": "",
        "content": "exportFieldNames",
        "format": "json",
        "returnFormat": "json",
        "field": "optout",
    }
    instruments = [{"instrument_name": "form_1", "instrument_label": "Form 1"}]
    redcap.mock(return_value=httpx.Response(200, json=instruments))
    assert client.instruments() == instruments
    redcap.mock(return_value=httpx.Response(200, json=[METADATA_ROW, PHONE_ROW]))
    assert client.record_id_field() == "record_id"
    assert client.record_id_field() == "record_id"
    assert redcap.call_count == 3  # cached


def test_events_of_a_longitudinal_project(redcap, client):
    events = [
        {
            "event_name": "Event 1",
            "arm_num": 1,
            "unique_event_name": "event_1_arm_1",
            "custom_event_label": "",
            "event_id": 1,
        }
    ]
    redcap.mock(return_value=httpx.Response(200, json=events))
    assert client.events() == events
    mapping = [{"arm_num": 1, "unique_event_name": "event_1_arm_1", "form": "form_1"}]
    redcap.mock(return_value=httpx.Response(200, json=mapping))
    assert client.form_event_mapping() == mapping


def test_events_of_a_classic_project_raise_not_longitudinal(redcap, client):
    redcap.mock(
        return_value=httpx.Response(
            400, json={"error": "You cannot export events for classic projects"}
        )
    )
    with pytest.raises(RedcapNotLongitudinal) as caught:
        client.events()
    assert isinstance(caught.value, RedcapRequestError)
    assert caught.value.redcap_message == "You cannot export events for classic projects"
    assert "not longitudinal" in caught.value.message


def test_survey_link_and_queue_link_are_plain_text(redcap, client):
    link = "https://redcap.example.edu/surveys/?s=6B2zFAEWPVSrXnnx"
    redcap.mock(return_value=httpx.Response(200, text=link, headers={"content-type": "text/html"}))
    assert client.survey_link(instrument="weekly", record="12", event="week_1_arm_1") == link
    sent = form(redcap.calls.last.request)
    assert (sent["content"], sent["instrument"], sent["record"]) == ("surveyLink", "weekly", "12")
    assert (sent["event"], sent["repeat_instance"]) == ("week_1_arm_1", "1")
    assert client.survey_queue_link(record="12") == link
    assert form(redcap.calls.last.request)["content"] == "surveyQueueLink"
    client.survey_link(instrument="weekly", record="12")
    assert "event" not in form(redcap.calls.last.request)


def test_participant_list(redcap, client):
    rows = [
        {
            "email": "",
            "email_occurrence": 1,
            "identifier": "",
            "record": "12",
            "invitation_sent_status": 0,
            "invitation_send_time": "",
            "response_status": 2,
            "survey_access_code": "EJNX9",
            "survey_link": "https://redcap.example.edu/surveys/?s=x",
        }
    ]
    redcap.mock(return_value=httpx.Response(200, json=rows))
    assert client.participant_list(instrument="weekly", event="week_1_arm_1") == rows
    sent = form(redcap.calls.last.request)
    assert (sent["content"], sent["instrument"], sent["event"]) == (
        "participantList",
        "weekly",
        "week_1_arm_1",
    )


def test_import_records_sends_json_and_returns_the_count(redcap, client):
    redcap.mock(return_value=httpx.Response(200, json={"count": 2}))
    rows = [{"record_id": "1", "optout___1": "1"}, {"record_id": "2", "optout___1": "1"}]
    assert client.import_records(rows) == 2
    sent = form(redcap.calls.last.request)
    assert json.loads(sent["data"]) == rows
    assert (sent["content"], sent["type"], sent["overwriteBehavior"], sent["returnContent"]) == (
        "record",
        "flat",
        "normal",
        "count",
    )
    client.import_records(rows, overwrite=True)
    assert form(redcap.calls.last.request)["overwriteBehavior"] == "overwrite"


def test_importing_nothing_calls_nobody(redcap, client):
    assert client.import_records([]) == 0
    assert redcap.call_count == 0


def test_an_import_answer_without_a_count_is_a_server_error(redcap, client):
    redcap.mock(return_value=httpx.Response(200, json={"ids": ["1"]}))
    with pytest.raises(RedcapServerError):
        client.import_records([{"record_id": "1"}])


# --- Records in batches -------------------------------------------------------------------
class FakeRecords:
    """Answers metadata and record exports for 7 records, like REDCap."""

    def __init__(self) -> None:
        self.exports: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        sent = form(request)
        if sent["content"] == "metadata":
            return httpx.Response(200, json=[METADATA_ROW, PHONE_ROW])
        self.exports.append(sent)
        asked = [v for k, v in sorted(sent.items()) if k.startswith("records[")]
        ids = asked or [str(n) for n in range(1, 8)]
        fields = [v for k, v in sent.items() if k.startswith("fields[")]
        rows = [{"record_id": i, "phone": f"615555010{i}"} for i in ids]
        if fields == ["record_id"]:
            rows = [{"record_id": r["record_id"]} for r in rows]
        return httpx.Response(200, json=rows)


def test_records_are_exported_in_batches_of_record_ids(redcap):
    fake = FakeRecords()
    redcap.mock(side_effect=fake)
    client = RedcapClient(URL, TOKEN, batch_size=3)
    rows = client.records(fields=["phone"], filter_logic="[phone] <> ''")
    assert [r["record_id"] for r in rows] == ["1", "2", "3", "4", "5", "6", "7"]
    first, *batches = fake.exports
    assert first["fields[0]"] == "record_id"
    assert [len([k for k in b if k.startswith("records[")]) for b in batches] == [3, 3, 1]
    assert all(b["filterLogic"] == "[phone] <> ''" for b in fake.exports)
    assert all(b["fields[0]"] == "phone" and b["type"] == "flat" for b in batches)
    assert all(b["rawOrLabel"] == "raw" for b in fake.exports)


def test_progress_comes_from_exporting_the_ids_first_then_iterating_batches(redcap, client):
    fake = FakeRecords()
    redcap.mock(side_effect=fake)
    ids = client.record_ids()
    assert ids == ["1", "2", "3", "4", "5", "6", "7"]
    batches = list(client.iter_record_batches(records=ids, batch_size=4))
    assert [len(b) for b in batches] == [4, 3]
    assert len(fake.exports) == 3  # the ids once, then two batches


def test_record_ids_are_listed_once_even_with_several_events(redcap, client):
    rows = [
        {"record_id": "1", "redcap_event_name": "baseline_arm_1"},
        {"record_id": "1", "redcap_event_name": "week_1_arm_1"},
        {"record_id": "2", "redcap_event_name": "baseline_arm_1"},
    ]
    client._record_id_field = "record_id"
    redcap.mock(return_value=httpx.Response(200, json=rows))
    assert client.record_ids(events=["baseline_arm_1", "week_1_arm_1"]) == ["1", "2"]
    sent = form(redcap.calls.last.request)
    assert (sent["events[0]"], sent["events[1]"]) == ("baseline_arm_1", "week_1_arm_1")


def test_asking_for_no_records_exports_nothing(redcap, client):
    assert client.records(records=[]) == []
    assert redcap.call_count == 0


def test_an_injected_httpx_client_is_used_and_left_open(redcap):
    redcap.mock(side_effect=FakeRecords())
    with httpx.Client() as shared:
        client = RedcapClient(URL, TOKEN, client=shared, batch_size=5)
        assert len(client.records()) == 7
        assert not shared.is_closed


# --- Errors -------------------------------------------------------------------------------
def test_a_refused_token_is_an_auth_error_a_coordinator_can_act_on(redcap, client):
    redcap.mock(
        return_value=httpx.Response(
            403, json={"error": "You do not have permissions to use the API"}
        )
    )
    with pytest.raises(RedcapAuthError) as caught:
        client.project_info()
    assert caught.value.status_code == 403
    assert caught.value.message == (
        "REDCap refused the API token: it is wrong, or its user lacks API export rights. "
        "(REDCap said: You do not have permissions to use the API)"
    )
    with pytest.raises(RedcapAuthError, match="API import rights"):
        client.import_records([{"record_id": "1"}])
    with pytest.raises(RedcapAuthError, match="Survey Distribution Tools"):
        client.participant_list(instrument="weekly")


def test_a_missing_token_answer_401_is_an_auth_error(redcap, client):
    redcap.mock(return_value=httpx.Response(401, json={"error": "No token"}))
    with pytest.raises(RedcapAuthError):
        client.version()


def test_a_bad_request_carries_redcaps_own_message(redcap, client):
    message = "The following values in the parameter 'fields' are not valid: 'record_id'"
    redcap.mock(return_value=httpx.Response(400, json={"error": message}))
    with pytest.raises(RedcapRequestError) as caught:
        client.metadata(fields=["record_id"])
    assert caught.value.redcap_message == message
    assert caught.value.message == f"REDCap refused the request: {message}"
    assert caught.value.status_code == 400
    assert not isinstance(caught.value, RedcapNotLongitudinal)


def test_a_bad_request_without_json_still_says_what_happened(redcap, client):
    redcap.mock(return_value=httpx.Response(406, text="<html>nope</html>"))
    with pytest.raises(RedcapRequestError, match=r"REDCap refused the request \(HTTP 406\)"):
        client.import_records([{"record_id": "1"}])


def test_a_wrong_url_is_a_request_error_naming_the_url(redcap, client):
    redcap.mock(return_value=httpx.Response(404, text="Not Found"))
    with pytest.raises(RedcapRequestError, match="Nothing answers at https://redcap.example.edu"):
        client.version()


def test_redirects_are_not_followed(redcap, client):
    redcap.mock(
        return_value=httpx.Response(302, headers={"location": "https://login.example.edu/"})
    )
    with pytest.raises(RedcapRequestError, match="redirected the request to https://login"):
        client.project_info()
    assert redcap.call_count == 1


def test_a_server_error_is_a_server_error(redcap, client):
    redcap.mock(return_value=httpx.Response(500, text="Internal Server Error"))
    with pytest.raises(RedcapServerError) as caught:
        client.records(records=["1"])
    assert caught.value.status_code == 500
    assert "internal error (HTTP 500)" in caught.value.message


def test_a_200_html_error_page_is_a_server_error_with_redcaps_words(redcap, client):
    body = (
        "<html><body><b>Fatal error</b>: Allowed memory size exhausted</body></html>"
        '{"error":"REDCap ran out of server memory. The request cannot be processed."}'
    )
    redcap.mock(return_value=httpx.Response(200, text=body))
    with pytest.raises(RedcapServerError) as caught:
        client.records(records=["1", "2"])
    assert "something other than JSON" in caught.value.message
    assert "REDCap ran out of server memory" in caught.value.message
    assert "very large export" in caught.value.message


@pytest.mark.parametrize(
    ("call", "body"),
    [
        (lambda c: c.version(), "<html>Login</html>"),
        (lambda c: c.survey_link(instrument="x", record="1"), "<html>Login</html>"),
        (lambda c: c.metadata(), '{"project_id": 1}'),  # a dict where a list was asked for
        (lambda c: c.project_info(), "[]"),
    ],
)
def test_answers_of_the_wrong_shape_are_server_errors(redcap, client, call, body):
    redcap.mock(return_value=httpx.Response(200, text=body))
    with pytest.raises(RedcapServerError):
        call(client)


def test_a_200_carrying_an_error_object_is_a_request_error(redcap, client):
    redcap.mock(return_value=httpx.Response(200, json={"error": "Something is off"}))
    with pytest.raises(RedcapRequestError, match="Something is off"):
        client.instruments()


def test_a_slow_answer_is_a_timeout(redcap, client):
    redcap.mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(RedcapTimeout, match="did not answer within 5 seconds"):
        client.project_info()
    with pytest.raises(RedcapTimeout, match="may or may not have been applied"):
        client.import_records([{"record_id": "1"}])


def test_an_unreachable_server_is_a_timeout_or_a_connection_error(redcap, client):
    redcap.mock(side_effect=httpx.ConnectTimeout("timed out"))
    with pytest.raises(RedcapTimeout, match="Could not reach REDCap at redcap.example.edu"):
        client.version()
    redcap.mock(side_effect=httpx.ConnectError("[Errno -2] Name or service not known"))
    with pytest.raises(RedcapConnectionError, match="the server could not be reached"):
        client.version()
    redcap.mock(side_effect=httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED]"))
    with pytest.raises(RedcapConnectionError, match="certificate could not be verified"):
        client.version()
    redcap.mock(side_effect=httpx.RemoteProtocolError("Server disconnected"))
    with pytest.raises(RedcapConnectionError, match="broke before it answered"):
        client.version()


def test_every_error_is_a_redcap_error():
    for kind in (
        RedcapConfigError,
        RedcapAuthError,
        RedcapRequestError,
        RedcapNotLongitudinal,
        RedcapServerError,
        RedcapTimeout,
        RedcapConnectionError,
    ):
        assert issubclass(kind, RedcapError)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(403, json={"error": f"Token {TOKEN} is not valid"}),
        httpx.Response(400, json={"error": f"bad {TOKEN.lower()}"}),
        httpx.Response(500, json={"error": f"{TOKEN}"}),
        httpx.Response(200, text=f'<html>{{"error":"{TOKEN}"}}'),
        httpx.ReadTimeout("timed out"),
        httpx.ConnectError("refused"),
    ],
)
def test_the_token_never_reaches_an_error_message_or_the_log(redcap, client, caplog, response):
    if isinstance(response, Exception):
        redcap.mock(side_effect=response)
    else:
        redcap.mock(return_value=response)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RedcapError) as caught:
        client.records(records=["1"])
    assert TOKEN.lower() not in str(caught.value).lower()
    assert TOKEN.lower() not in repr(caught.value).lower()
    assert TOKEN.lower() not in caplog.text.lower()
