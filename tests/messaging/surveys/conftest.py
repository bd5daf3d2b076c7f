import datetime as dt

import pytest

from messaging.surveys.fields import instrument_from_metadata
from projects.sandbox.data import METADATA_KEYS, SANDBOX_PROJECTS

NOW = dt.datetime(2026, 3, 10, 15, 0)


def row(name, field_type="text", label="A question?", form="survey", **extra):
    """One data-dictionary row with REDCap's 18 keys."""
    values = dict.fromkeys(METADATA_KEYS, "")
    values.update(field_name=name, form_name=form, field_type=field_type, field_label=label)
    values.update(extra)
    return values


def instrument_of(*rows, repeating=False):
    """An instrument named "survey" after a record-id field on another form."""
    return instrument_from_metadata(
        [row("record_id", form="contact"), *rows], instrument="survey", repeating=repeating
    )


@pytest.fixture
def checkin():
    return instrument_from_metadata(
        SANDBOX_PROJECTS[101].metadata, instrument="text_checkin", label="Text check-in"
    )


@pytest.fixture
def diary():
    return instrument_from_metadata(
        SANDBOX_PROJECTS[101].metadata, instrument="daily_diary", repeating=True
    )
