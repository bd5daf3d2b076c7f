"""The REDCap sandbox: its data, its answers (errors included), and the client against it over
real HTTP."""

import importlib
import re
import zoneinfo
from datetime import date

import httpx
import phonenumbers
import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from django.urls import clear_url_caches, reverse

from projects import checks
from projects.logic import REDCAP_LOGIC_ERROR
from projects.redcap import (
    RedcapAuthError,
    RedcapClient,
    RedcapNotLongitudinal,
    RedcapRequestError,
)
from projects.sandbox import data, store
from projects.sandbox.data import DEMO_TOKEN, LONGITUDINAL_TOKEN, METADATA_KEYS, SANDBOX_PROJECTS

# No STATIC_ROOT in tests: WhiteNoise's warning would fail every request. (The portal-tests
# branch turns on WhiteNoise autorefresh in settings_test for the same reason; this line is then
# redundant.)
pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")

API = "/sandbox/redcap/api/"
DEMO = SANDBOX_PROJECTS[101]
LONG = SANDBOX_PROJECTS[102]


@pytest.fixture
def api(client):
    def post(token=DEMO_TOKEN, **params):
        body = {"token": token, "format": "json", "returnFormat": "json", **params}
        return client.post(API, body)

    return post


@pytest.fixture
def demo(live_server):
    return RedcapClient(live_server.url + API, DEMO_TOKEN, batch_size=7)


@pytest.fixture
def longitudinal(live_server):
    return RedcapClient(live_server.url + API, LONGITUDINAL_TOKEN)


# --- The demo data ------------------------------------------------------------------------
def test_the_tokens_are_fixed_32_hex_development_tokens():
    assert DEMO.token == DEMO_TOKEN
    assert LONG.token == LONGITUDINAL_TOKEN
    for project in SANDBOX_PROJECTS.values():
        assert re.fullmatch(r"[0-9A-F]{32}", project.token)
    assert store.project_for_token(DEMO_TOKEN.lower()) is DEMO
    assert store.project_for_token("0" * 32) is None


def test_the_demo_project_has_25_records_with_the_problems_a_sync_must_report():
    rows = [values for _, _, values in store.rows(DEMO)]
    assert len(rows) == 25
    phones = [r["phone"] for r in rows]
    assert sum(1 for p in phones if not p) >= 2
    invalid = [
        p for p in phones if p and not phonenumbers.is_valid_number(phonenumbers.parse(p, "US"))
    ]
    assert invalid == ["555-0108"]
    assert all("55501" in re.sub(r"\D", "", p) for p in phones if p)  # fictional range
    consents = {r["sms_consent"] for r in rows}
    assert consents == {"1", "0", ""}
    zones = [r["tz"] for r in rows]
    assert "" in zones and "Mars/Olympus" in zones
    valid_zones = {z for z in zones if z and z != "Mars/Olympus"}
    assert len(valid_zones) >= 5
    for zone in valid_zones:
        zoneinfo.ZoneInfo(zone)
    assert any(r["optout___1"] == "1" for r in rows)
    assert any(r["withdrawn"] == "1" for r in rows)
    dates = [date.fromisoformat(r["enrollment_date"]) for r in rows if r["enrollment_date"]]
    assert min(dates) < date.today() < max(dates)
    assert any(not r["enrollment_date"] for r in rows)


def test_enrollment_dates_follow_the_day_of_the_reset():
    store.reset(today=date(2030, 1, 10))
    first = store.rows(DEMO)[0][2]
    assert first["enrollment_date"] == "2029-12-11"  # Avery enrolled 30 days before


