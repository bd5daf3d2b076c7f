"""PyCap, the widely used REDCap client, against the live sandbox over real HTTP: every call the
sandbox claims to support answers as REDCap does (docs/redcap.md), errors included, in the
format asked for. What the sandbox does not implement answers as REDCap answers a content it
does not know."""

import csv
import io

import pytest
import requests
import semantic_version
from redcap import Project, RedcapError

from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN, LONGITUDINAL_TOKEN, REDCAP_VERSION

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")
API = "/sandbox/redcap/api/"
UNKNOWN_CONTENT = 'The value of the parameter "content" is not valid'


@pytest.fixture
def url(live_server):
    return live_server.url + API


@pytest.fixture
def demo(url):
    return Project(url, DEMO_TOKEN)


@pytest.fixture
def longitudinal(url):
    return Project(url, LONGITUDINAL_TOKEN)


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# --- Project, dictionary, instruments, events --------------------------------------------------
def test_version_project_info_and_the_data_dictionary(demo, longitudinal):
    assert demo.export_version() == semantic_version.Version(REDCAP_VERSION)
    assert demo.redcap_version >= semantic_version.Version("12.0.1")
    assert demo.export_project_info()["project_id"] == 101
    assert _rows(demo.export_project_info(format_type="csv"))[0]["project_id"] == "101"
    metadata = demo.export_metadata()
    assert demo.def_field == "record_id" and metadata[0]["field_name"] == "record_id"
    assert "bl_intro" in demo.field_names  # a descriptive field: in the dictionary, no data
    assert [r["field_name"] for r in _rows(demo.export_metadata(format_type="csv"))] == [
        r["field_name"] for r in metadata
    ]
    narrowed = demo.export_metadata(fields=["phone"], forms=["weekly_checkin"])
    assert {r["form_name"] for r in narrowed} == {"contact", "weekly_checkin"}
    assert not demo.is_longitudinal and longitudinal.is_longitudinal


def test_field_names_and_instruments_in_json_and_csv(demo):
    names = demo.export_field_names()
    assert {
        "original_field_name": "optout",
        "choice_value": "1",
        "export_field_name": "optout___1",
    } in names
    assert demo.export_field_names(field="optout") == [
        {"original_field_name": "optout", "choice_value": "1", "export_field_name": "optout___1"}
    ]
    assert _rows(demo.export_field_names(format_type="csv")) == names
    instruments = demo.export_instruments()
    assert [i["instrument_name"] for i in instruments] == [
        "contact",
        "baseline_survey",
        "weekly_checkin",
        "text_checkin",
        "daily_diary",
    ]
    assert _rows(demo.export_instruments(format_type="csv")) == instruments


def test_events_arms_and_mappings_and_redcaps_refusal_for_a_classic_project(demo, longitudinal):
    events = longitudinal.export_events()
    assert [e["unique_event_name"] for e in events] == [
        "baseline_arm_1",
        "week_1_arm_1",
        "week_2_arm_1",
    ]
    assert longitudinal.export_arms() == [{"arm_num": 1, "name": "Arm 1"}]
    mapping = longitudinal.export_instrument_event_mappings()
    assert {"arm_num": 1, "unique_event_name": "week_1_arm_1", "form": "weekly_checkin"} in mapping
    assert len(_rows(longitudinal.export_instrument_event_mappings(format_type="csv"))) == len(
        mapping
    )
    for call, what in [
        (demo.export_events, "events"),
        (demo.export_arms, "arms"),
        (demo.export_instrument_event_mappings, "form/event mappings"),
    ]:
        with pytest.raises(RedcapError) as refused:
            call()
        assert refused.value.args[0] == {"error": f"You cannot export {what} for classic projects"}


def test_repeating_instruments_answer_as_redcap_does_with_and_without_any(demo, longitudinal):
    with pytest.raises(RedcapError) as refused:
        longitudinal.export_repeating_instruments_events()
    assert "does not contain any repeating instruments and events" in str(refused.value)
    assert longitudinal.export_project_info()["has_repeating_instruments_or_events"] == 0
    assert demo.export_repeating_instruments_events() == [
        {"form_name": "daily_diary", "custom_form_label": ""}
    ]
    assert demo.export_project_info()["has_repeating_instruments_or_events"] == 1


# --- Records --------------------------------------------------------------------------------
def test_the_default_record_export_works_on_both_projects(demo, longitudinal):
    """PyCap asks for every field of the dictionary, descriptive ones included."""
    rows = demo.export_records()
    assert len(rows) == 25 and "bl_intro" not in rows[0]
    assert rows[0]["optout___1"] == "0" and rows[0]["contact_complete"] == "2"
    long_rows = longitudinal.export_records()
    assert {r["redcap_event_name"] for r in long_rows} == {"baseline_arm_1", "week_1_arm_1"}


