"""The REDCap sandbox's projects: data dictionary, events, tokens and seed records.

Two projects, each with a fixed development token (32 hex characters, as REDCap's):

- PID 101, classic (``SANDBOX_PROJECTS[101].token == DEMO_TOKEN``): the demo project
  ``make run`` seeds: 25 records, two survey instruments, a contact/consent form.
- PID 102, longitudinal (``LONGITUDINAL_TOKEN``): three events, six records.

The records themselves, and what the API does with them, live in ``store.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from projects.sandbox import text_surveys

REDCAP_VERSION = "14.5.11"
METADATA_KEYS = (
    "field_name",
    "form_name",
    "section_header",
    "field_type",
    "field_label",
    "select_choices_or_calculations",
    "field_note",
    "text_validation_type_or_show_slider_number",
    "text_validation_min",
    "text_validation_max",
    "identifier",
    "branching_logic",
    "required_field",
    "custom_alignment",
    "question_number",
    "matrix_group_name",
    "matrix_ranking",
    "field_annotation",
)
CHOICE_TYPES = ("radio", "dropdown", "checkbox", "yesno", "truefalse")
COMPLETE_LABELS = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}


def _field(name: str, form: str, field_type: str, label: str, **extra: str) -> dict[str, str]:
    short = {
        "choices": "select_choices_or_calculations",
        "note": "field_note",
        "validation": "text_validation_type_or_show_slider_number",
        "vmin": "text_validation_min",
        "vmax": "text_validation_max",
        "branching": "branching_logic",
        "required": "required_field",
    }
    row = dict.fromkeys(METADATA_KEYS, "")
    row.update(field_name=name, form_name=form, field_type=field_type, field_label=label)
    for key, value in extra.items():
        row[short.get(key, key)] = value
    return row


YES_NO = "1, Yes | 0, No"
BASE_METADATA: tuple[dict[str, str], ...] = (
    _field("record_id", "contact", "text", "Record ID"),
    _field("first_name", "contact", "text", "First name", identifier="y"),
    _field(
        "phone",
        "contact",
        "text",
        "Mobile phone",
        validation="phone",
        identifier="y",
        note="US mobile number",
    ),
    _field("sms_consent", "contact", "radio", "May we send you text messages?", choices=YES_NO),
    _field("tz", "contact", "text", "Time zone", note="IANA name, e.g. America/Chicago"),
    _field("enrollment_date", "contact", "text", "Enrollment date", validation="date_ymd"),
    _field("optout", "contact", "checkbox", "Text messages", choices="1, Stop texting me"),
    _field("withdrawn", "contact", "yesno", "Withdrawn from the study"),
    _field(
        "bl_intro",
        "baseline_survey",
        "descriptive",
        "Thank you for joining the study. These questions take two minutes.",
    ),
    _field(
        "bl_mood",
        "baseline_survey",
        "radio",
        "How is your mood today?",
        choices="1, Very bad | 2, Bad | 3, OK | 4, Good | 5, Very good",
        required="y",
    ),
    _field(
        "bl_sleep_hours",
        "baseline_survey",
        "text",
        "How many hours did you sleep last night?",
        validation="number",
        vmin="0",
        vmax="24",
    ),
    _field("bl_goal", "baseline_survey", "text", "What is your main health goal?"),
    _field("wk_goal_met", "weekly_checkin", "yesno", "Did you meet your activity goal?"),
    _field(
        "wk_barrier",
        "weekly_checkin",
        "radio",
        "What got in the way?",
        choices="1, Time | 2, Weather | 3, Health | 4, Motivation | 5, Other",
        branching="[wk_goal_met] = '0'",
    ),
    _field(
        "wk_barrier_other",
        "weekly_checkin",
        "text",
        "Please describe what got in the way.",
        branching="[wk_barrier] = '5'",
    ),
    _field(
        "wk_servings",
        "weekly_checkin",
        "text",
        "How many servings of fruit and vegetables did you eat yesterday?",
        validation="integer",
        vmin="0",
        vmax="20",
    ),
    _field("wk_notes", "weekly_checkin", "notes", "Anything else you would like to tell us?"),
    # Pain today, for alerts to the study team ("Participant [record_id] reported pain 9").
    _field(
        "wk_pain",
        "weekly_checkin",
        "text",
        "How bad is your pain today, from 0 (none) to 10 (worst)?",
        validation="integer",
        vmin="0",
        vmax="10",
    ),
)
BASE_INSTRUMENTS = (
    ("contact", "Contact and consent"),
    ("baseline_survey", "Baseline survey"),
    ("weekly_checkin", "Weekly check-in"),
)
BASE_SURVEYS = ("baseline_survey", "weekly_checkin")
# The demo project (and the projects copied from it) also has the text-survey instruments, one
# of them repeating (projects/sandbox/text_surveys.py).
METADATA = BASE_METADATA + tuple(
    _field(name, form, field_type, label, **extra)
    for name, form, field_type, label, extra in text_surveys.FIELDS
)
INSTRUMENTS = BASE_INSTRUMENTS + text_surveys.INSTRUMENTS
SURVEYS = BASE_SURVEYS + tuple(name for name, _ in text_surveys.INSTRUMENTS)


@dataclass(frozen=True)
class Event:
    unique_event_name: str
    event_name: str
    forms: tuple[str, ...]
    arm_num: int = 1
    event_id: int = 0
    day_offset: int = 0

    def as_api(self) -> dict[str, object]:
        return {
            "event_name": self.event_name,
            "arm_num": self.arm_num,
            "unique_event_name": self.unique_event_name,
            "custom_event_label": "",
            "event_id": self.event_id,
            "days_offset": self.day_offset,
            "offset_min": 0,
            "offset_max": 0,
        }


@dataclass(frozen=True)
class SandboxProject:
    pid: int
    token: str
    title: str
    events: tuple[Event, ...] = ()
    metadata: tuple[dict[str, str], ...] = METADATA
    instruments: tuple[tuple[str, str], ...] = INSTRUMENTS
    surveys: tuple[str, ...] = SURVEYS
    repeating: tuple[str, ...] = text_surveys.REPEATING  # repeating instruments
    info: Mapping[str, object] = field(default_factory=dict)

    @property
    def longitudinal(self) -> bool:
        return bool(self.events)

    @property
    def record_id_field(self) -> str:
        return self.metadata[0]["field_name"]

    def fields_by_name(self) -> dict[str, dict[str, str]]:
        return {f["field_name"]: f for f in self.metadata}

    def forms(self) -> list[str]:
        return [name for name, _ in self.instruments]

    def event(self, name: str) -> Event | None:
        return next((e for e in self.events if e.unique_event_name == name), None)

    def event_names(self) -> list[str]:
        return [e.unique_event_name for e in self.events] or [""]

    def form_in_event(self, form: str, event: str) -> bool:
        found = self.event(event)
        return found is None or form in found.forms

    def project_info(self) -> dict[str, object]:
        return {
            "project_id": self.pid,
            "project_title": self.title,
            "creation_time": "2025-09-02 10:15:00",
            "production_time": "2025-09-30 09:00:00",
            "in_production": 1,
            "project_language": "English",
            "purpose": 2,
            "purpose_other": "",
            "project_notes": "A simulated REDCap project served by the StudyText sandbox.",
            "custom_record_label": "",
            "secondary_unique_field": "",
            "is_longitudinal": int(self.longitudinal),
            "has_repeating_instruments_or_events": int(bool(self.repeating)),
            "surveys_enabled": 1,
            "scheduling_enabled": 0,
            "record_autonumbering_enabled": 1,
            "randomization_enabled": 0,
            "ddp_enabled": 0,
            "project_irb_number": "IRB-2026-0042",
            "project_grant_number": "",
            "project_pi_firstname": "Pat",
            "project_pi_lastname": "Investigator",
            "project_pi_email": "pi@studytext.test",
            "display_today_now_button": 1,
            "missing_data_codes": "",
            "external_modules": "",
            "bypass_branching_erase_field_prompt": 0,
            **self.info,
        }


# The fixed development tokens. They only open this sandbox, which production refuses to run.
DEMO_TOKEN = "AD33897EDF3A617A6B502E63A93F9AD3"  # noqa: S105
LONGITUDINAL_TOKEN = "29B050428D1CE6C77FF3785022A4CBB0"  # noqa: S105

SANDBOX_PROJECTS: dict[int, SandboxProject] = {
    101: SandboxProject(pid=101, token=DEMO_TOKEN, title="Demo: Healthy Habits Study"),
    102: SandboxProject(
        pid=102,
        token=LONGITUDINAL_TOKEN,
        title="Demo: Sleep and Activity (longitudinal)",
        metadata=BASE_METADATA,
        instruments=BASE_INSTRUMENTS,
        surveys=BASE_SURVEYS,
        repeating=(),
        events=(
            Event("baseline_arm_1", "Baseline", ("contact", "baseline_survey"), event_id=41),
            Event("week_1_arm_1", "Week 1", ("weekly_checkin",), event_id=42, day_offset=7),
            Event("week_2_arm_1", "Week 2", ("weekly_checkin",), event_id=43, day_offset=14),
        ),
    ),
}


# --- Seed records --------------------------------------------------------------------------
# first name, phone (US 555-01xx fictional numbers in assorted formats), consent, time zone,
# enrolled (days from today; None: blank), opted out, withdrawn, baseline, weekly check-in.
DEMO_PEOPLE: tuple[tuple[str, str, str, str, int | None, str, str, str, str], ...] = (
    ("Avery", "(615) 555-0101", "1", "America/Chicago", -30, "0", "0", "complete", "complete"),
    ("Blake", "615-555-0102", "1", "America/New_York", -28, "0", "0", "complete", "partial"),
    ("Casey", "6155550103", "1", "America/Los_Angeles", -21, "0", "0", "complete", ""),
    ("Devon", "+1 615 555 0104", "1", "America/Denver", -14, "0", "0", "partial", ""),
    ("Emerson", "615.555.0105", "1", "America/Phoenix", -7, "0", "0", "", ""),
    ("Finley", "", "1", "America/Chicago", -7, "0", "0", "", ""),  # no phone
    ("Gray", "(212) 555-0107", "0", "America/New_York", -3, "0", "0", "", ""),  # said no
    ("Harper", "555-0108", "1", "America/Chicago", -2, "0", "0", "", ""),  # invalid phone
    ("Indigo", "(312) 555-0109", "1", "", -1, "0", "0", "complete", ""),  # no time zone
    ("Jordan", "(312) 555-0110", "1", "Mars/Olympus", 0, "0", "0", "", ""),  # bogus zone
    ("Kai", "(503) 555-0111", "1", "America/Los_Angeles", 0, "1", "0", "complete", ""),  # out
    ("Logan", "(907) 555-0112", "1", "America/Anchorage", 1, "0", "0", "", ""),
    ("Morgan", "(808) 555-0113", "1", "Pacific/Honolulu", 2, "0", "0", "", ""),
    ("Noel", "(617) 555-0114", "1", "America/New_York", 3, "0", "1", "partial", ""),  # withdrew
    ("Oakley", "617 555 0115", "", "America/New_York", 5, "0", "0", "", ""),  # consent blank
    ("Parker", "(720) 555-0116", "1", "America/Denver", 7, "0", "0", "", ""),
    ("Quinn", "7205550117", "1", "America/Denver", 10, "0", "0", "", ""),
    ("Reese", "(602) 555-0118", "1", "America/Phoenix", 14, "0", "0", "", ""),
    ("Sage", "", "0", "America/Chicago", 14, "0", "0", "", ""),
    ("Taylor", "(404) 555-0119", "1", "America/New_York", -45, "0", "0", "complete", "complete"),
    ("Uma", "(787) 555-0120", "1", "America/Puerto_Rico", -60, "0", "0", "complete", "complete"),
    ("Val", "(206) 555-0121", "1", "America/Los_Angeles", -10, "0", "0", "complete", "partial"),
    ("Wren", "(206) 555-0122", "0", "America/Los_Angeles", -5, "1", "0", "", ""),
    ("Xen", "(305) 555-0123", "1", "America/New_York", 21, "0", "0", "", ""),
    ("Yael", "(305) 555-0124", "1", "America/Chicago", None, "0", "0", "", ""),  # no date
)
SURVEY_ANSWERS = {
    "baseline_survey": {
        "complete": {"bl_mood": "4", "bl_sleep_hours": "7.5", "bl_goal": "Walk every day"},
        "partial": {"bl_mood": "3"},
    },
    "weekly_checkin": {
        "complete": {"wk_goal_met": "1", "wk_servings": "4", "wk_notes": ""},
        "partial": {"wk_goal_met": "0"},
    },
}


def blank_row(project: SandboxProject, repeat_form: str = "") -> dict[str, str]:
    """A new record's values: checkbox options and form statuses are "0", the rest blank. The
    columns of repeating instruments are blank on a record's own row; an instance's row
    (``repeat_form``) holds that instrument's columns only."""
    row = {}
    for name, original, form in export_columns(project):
        applies = form == repeat_form if repeat_form else form not in project.repeating
        coded = name != original or name == f"{form}_complete"
        row[name] = "0" if coded and applies else ""
    return row