def test_the_data_dictionary_has_redcaps_18_keys_in_order(api):
    rows = api(content="metadata").json()
    assert all(tuple(row) == METADATA_KEYS for row in rows)
    assert len(METADATA_KEYS) == 18
    by_name = {r["field_name"]: r for r in rows}
    assert rows[0]["field_name"] == "record_id"
    assert by_name["phone"]["text_validation_type_or_show_slider_number"] == "phone"
    assert by_name["sms_consent"]["select_choices_or_calculations"] == "1, Yes | 0, No"
    assert by_name["enrollment_date"]["text_validation_type_or_show_slider_number"] == "date_ymd"
    assert by_name["optout"]["field_type"] == "checkbox"
    assert {r["form_name"] for r in rows} == {
        "contact",
        "baseline_survey",
        "weekly_checkin",
        "text_checkin",
        "daily_diary",
    }


# --- The API over the test client ---------------------------------------------------------
def test_a_bad_token_gets_redcaps_403(api):
    response = api(token="F" * 32, content="project")
    assert response.status_code == 403
    assert response.json() == {"error": "You do not have permissions to use the API"}


def test_a_missing_token_gets_401_and_get_requests_501(api, client):
    assert api(token="", content="project").status_code == 401
    assert client.get(API).status_code == 501  # REDCap: "The requested method is not implemented."


def test_unknown_content_and_formats_are_refused(api):
    assert api(content="nonsense").status_code == 400
    assert api(content="project", format="xml").status_code == 400


def test_metadata_can_be_narrowed_and_refuses_unknown_names(api):
    rows = api(content="metadata", **{"fields[0]": "phone", "forms[0]": "weekly_checkin"}).json()
    assert [r["field_name"] for r in rows][:2] == ["phone", "wk_goal_met"]
    assert {r["form_name"] for r in rows[1:]} == {"weekly_checkin"}
    response = api(content="metadata", **{"fields[0]": "phon"})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "The following values in the parameter 'fields' are not valid: 'phon'"
    )
    assert api(content="metadata", forms="nope").status_code == 400


def test_records_export_flat_raw_with_checkboxes_and_form_status(api):
    rows = api(content="record", type="flat").json()
    assert len(rows) == 25
    first = rows[0]
    # The demo repeats an instrument (the daily diary), so REDCap adds which instance a row is.
    assert list(first)[:5] == [
        "record_id",
        "redcap_repeat_instrument",
        "redcap_repeat_instance",
        "first_name",
        "phone",
    ]
    assert (first["redcap_repeat_instrument"], first["redcap_repeat_instance"]) == ("", "")
    assert first["optout___1"] == "0"
    assert first["contact_complete"] == "2"
    assert "bl_intro" not in first  # descriptive fields hold no data
    assert [r["record_id"] for r in rows] == [str(n) for n in range(1, 26)]


def test_records_export_can_ask_for_fields_records_and_labels(api):
    rows = api(
        content="record", fields="phone,sms_consent", records="2,10", rawOrLabel="label"
    ).json()
    assert rows == [
        {"record_id": "2", "phone": "615-555-0102", "sms_consent": "Yes"},
        {"record_id": "10", "phone": "(312) 555-0110", "sms_consent": "Yes"},
    ]
    rows = api(content="record", **{"fields[0]": "optout", "forms[0]": "weekly_checkin"}).json()
    assert set(rows[0]) == {
        "record_id",
        "optout___1",
        "wk_goal_met",
        "wk_barrier",
        "wk_barrier_other",
        "wk_servings",
        "wk_notes",
        "wk_pain",
        "weekly_checkin_complete",
    }
    response = api(content="record", **{"fields[0]": "optout___1"})
    assert response.status_code == 400


def test_filter_logic_selects_records_with_the_evaluator(api):
    logic = "[sms_consent] = '1' and [optout(1)] <> '1' and [withdrawn] <> '1' and [phone] <> ''"
    ids = [
        r["record_id"] for r in api(content="record", fields="record_id", filterLogic=logic).json()
    ]
    assert "6" not in ids  # no phone
    assert "7" not in ids  # said no
    assert "11" not in ids  # opted out
    assert "14" not in ids  # withdrawn
    assert "15" not in ids  # consent left blank
    assert "1" in ids and len(ids) == 18
    assert api(content="record", filterLogic="[first_name] = 'Nobody'").json() == []