def test_records_by_ids_fields_forms_and_filter_logic(demo, longitudinal):
    assert demo.export_records(records=["2", "10"], fields=["phone"]) == [
        {"record_id": "2", "phone": "615-555-0102"},
        {"record_id": "10", "phone": "(312) 555-0110"},
    ]
    by_form = demo.export_records(forms=["weekly_checkin"], records=["1"])
    assert set(by_form[0]) == {
        "record_id",
        "wk_goal_met",
        "wk_barrier",
        "wk_barrier_other",
        "wk_servings",
        "wk_notes",
        "wk_pain",
        "weekly_checkin_complete",
    }
    logic = "[sms_consent] = '1' and [withdrawn] <> '1' and [phone] <> ''"
    kept = demo.export_records(fields=["record_id"], filter_logic=logic)
    assert "14" not in {r["record_id"] for r in kept} and len(kept) == 19
    labels = demo.export_records(records=["2"], fields=["sms_consent"], raw_or_label="label")
    assert labels == [{"record_id": "2", "sms_consent": "Yes"}]
    week = longitudinal.export_records(events=["week_1_arm_1"], fields=["wk_goal_met"])
    assert {r["redcap_event_name"] for r in week} == {"week_1_arm_1"}


def test_records_in_csv_are_the_json_records_with_a_header(demo):
    as_json = demo.export_records(fields=["phone", "optout"], records=["1", "2", "3"])
    as_csv = demo.export_records(
        format_type="csv", fields=["phone", "optout"], records=["1", "2", "3"]
    )
    assert as_csv.splitlines()[0] == "record_id,phone,optout___1"
    assert _rows(as_csv) == as_json
    nobody = demo.export_records(format_type="csv", fields=["phone"], filter_logic="[phone] = 'x'")
    assert nobody == "record_id,phone\n"


# --- Surveys --------------------------------------------------------------------------------
def test_survey_links_queue_links_and_participant_lists(demo, longitudinal, live_server):
    link = demo.export_survey_link(record="3", instrument="baseline_survey")
    assert link.startswith(live_server.url + "/sandbox/redcap/surveys/?s=")
    assert requests.get(link, timeout=10).status_code == 200
    assert "?sq=" in demo.export_survey_queue_link(record="3")
    people = demo.export_survey_participant_list(instrument="weekly_checkin")
    assert people[2]["record"] == "3" and people[0]["response_status"] == 2
    assert (
        _rows(demo.export_survey_participant_list(instrument="weekly_checkin", format_type="csv"))[
            0
        ]["survey_access_code"]
        == people[0]["survey_access_code"]
    )
    week = longitudinal.export_survey_participant_list(
        instrument="weekly_checkin", event="week_1_arm_1"
    )
    assert [r["response_status"] for r in week][:2] == [2, 1]
    assert "?s=" in longitudinal.export_survey_link(
        record="1", instrument="weekly_checkin", event="week_2_arm_1"
    )


def test_a_survey_link_for_an_unknown_record_is_an_error_in_the_format_pycap_asked_for(demo):
    """PyCap asks for survey links with returnFormat=csv: the error must be "ERROR: ...", not a
    JSON error string that PyCap would take for the link."""
    with pytest.raises(RedcapError) as refused:
        demo.export_survey_link(record="99", instrument="baseline_survey")
    assert refused.value.args[0] == 'ERROR: The record "99" does not exist'
    with pytest.raises(RedcapError, match="ERROR: The parameter 'record' is missing"):
        demo.export_survey_queue_link(record="")


# --- Imports --------------------------------------------------------------------------------
def test_imports_in_json_and_csv_answer_as_redcap_does(demo):
    assert demo.import_records([{"record_id": "2", "first_name": "Bee"}]) == {"count": 1}
    assert demo.import_records([{"record_id": "2", "tz": "UTC"}], return_content="ids") == ["2"]
    assert demo.import_records([{"record_id": "2"}], return_content="nothing") == [{}]
    csv_data = "record_id,first_name\n3,Cass\n4,Dee\n"
    assert demo.import_records(csv_data, import_format="csv") == {"count": 2}
    assert demo.import_records(csv_data, import_format="csv", return_format_type="csv") == "2"
    assert (
        demo.import_records(csv_data, import_format="csv", return_format_type="xml")
        == '<?xml version="1.0" encoding="UTF-8" ?><count>2</count>'
    )
    assert demo.export_records(records=["3", "4"], fields=["first_name"]) == [
        {"record_id": "3", "first_name": "Cass"},
        {"record_id": "4", "first_name": "Dee"},
    ]


