"""The demo project's two text-survey instruments, as (name, form, type, label, extras) rows
that ``data.py`` turns into data-dictionary rows (its ``_field`` keys: choices, note,
validation, vmin, vmax, branching, required, or any of REDCap's 18 columns).

- ``text_checkin`` "Text check-in": every field type a text survey asks, each text validation,
  branching (on a yes/no, a choice, a checkbox option, a number and a datediff), piping of an
  earlier answer, a @DEFAULT, a @HIDDEN-SURVEY field, a ranked checkbox with
  @NONEOFTHEABOVE, and one field a text cannot ask (a file upload).
- ``daily_diary`` "Daily diary": a short repeating instrument (one instance per day), with one
  branch, for the journeys.
"""

from __future__ import annotations

CHECKIN = "text_checkin"
DIARY = "daily_diary"
INSTRUMENTS = ((CHECKIN, "Text check-in"), (DIARY, "Daily diary"))
REPEATING = (DIARY,)
MOOD = "1, Very bad | 2, Bad | 3, OK | 4, Good | 5, Very good"

FIELDS: tuple[tuple[str, str, str, str, dict[str, str]], ...] = (
    (
        "tc_intro",
        CHECKIN,
        "descriptive",
        "Hi [first_name], a few quick questions about your week.",
        {},
    ),
    ("tc_walked", CHECKIN, "yesno", "Did you go for a walk this week?", {"required": "y"}),
    (
        "tc_walk_days",
        CHECKIN,
        "text",
        "On how many days did you walk?",
        {"validation": "integer", "vmin": "1", "vmax": "7", "branching": "[tc_walked] = '1'"},
    ),
    ("tc_rested", CHECKIN, "truefalse", "I felt rested most mornings.", {}),
    ("tc_mood", CHECKIN, "radio", "How was your mood this week?", {"choices": MOOD}),
    (
        "tc_mood_why",
        CHECKIN,
        "notes",
        "You said your mood was [tc_mood]. What made it so?",
        {"branching": "[tc_mood] <= 2"},
    ),
    (
        "tc_activity",
        CHECKIN,
        "dropdown",
        "Which activity did you do most?",
        {"choices": "1, Walking | 2, Running | 3, Cycling | 4, Swimming | 5, Something else"},
    ),
    (
        "tc_activity_other",
        CHECKIN,
        "text",
        "Which activity was it?",
        {"branching": "[tc_activity] = '5'", "field_annotation": "@CHARLIMIT=40"},
    ),
    (
        "tc_barriers",
        CHECKIN,
        "checkbox",
        "What made it hard to be active? Choose all that apply.",
        {
            "choices": "1, Time | 2, Weather | 3, Health | 4, Motivation | 99, Nothing",
            "field_annotation": "@NONEOFTHEABOVE='99'",
        },
    ),
    (
        "tc_health_note",
        CHECKIN,
        "text",
        "What about your health got in the way?",
        {"branching": "[tc_barriers(3)] = '1'"},
    ),
    (
        "tc_sleep_hours",
        CHECKIN,
        "text",
        "How many hours did you sleep last night?",
        {"validation": "number", "vmin": "0", "vmax": "24", "required": "y"},
    ),
    (
        "tc_weight",
        CHECKIN,
        "text",
        "What is your weight in kilograms, to one decimal?",
        {"validation": "number_1dp", "vmin": "30", "vmax": "300"},
    ),
    (
        "tc_last_checkup",
        CHECKIN,
        "text",
        "When was your last check-up with a doctor?",
        {"validation": "date_mdy", "vmax": "today"},
    ),
    (
        "tc_checkup_due",
        CHECKIN,
        "descriptive",
        "It has been more than a year since your last check-up: please call your clinic.",
        {"branching": "datediff([tc_last_checkup], 'today', 'y') > 1"},
    ),
    (
        "tc_next_visit",
        CHECKIN,
        "text",
        "When is your next clinic visit (date and time)?",
        {"validation": "datetime_mdy"},
    ),
    (
        "tc_bedtime",
        CHECKIN,
        "text",
        "What time do you usually go to bed?",
        {"validation": "time"},
    ),
    (
        "tc_email",
        CHECKIN,
        "text",
        "What e-mail address can we use for study news?",
        {"validation": "email"},
    ),
    (
        "tc_alt_phone",
        CHECKIN,
        "text",
        "Another phone number we can reach you at?",
        {"validation": "phone"},
    ),
    ("tc_zip", CHECKIN, "text", "What is your ZIP code?", {"validation": "zipcode"}),
    (
        "tc_stress",
        CHECKIN,
        "slider",
        "How stressed did you feel this week?",
        {"choices": "Not at all | Somewhat | Extremely", "validation": "number"},
    ),
    (
        "tc_contact_by",
        CHECKIN,
        "radio",
        "How should we contact you about the study?",
        {"choices": "1, Text | 2, E-mail | 3, Phone call", "field_annotation": "@DEFAULT='1'"},
    ),
    (
        "tc_photo",
        CHECKIN,
        "file",
        "Upload a photo of your lunch.",
        {},
    ),
    (
        "tc_channel",
        CHECKIN,
        "text",
        "How this check-in was taken",
        {"field_annotation": "@HIDDEN-SURVEY"},
    ),
    ("tc_comments", CHECKIN, "notes", "Anything else you would like to tell us?", {}),
    (
        "dd_walked",
        DIARY,
        "yesno",
        "Did you go for a walk today?",
        {"required": "y"},
    ),
    (
        "dd_minutes",
        DIARY,
        "text",
        "About how many minutes did you walk?",
        {"validation": "integer", "vmin": "1", "vmax": "600", "branching": "[dd_walked] = '1'"},
    ),
    ("dd_mood", DIARY, "radio", "How is your mood today?", {"choices": MOOD, "required": "y"}),
    ("dd_note", DIARY, "notes", "Anything else about today?", {}),
)