@pytest.mark.parametrize("logic", ["[sms_consent] = ", "[nope] = '1'", "datediff([a],[b]) > 1"])
def test_bad_filter_logic_gets_redcaps_400(api, logic):
    response = api(content="record", filterLogic=logic)
    assert response.status_code == 400
    assert response.json() == {"error": REDCAP_LOGIC_ERROR}


def test_importing_validates_every_row_before_writing_any(api):
    rows = '[{"record_id": "1", "first_name": "Changed"}, {"record_id": "2", "sms_consent": "7"}]'
    response = api(content="record", data=rows)
    assert response.status_code == 400
    assert response.json()["error"] == (
        '"2","sms_consent","7","The value is not a valid category for sms_consent"'
    )
    assert store.rows(DEMO)[0][2]["first_name"] == "Avery"
    for bad in (
        '[{"record_id": "1", "nonsense": "1"}]',
        '[{"first_name": "No id"}]',
        '[{"record_id": "1", "enrollment_date": "03/01/2026"}]',
        '[{"record_id": "1", "optout___1": "2"}]',
        '[{"record_id": "1", "wk_servings": "many"}]',
        '[{"record_id": "1", "bl_sleep_hours": "lots"}]',
        '[{"record_id": "1", "contact_complete": "3"}]',
        '{"record_id": "1"}',
        "not json",
    ):
        assert api(content="record", data=bad).status_code == 400, bad
    assert api(content="record", type="eav", data="[]").status_code == 400


def test_normal_imports_skip_blanks_and_overwrite_imports_erase(api):
    api(content="record", data='[{"record_id": "1", "first_name": ""}]')
    assert store.rows(DEMO)[0][2]["first_name"] == "Avery"
    response = api(
        content="record",
        data='[{"record_id": "1", "first_name": ""}]',
        overwriteBehavior="overwrite",
    )
    assert response.json() == {"count": 1}
    assert store.rows(DEMO)[0][2]["first_name"] == ""
    response = api(content="record", data='[{"record_id": "40"}]', returnContent="ids")
    assert response.json() == ["40"]
    assert api(content="record", data="[]", overwriteBehavior="sometimes").status_code == 400


def test_field_names_expand_checkboxes(api):
    rows = api(content="exportFieldNames").json()
    assert {
        "original_field_name": "optout",
        "choice_value": "1",
        "export_field_name": "optout___1",
    } in rows
    assert not any(r["export_field_name"].endswith("_complete") for r in rows)
    assert api(content="exportFieldNames", field="phone").json() == [
        {"original_field_name": "phone", "choice_value": "", "export_field_name": "phone"}
    ]
    assert api(content="exportFieldNames", field="bl_intro").status_code == 400


def test_a_classic_project_has_no_events_arms_or_mapping(api):
    for content, what in (
        ("event", "events"),
        ("arm", "arms"),
        ("formEventMapping", "form/event mappings"),
    ):
        response = api(content=content)
        assert response.status_code == 400
        assert response.json() == {"error": f"You cannot export {what} for classic projects"}


def test_a_longitudinal_project_has_events_arms_and_a_mapping(api):
    events = api(token=LONGITUDINAL_TOKEN, content="event").json()
    assert [e["unique_event_name"] for e in events] == [
        "baseline_arm_1",
        "week_1_arm_1",
        "week_2_arm_1",
    ]
    assert api(token=LONGITUDINAL_TOKEN, content="arm").json() == [{"arm_num": 1, "name": "Arm 1"}]
    mapping = api(token=LONGITUDINAL_TOKEN, content="formEventMapping").json()
    assert {"arm_num": 1, "unique_event_name": "week_1_arm_1", "form": "weekly_checkin"} in mapping
    info = api(token=LONGITUDINAL_TOKEN, content="project").json()
    assert (info["project_id"], info["is_longitudinal"]) == (102, 1)