@pytest.mark.parametrize(
    ("date_format", "written"),
    [("YMD", "2026-03-31"), ("MDY", "03/31/2026"), ("DMY", "31/03/2026")],
)
def test_date_format_says_how_imported_dates_are_written(demo, date_format, written):
    demo.import_records([{"record_id": "5", "enrollment_date": written}], date_format=date_format)
    assert demo.export_records(records=["5"], fields=["enrollment_date"]) == [
        {"record_id": "5", "enrollment_date": "2026-03-31"}
    ]


def test_a_date_in_another_format_than_the_one_given_is_refused(demo):
    with pytest.raises(RedcapError, match="must be a date in the format Y-M-D"):
        demo.import_records([{"record_id": "5", "enrollment_date": "31/03/2026"}])


def test_force_auto_number_gives_new_records_the_next_ids_as_new_old_pairs(demo):
    answer = demo.import_records(
        [{"record_id": "new", "first_name": "Nia"}, {"record_id": "new-2", "first_name": "Oz"}],
        force_auto_number=True,
        return_content="auto_ids",
    )
    assert answer == ["26,new", "27,new-2"]
    assert not store.record_exists(store.SANDBOX_PROJECTS[101], "new")
    assert demo.export_records(records=["26"], fields=["first_name"]) == [
        {"record_id": "26", "first_name": "Nia"}
    ]
    # Without forceAutoNumber, auto_ids reads as count (REDCap); "new" is then a record name.
    assert demo.import_records([{"record_id": "new"}], return_content="auto_ids") == {"count": 1}
    as_csv = demo.import_records(
        [{"record_id": "x"}],
        force_auto_number=True,
        return_content="auto_ids",
        return_format_type="csv",
    )
    assert as_csv == "id,original_id\n28,x"


# --- Errors ---------------------------------------------------------------------------------
def test_errors_come_in_the_format_asked_for(demo):
    with pytest.raises(RedcapError) as as_json:
        demo.export_records(fields=["nope"])
    assert as_json.value.args[0] == {
        "error": "The following values in the parameter 'fields' are not valid: 'nope'"
    }
    with pytest.raises(RedcapError) as as_csv:
        demo.export_records(format_type="csv", fields=["nope"])
    assert as_csv.value.args[0].startswith("ERROR: The following values")
    with pytest.raises(RedcapError, match="not formatted correctly|not a valid category"):
        demo.import_records([{"record_id": "1", "sms_consent": "maybe"}], return_format_type="csv")


def test_a_wrong_token_is_an_error_pycap_sees_even_for_the_version(url):
    with pytest.raises(RedcapError) as refused:
        Project(url, "F" * 32).export_version()
    assert "<error>You do not have permissions to use the API</error>" in str(refused.value)
    with pytest.raises(RedcapError, match="You do not have permissions"):
        Project(url, "F" * 32).export_records()


def test_what_the_sandbox_does_not_implement_answers_as_an_unknown_content(demo):
    with pytest.raises(RedcapError) as refused:
        demo.export_users()
    assert refused.value.args[0] == {"error": UNKNOWN_CONTENT}
    with pytest.raises(RedcapError, match="content"):
        demo.export_logging()


@pytest.mark.parametrize(
    ("params", "status", "body"),
    [
        (
            {"content": "nonsense", "format": "json"},
            400,
            '{"error": "The value of the parameter \\"content\\" is not valid"}',
        ),
        ({"content": "nonsense", "format": "csv"}, 400, f"ERROR: {UNKNOWN_CONTENT}"),
        (
            {"content": "nonsense"},
            400,
            '<?xml version="1.0" encoding="UTF-8" ?><hash><error>The value of the parameter '
            '"content" is not valid</error></hash>',
        ),
        ({"content": "record", "format": "xml", "returnFormat": "json"}, 400, "format=xml"),
        ({"content": "metadata"}, 400, "<error>The REDCap sandbox writes format=json or"),
        ({"content": "version", "format": "xml"}, 200, REDCAP_VERSION),
    ],
)
def test_unknown_content_and_formats_get_redcaps_error_shape_over_http(url, params, status, body):
    response = requests.post(url, data={"token": DEMO_TOKEN, **params}, timeout=10)
    assert response.status_code == status
    assert body in response.text
