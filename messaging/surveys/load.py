"""Read a text survey's instrument from REDCap: the data dictionary, and whether it repeats."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from messaging.surveys.fields import Instrument, SurveyError, instrument_from_metadata
from projects.models import Project
from projects.redcap import RedcapError
from projects.services.links import redcap_client_for, redcap_is_longitudinal


def instrument_load(*, project: Project, instrument: str, event: str = "") -> Instrument:
    """The instrument as a text survey would ask it, read from the project's REDCap (the whole
    data dictionary, descriptive fields included, so piping and branching may name any field).

    In a longitudinal project ``event`` must be one of its events and hold the instrument. An
    instrument repeats when REDCap lists it among the repeating instruments (of that event);
    that list needs the token's Project Design right, so it is only asked for when the project
    says it repeats anything. Raises ValidationError in words."""
    try:
        client = redcap_client_for(project)
        info = client.project_info()
        metadata = client.metadata()
        names = {row["instrument_name"]: row["instrument_label"] for row in client.instruments()}
        longitudinal = redcap_is_longitudinal(info)
        events: list[str] | None = None
        if longitudinal:
            events = [row["unique_event_name"] for row in client.events()]
            if event not in events:
                raise ValidationError(
                    "This is a longitudinal project: choose the event the survey belongs to."
                )
            mapping = client.form_event_mapping()
            forms = {row["form"] for row in mapping if row["unique_event_name"] == event}
            if instrument in names and instrument not in forms:
                raise ValidationError(
                    f"The event “{event}” does not have the instrument “{names[instrument]}”."
                )
        repeating = False
        if str(info.get("has_repeating_instruments_or_events", "0")) == "1":
            repeating = any(
                row.get("form_name") == instrument
                and (not longitudinal or row.get("event_name") == event)
                for row in client.repeating_forms_events()
            )
    except RedcapError as exc:
        raise ValidationError(str(exc)) from exc
    if instrument not in names:
        raise ValidationError(f"“{instrument}” is not an instrument of this REDCap project.")
    try:
        return instrument_from_metadata(
            metadata,
            instrument=instrument,
            repeating=repeating,
            events=events,
            label=names[instrument],
        )
    except SurveyError as exc:
        raise ValidationError(str(exc)) from exc
