"""The sandbox's text-survey instruments: a repeating daily diary, and answers of every type
imported and exported as REDCap does (docs/redcap.md, "Text surveys" and "The REDCap sandbox")."""

import json

import pytest

from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN, LONGITUDINAL_TOKEN, SANDBOX_PROJECTS
from projects.sandbox.text_surveys import FIELDS

API = "/sandbox/redcap/api/"
DEMO = SANDBOX_PROJECTS[101]


@pytest.fixture
def api(client, settings):
    settings.SANDBOX_ENABLED = True

    def post(token=DEMO_TOKEN, **params):
        return client.post(API, {"token": token, "format": "json", **params})

    return post


def imported(api, rows, **params):
    return api(content="record", data=json.dumps(rows), returnContent="ids", **params)


def test_the_demo_has_a_checkin_survey_and_a_repeating_diary(api):
    forms = {r["field_name"]: r["form_name"] for r in api(content="metadata").json()}
    assert {"tc_walked", "tc_photo", "tc_intro"} <= {
        f for f, form in forms.items() if form == "text_checkin"
    }
    assert api(content="repeatingFormsEvents").json() == [
        {"form_name": "daily_diary", "custom_form_label": ""}
    ]
    assert api(content="project").json()["has_repeating_instruments_or_events"] == 1
    longitudinal = api(token=LONGITUDINAL_TOKEN, content="repeatingFormsEvents")
    assert longitudinal.status_code == 400
    types = {field_type for _, _, field_type, _, _ in FIELDS}
    assert types == {
        "descriptive", "yesno", "truefalse", "radio", "dropdown", "checkbox", "text", "notes",
        "slider", "file",
    }  # fmt: skip


def test_each_import_of_a_diary_makes_or_fills_an_instance_and_the_export_lists_them(api):
    first = {"record_id": "3", "redcap_repeat_instrument": "daily_diary"}
    assert imported(api, [{**first, "redcap_repeat_instance": "1", "dd_walked": "1"}]).json() == [
        "3"
    ]
    imported(api, [{**first, "redcap_repeat_instance": "1", "dd_minutes": "30"}])
    imported(api, [{**first, "redcap_repeat_instance": "new", "dd_walked": "0"}])
    imported(api, [{**first, "redcap_repeat_instance": "2", "daily_diary_complete": "2"}])

    rows = api(content="record", records="3", forms="daily_diary").json()
    assert [(r["redcap_repeat_instrument"], r["redcap_repeat_instance"]) for r in rows] == [
        ("", ""),
        ("daily_diary", "1"),
        ("daily_diary", "2"),
    ]
    assert (rows[1]["dd_walked"], rows[1]["dd_minutes"], rows[1]["daily_diary_complete"]) == (
        "1",
        "30",
        "0",
    )
    assert (rows[2]["dd_walked"], rows[2]["daily_diary_complete"]) == ("0", "2")
    assert rows[0]["daily_diary_complete"] == ""  # the record's own row holds no diary
    assert [(i, n) for i, n, _ in store.instance_rows(DEMO, record="3")] == [
        ("daily_diary", 1),
        ("daily_diary", 2),
    ]
    # The participant's own fields are untouched, and exports of them list no instances.
    mapped = api(content="record", records="3", fields="phone,sms_consent").json()
    assert mapped == [{"record_id": "3", "phone": "6155550103", "sms_consent": "1"}]
    everything = api(content="record", records="3").json()
    assert len(everything) == 3 and everything[0]["first_name"] == "Casey"


def test_a_diary_instance_for_a_new_record_creates_the_record(api):
    row = {"record_id": "40", "redcap_repeat_instrument": "daily_diary"}
    imported(api, [{**row, "redcap_repeat_instance": "new", "dd_mood": "4"}])
    rows = api(content="record", records="40").json()
    assert [r["redcap_repeat_instance"] for r in rows] == ["", "1"]
    assert rows[1]["dd_mood"] == "4"


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (
            {"redcap_repeat_instrument": "text_checkin", "redcap_repeat_instance": "1"},
            "must be the unique form name of a Repeating Instrument",
        ),
        ({"redcap_repeat_instance": "2", "tc_mood": "3"}, "cannot have a value since this"),
        (
            {"redcap_repeat_instrument": "daily_diary", "redcap_repeat_instance": "0"},
            "must be a whole number of 1 or more, or new",
        ),
        (
            {"redcap_repeat_instrument": "daily_diary", "redcap_repeat_instance": "x"},
            "must be a whole number of 1 or more, or new",
        ),
        (
            {
                "redcap_repeat_instrument": "daily_diary",
                "redcap_repeat_instance": "1",
                "tc_mood": "3",
            },
            "belongs to the instrument text_checkin, not to the repeating instrument daily_diary",
        ),
        ({"dd_mood": "3"}, "belongs to the instrument daily_diary, not to a row"),
    ],
)
def test_rows_for_repeating_instruments_are_checked_as_redcap_checks_them(api, row, words):
    response = imported(api, [{"record_id": "1", **row}])
    assert response.status_code == 400
    assert words in response.json()["error"]
    assert store.instance_rows(DEMO, record="1") == []