def test_longitudinal_filter_logic_can_name_events(api):
    logic = "[week_1_arm_1][wk_goal_met] = '1'"
    rows = api(token=LONGITUDINAL_TOKEN, content="record", fields="record_id", filterLogic=logic)
    assert {(r["record_id"], r["redcap_event_name"]) for r in rows.json()} == {
        ("1", "baseline_arm_1"),
        ("1", "week_1_arm_1"),
    }
    response = api(
        token=LONGITUDINAL_TOKEN, content="record", filterLogic="[week_9_arm_1][wk_goal_met] = 1"
    )
    assert response.status_code == 400
    response = api(token=LONGITUDINAL_TOKEN, content="record", events="week_9_arm_1")
    assert response.status_code == 400


def test_longitudinal_imports_need_a_valid_event_and_a_designated_form(api):
    def imported(rows):
        return api(token=LONGITUDINAL_TOKEN, content="record", data=rows)

    assert imported('[{"record_id": "1", "wk_goal_met": "1"}]').status_code == 400
    assert (
        imported(
            '[{"record_id": "1", "redcap_event_name": "baseline_arm_1", "wk_goal_met": "1"}]'
        ).status_code
        == 400
    )
    response = imported(
        '[{"record_id": "1", "redcap_event_name": "week_2_arm_1", "wk_goal_met": "1"}]'
    )
    assert response.json() == {"count": 1}


def test_survey_links_and_queue_links_point_at_the_sandbox_survey_pages(api):
    link = api(content="surveyLink", instrument="baseline_survey", record="3").content.decode()
    assert re.fullmatch(r"http://testserver/sandbox/redcap/surveys/\?s=[A-Za-z0-9]{10}", link)
    again = api(content="surveyLink", instrument="baseline_survey", record="3").content.decode()
    assert again == link
    other = api(content="surveyLink", instrument="weekly_checkin", record="3").content.decode()
    assert other != link
    queue = api(content="surveyQueueLink", record="3").content.decode()
    assert "?sq=" in queue