def _answer(row: dict[str, str], survey: str, status: str) -> None:
    if status:
        row.update(SURVEY_ANSWERS[survey][status])
        row[f"{survey}_complete"] = "2" if status == "complete" else "0"


def seed(project: SandboxProject, today: date) -> dict[tuple[str, str], dict[str, str]]:
    seeded: dict[tuple[str, str], dict[str, str]] = {}
    people = DEMO_PEOPLE if not project.longitudinal else DEMO_PEOPLE[:6]
    for number, person in enumerate(people, start=1):
        name, phone, consent, tz, enrolled, optout, withdrawn, baseline, weekly = person
        record = str(number)
        row = blank_row(project)
        row.update(
            record_id=record,
            first_name=name,
            phone=phone,
            sms_consent=consent,
            tz=tz,
            enrollment_date="" if enrolled is None else (today + timedelta(enrolled)).isoformat(),
            optout___1=optout,
            withdrawn=withdrawn,
            contact_complete="2",
        )
        _answer(row, "baseline_survey", baseline)
        if not project.longitudinal:
            _answer(row, "weekly_checkin", weekly)
            seeded[(record, "")] = row
            continue
        seeded[(record, "baseline_arm_1")] = row
        if weekly:  # the weekly check-in lives in the week events
            week = blank_row(project)
            week["record_id"] = record
            _answer(week, "weekly_checkin", weekly)
            seeded[(record, "week_1_arm_1")] = week
    return seeded