def test_answers_of_every_type_import_as_redcap_stores_them(api):
    answers = {
        "record_id": "2",
        "tc_walked": "1",
        "tc_walk_days": "4",
        "tc_rested": "0",
        "tc_mood": "2",
        "tc_mood_why": "Long week.\nBad sleep.",
        "tc_activity": "5",
        "tc_activity_other": "Yoga",
        "tc_barriers___1": "1",
        "tc_barriers___3": "1",
        "tc_health_note": "A cold",
        "tc_sleep_hours": "6.5",
        "tc_weight": "70.5",
        "tc_last_checkup": "2025-11-03",
        "tc_next_visit": "2026-04-02 14:30",
        "tc_bedtime": "22:45",
        "tc_email": "casey.smith+study@example.org",
        "tc_alt_phone": "(615) 555-0142",
        "tc_zip": "37203-1234",
        "tc_stress": "35",
        "tc_contact_by": "1",
        "tc_comments": "",
        "text_checkin_complete": "2",
    }
    assert imported(api, [answers]).json() == ["2"]
    row = api(content="record", records="2", forms="text_checkin").json()[0]
    assert {k: row[k] for k in answers if k in row and k != "record_id"} == {
        k: v for k, v in answers.items() if k != "record_id"
    }
    assert row["tc_barriers___2"] == "0"


@pytest.mark.parametrize(
    ("column", "value", "words"),
    [
        ("tc_last_checkup", "03/04/2026", "a date in the format Y-M-D"),
        ("tc_last_checkup", "2026-02-30", "a date in the format Y-M-D"),
        ("tc_next_visit", "2026-04-02", "a datetime in the format Y-M-D H:M"),
        ("tc_bedtime", "25:00", "a time in the format HH:MM"),
        ("tc_weight", "70", "a number with those decimal places"),
        ("tc_walk_days", "4.5", "an integer"),
        ("tc_sleep_hours", "1,5", "a number"),
        ("tc_email", "casey@", "a valid e-mail address"),
        ("tc_alt_phone", "555-0142", "a 10-digit US phone number"),
        ("tc_zip", "3720", "a 5- or 9-digit US ZIP code"),
        ("tc_stress", "35.5", "an integer"),
        ("tc_mood", "9", "not a valid category"),
    ],
)
def test_a_value_redcap_would_refuse_is_refused_with_its_column(api, column, value, words):
    response = imported(api, [{"record_id": "2", column: value}])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith(f'"2","{column}","{value}","The value ')
    assert words in error


def test_the_import_date_format_applies_to_datetimes_too(api):
    imported(
        api,
        [{"record_id": "2", "tc_next_visit": "04/02/2026 14:30", "tc_last_checkup": "11/03/2025"}],
        dateFormat="MDY",
    )
    row = api(content="record", records="2", fields="tc_next_visit,tc_last_checkup").json()[0]
    assert (row["tc_next_visit"], row["tc_last_checkup"]) == ("2026-04-02 14:30", "2025-11-03")


def test_the_diary_survey_page_completes_instance_1_and_the_participant_list_reports_it(
    api, client
):
    listed = api(content="participantList", instrument="daily_diary").json()
    link = next(row["survey_link"] for row in listed if row["record"] == "5")
    assert next(row["response_status"] for row in listed if row["record"] == "5") == 0
    page = link.split("testserver", 1)[1]
    assert client.post(page).status_code == 302
    instances = store.instance_rows(DEMO, record="5")
    assert [(form, n, v["daily_diary_complete"]) for form, n, v in instances] == [
        ("daily_diary", 1, "2")
    ]
    listed = api(content="participantList", instrument="daily_diary").json()
    assert next(row["response_status"] for row in listed if row["record"] == "5") == 2
