import datetime as dt
from types import SimpleNamespace

import pytest

from messaging import eligibility
from messaging.surveys.fields import instrument_from_metadata
from projects.models import Participant, Project
from projects.sandbox.data import METADATA_KEYS, SANDBOX_PROJECTS
from projects.services import sync
from tests.factories import ALWAYS_OPEN, ProviderLinkFactory

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


@pytest.fixture
def synced(mapped_project, researcher):
    """The demo project synced from the sandbox, texting through the locmem provider."""
    return _synced(mapped_project, researcher)


def _synced(mapped_project, researcher):
    Project.objects.filter(pk=mapped_project.pk).update(**ALWAYS_OPEN)
    ProviderLinkFactory(project=mapped_project)
    run = sync.sync_run_start(project=mapped_project, actor=researcher)
    run.refresh_from_db()
    assert run.status == run.Status.SUCCEEDED, run.error
    textable = Participant.objects.filter(project=mapped_project).filter(eligibility.TEXTABLE)
    return SimpleNamespace(project=mapped_project, people=list(textable.order_by("pk")))