# --- Export names ----------------------------------------------------------------------------
def choices(field_row: Mapping[str, str]) -> dict[str, str]:
    """``"1, Yes | 0, No"`` → ``{"1": "Yes", "0": "No"}`` (yesno and truefalse built in)."""
    if field_row["field_type"] == "yesno":
        return {"1": "Yes", "0": "No"}
    if field_row["field_type"] == "truefalse":
        return {"1": "True", "0": "False"}
    found = {}
    for part in field_row["select_choices_or_calculations"].split("|"):
        code, _, label = part.partition(",")
        if code.strip():
            found[code.strip()] = label.strip()
    return found


def checkbox_name(name: str, code: str) -> str:
    return f"{name}___{code.lower().replace('-', '_')}"


def export_columns(project: SandboxProject) -> list[tuple[str, str, str]]:
    """Every exported column as (export name, field name, form), in REDCap's order: each
    form's fields (checkboxes expanded, descriptive fields left out), then ``<form>_complete``."""
    columns: list[tuple[str, str, str]] = []
    by_form: dict[str, list[dict[str, str]]] = {}
    for row in project.metadata:
        by_form.setdefault(row["form_name"], []).append(row)
    for form in project.forms():
        for row in by_form.get(form, []):
            name = row["field_name"]
            if row["field_type"] == "descriptive":
                continue
            if row["field_type"] == "checkbox":
                columns.extend((checkbox_name(name, c), name, form) for c in choices(row))
            else:
                columns.append((name, name, form))
        columns.append((f"{form}_complete", f"{form}_complete", form))
    return columns


def field_names(project: SandboxProject) -> list[str]:
    """Names a request may use: data fields (descriptive ones left out) and form-complete
    fields."""
    return list(dict.fromkeys(original for _, original, _ in export_columns(project)))