@pytest.mark.parametrize(
    ("token", "params", "message"),
    [
        (DEMO_TOKEN, {"instrument": "contact", "record": "1"}, "has not been enabled as a survey"),
        (DEMO_TOKEN, {"instrument": "nope", "record": "1"}, "Invalid instrument"),
        (DEMO_TOKEN, {"instrument": "baseline_survey", "record": "99"}, '"99" does not exist'),
        (DEMO_TOKEN, {"instrument": "baseline_survey", "record": ""}, "'record' is missing"),
        (LONGITUDINAL_TOKEN, {"instrument": "weekly_checkin", "record": "1"}, "'event' is missing"),
        (
            LONGITUDINAL_TOKEN,
            {"instrument": "weekly_checkin", "record": "1", "event": "baseline_arm_1"},
            "has not been designated",
        ),
    ],
)
def test_survey_links_refuse_what_redcap_refuses(api, token, params, message):
    response = api(token=token, content="surveyLink", **params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_repeat_instance_of_a_form_that_does_not_repeat_is_read_as_1_as_redcap_does(api):
    first = api(content="surveyLink", instrument="baseline_survey", record="1")
    second = api(content="surveyLink", instrument="baseline_survey", record="1", repeat_instance=2)
    assert second.status_code == 200 and second.content == first.content


def test_the_participant_list_reports_response_statuses(api):
    rows = api(content="participantList", instrument="weekly_checkin").json()
    assert len(rows) == 25
    status = {r["record"]: r["response_status"] for r in rows}
    assert (status["1"], status["2"], status["3"]) == (2, 1, 0)
    assert set(rows[0]) == {
        "email",
        "email_occurrence",
        "identifier",
        "record",
        "invitation_sent_status",
        "invitation_send_time",
        "response_status",
        "survey_access_code",
        "survey_link",
    }
    assert api(content="participantList", instrument="contact").status_code == 400


def test_the_survey_page_shows_the_survey_and_marks_it_complete(api, client):
    link = api(content="surveyLink", instrument="baseline_survey", record="5").content.decode()
    path = link.removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200
    assert b"Baseline survey" in page.content and b"Not started" in page.content
    response = client.post(path)
    assert response.status_code == 302
    assert b"this survey is complete" in client.get(path).content
    statuses = api(content="participantList", instrument="baseline_survey").json()
    assert statuses[4]["response_status"] == 2
    assert store.rows(DEMO)[4][2]["baseline_survey_complete"] == "2"


def test_the_survey_queue_page_lists_the_records_surveys(api, client):
    link = api(content="surveyQueueLink", record="1").content.decode()
    page = client.get(link.removeprefix("http://testserver"))
    assert page.status_code == 200
    assert b"Surveys for record 1" in page.content
    assert page.content.count(b"Complete") == 2


def test_an_unknown_survey_code_is_404(client):
    assert client.get("/sandbox/redcap/surveys/?s=nothing").status_code == 404
    assert client.get("/sandbox/redcap/surveys/").status_code == 404


# --- Switched off -------------------------------------------------------------------------
def test_the_sandbox_answers_404_when_switched_off(client, settings):
    settings.SANDBOX_ENABLED = False
    assert client.post(API, {"token": DEMO_TOKEN, "content": "version"}).status_code == 404
    assert client.get("/sandbox/redcap/surveys/?s=x").status_code == 404


def test_the_sandbox_is_not_even_routed_when_switched_off_at_start():
    import portal.urls

    try:
        with override_settings(SANDBOX_ENABLED=False):
            clear_url_caches()
            importlib.reload(portal.urls)
            assert not any("sandbox" in str(p.pattern) for p in portal.urls.urlpatterns)
    finally:
        clear_url_caches()
        importlib.reload(portal.urls)
    assert reverse("sandbox-redcap-api") == API


def test_the_deploy_check_refuses_the_sandbox_without_debug():
    with override_settings(SANDBOX_ENABLED=True, DEBUG=False):
        assert [e.id for e in checks.check_sandbox_off_in_production(None)] == ["projects.E001"]
        with pytest.raises(SystemCheckError, match="projects.E001"):
            call_command("check", deploy=True)
    with override_settings(SANDBOX_ENABLED=True, DEBUG=True):
        assert checks.check_sandbox_off_in_production(None) == []
    with override_settings(SANDBOX_ENABLED=False, DEBUG=False):
        assert checks.check_sandbox_off_in_production(None) == []


def test_the_plain_check_does_not_run_the_deploy_check():
    with override_settings(SANDBOX_ENABLED=True, DEBUG=False):
        call_command("check")


# --- The client against the sandbox over real HTTP ----------------------------------------
def test_the_client_reads_the_demo_project_over_http(demo):
    assert demo.version() == data.REDCAP_VERSION
    info = demo.project_info()
    assert (info["project_id"], info["project_title"]) == (101, "Demo: Healthy Habits Study")
    assert len(demo.metadata()) == len(data.METADATA)
    assert [r["field_name"] for r in demo.metadata(fields=["phone"])] == ["phone"]
    assert {r["form_name"] for r in demo.metadata(forms=["contact"])} == {"contact"}
    assert [i["instrument_name"] for i in demo.instruments()] == [
        "contact",
        "baseline_survey",
        "weekly_checkin",
        "text_checkin",
        "daily_diary",
    ]
    assert {"optout___1"} <= {r["export_field_name"] for r in demo.field_names()}
    assert demo.record_id_field() == "record_id"
    with pytest.raises(RedcapNotLongitudinal):
        demo.events()
    with pytest.raises(RedcapNotLongitudinal):
        demo.form_event_mapping()


def test_the_client_exports_records_in_batches_over_http(demo):
    ids = demo.record_ids()
    assert len(ids) == 25
    batches = list(demo.iter_record_batches(records=ids, fields=["phone", "sms_consent"]))
    assert [len(b) for b in batches] == [7, 7, 7, 4]
    rows = demo.records(fields=["phone"], filter_logic="[sms_consent] = '1' and [phone] <> ''")
    assert all(set(r) == {"record_id", "phone"} for r in rows)
    assert len(rows) == 20
    assert demo.records(records=["3"], fields=["tz"]) == [
        {"record_id": "3", "tz": "America/Los_Angeles"}
    ]


def test_the_client_gets_survey_links_and_participant_lists_over_http(demo, live_server):
    link = demo.survey_link(instrument="weekly_checkin", record="2")
    assert link.startswith(live_server.url + "/sandbox/redcap/surveys/?s=")
    page = httpx.get(link)
    assert page.status_code == 200 and "Weekly check-in" in page.text
    assert demo.survey_queue_link(record="2").startswith(live_server.url)
    rows = demo.participant_list(instrument="weekly_checkin")
    assert rows[1]["record"] == "2" and rows[1]["response_status"] == 1
    assert rows[1]["survey_link"] == link


def test_the_client_imports_and_sees_its_import_over_http(demo):
    assert demo.import_records([{"record_id": "2", "optout___1": "1"}]) == 1
    assert demo.records(records=["2"], fields=["optout"]) == [{"record_id": "2", "optout___1": "1"}]
    assert demo.import_records([{"record_id": "2", "weekly_checkin_complete": "2"}]) == 1
    statuses = {
        r["record"]: r["response_status"]
        for r in demo.participant_list(instrument="weekly_checkin")
    }
    assert statuses["2"] == 2
    assert demo.import_records([{"record_id": "26", "first_name": "Zed", "sms_consent": "1"}]) == 1
    assert "26" in demo.record_ids(filter_logic="[first_name] = 'Zed'")


def test_the_client_reports_sandbox_errors_like_redcaps(demo, live_server):
    with pytest.raises(RedcapAuthError, match="REDCap refused the API token"):
        RedcapClient(live_server.url + API, "F" * 32).project_info()
    with pytest.raises(RedcapRequestError) as caught:
        demo.records(filter_logic="[sms_consent] = ")
    assert caught.value.redcap_message == REDCAP_LOGIC_ERROR
    with pytest.raises(RedcapRequestError, match="not a valid category"):
        demo.import_records([{"record_id": "1", "sms_consent": "maybe"}])
    with pytest.raises(RedcapRequestError, match="'fields' are not valid: 'phon'"):
        demo.metadata(fields=["phon"])


def test_the_client_walks_the_longitudinal_project_over_http(longitudinal):
    assert [e["unique_event_name"] for e in longitudinal.events()] == [
        "baseline_arm_1",
        "week_1_arm_1",
        "week_2_arm_1",
    ]
    assert {"form": "weekly_checkin", "unique_event_name": "week_2_arm_1", "arm_num": 1} in (
        longitudinal.form_event_mapping()
    )
    rows = longitudinal.records(fields=["wk_goal_met"], events=["week_1_arm_1"])
    assert {r["redcap_event_name"] for r in rows} == {"week_1_arm_1"}
    assert longitudinal.record_ids() == ["1", "2", "3", "4", "5", "6"]
    link = longitudinal.survey_link(instrument="weekly_checkin", record="1", event="week_2_arm_1")
    assert "?s=" in link
    rows = longitudinal.participant_list(instrument="weekly_checkin", event="week_1_arm_1")
    assert [r["response_status"] for r in rows][:3] == [2, 1, 0]
    imported = longitudinal.import_records(
        [{"record_id": "3", "redcap_event_name": "week_2_arm_1", "weekly_checkin_complete": "2"}]
    )
    assert imported == 1
    rows = longitudinal.participant_list(instrument="weekly_checkin", event="week_2_arm_1")
    assert rows[2]["response_status"] == 2
