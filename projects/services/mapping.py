"""Field mapping: which REDCap fields hold the phone, consent, time zone and the rest."""

import zoneinfo
from dataclasses import dataclass, field

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import transaction

from projects import logic
from projects.access import EDITOR, project_role_require
from projects.models import FieldMapping, Project
from projects.redcap import RedcapError, RedcapRequestError
from projects.selectors import project_field_mapping
from projects.services.links import redcap_client_for, redcap_is_longitudinal
from projects.signals import audit

DATE_VALIDATIONS = frozenset({"date_ymd", "date_mdy", "date_dmy"})
CODED_TYPES = frozenset({"yesno", "truefalse", "radio", "dropdown", "checkbox"})


@dataclass(frozen=True)
class FieldKind:
    """What a mapped REDCap field may be: its field types and, for dates, its validations."""

    holds: str  # what the field holds, in words: "the mobile number"
    types: frozenset[str]
    words: str  # the types, in words: "a text field"
    validations: frozenset[str] | None = None


# One list for the mapping form (what it offers) and the service (what it accepts).
FIELD_KINDS = {
    "phone_field": FieldKind("the mobile number", frozenset({"text"}), "a text field"),
    "consent_field": FieldKind(
        "consent to texts",
        CODED_TYPES | {"text"},
        "a yes/no, true/false, radio, dropdown, checkbox or text field",
    ),
    "time_zone_field": FieldKind("the time zone", frozenset({"text"}), "a text field"),
    "first_name_field": FieldKind("the first name", frozenset({"text"}), "a text field"),
    "optout_field": FieldKind(
        "the opt-out flag", CODED_TYPES, "a yes/no, true/false, radio, dropdown or checkbox field"
    ),
    "date_fields": FieldKind(
        "a date to schedule from",
        frozenset({"text"}),
        "a text field validated as a date (Y-M-D, M-D-Y or D-M-Y)",
        validations=DATE_VALIDATIONS,
    ),
}

# What a coordinator chooses on the field-mapping page (the form's fields, the project's time
# zone aside).
MAPPING_FIELDS = (
    "phone_field",
    "consent_field",
    "consent_value",
    "time_zone_field",
    "first_name_field",
    "optout_field",
    "optout_value",
    "date_fields",
    "withdrawn_logic",
    "event",
    "phone_region",
)


@dataclass(frozen=True)
class Dictionary:
    """What the mapping form offers, read from the REDCap data dictionary."""

    fields: dict[str, dict]
    events: list[dict]
    is_longitudinal: bool
    # Longitudinal projects: the forms (instruments) each event has, by unique event name
    # (REDCap's form-event mapping). A field outside its event's forms exports blank.
    event_forms: dict[str, frozenset[str]] = field(default_factory=dict)

    def choices(
        self, *, types: frozenset[str] | None = None, validations: frozenset[str] | None = None
    ):
        out = []
        for name, meta in self.fields.items():
            if types and meta["field_type"] not in types:
                continue
            validation = meta.get("text_validation_type_or_show_slider_number", "")
            if validations is not None and validation not in validations:
                continue
            label = meta.get("field_label", "").strip() or name
            out.append((name, f"{name} — {label[:60]}"))
        return out

    def choices_for(self, attr: str) -> list[tuple[str, str]]:
        """The fields the mapping may name for `attr` (a key of FIELD_KINDS)."""
        kind = FIELD_KINDS[attr]
        return self.choices(types=kind.types, validations=kind.validations)

    def kind_problem(self, attr: str, name: str) -> str | None:
        """Why the field `name` cannot serve as `attr`, in words; None when it can."""
        kind, meta = FIELD_KINDS[attr], self.fields[name]
        field_type = meta["field_type"]
        validation = meta.get("text_validation_type_or_show_slider_number", "")
        if attr == "date_fields":
            if field_type in kind.types and validation in kind.validations:
                return None
            return (
                f"{name} is not a date field, so messages cannot be scheduled from it: choose "
                f"{kind.words}."
            )
        if field_type in kind.types:
            return None
        return f"{name} is a {field_type} field; {kind.holds} must be in {kind.words}."

    def event_problem(self, event: str, name: str) -> str | None:
        """Why the field `name` holds nothing in `event` (its form is not in that event), in
        words; None when it does, or when the project has no form-event mapping to check."""
        forms = self.event_forms.get(event)
        if forms is None:
            return None
        form = self.fields[name].get("form_name", "")
        if form in forms:
            return None
        label = next(
            (e.get("event_name") for e in self.events if e["unique_event_name"] == event), ""
        )
        event_words = f"“{label}” ({event})" if label and label != event else f"“{event}”"
        return (
            f"{name} is on the form “{form}”, which the event {event_words} does not have, so "
            "REDCap would export it blank for every record. Choose the event that holds that "
            "form, or another field."
        )

    def coded_values(self, field: str) -> list[tuple[str, str]]:
        meta = self.fields.get(field, {})
        if meta.get("field_type") == "yesno":
            return [("1", "Yes"), ("0", "No")]
        if meta.get("field_type") == "truefalse":
            return [("1", "True"), ("0", "False")]
        raw = meta.get("select_choices_or_calculations", "")
        pairs = []
        for part in raw.split("|"):
            code, _, label = part.partition(",")
            if code.strip():
                pairs.append((code.strip(), label.strip()))
        return pairs


def dictionary_from_metadata(
    metadata: list[dict],
    *,
    events: list[dict],
    is_longitudinal: bool,
    form_event_mapping: list[dict] | None = None,
) -> Dictionary:
    """A Dictionary from REDCap's metadata export (descriptive fields hold no data) and, for a
    longitudinal project, its form-event mapping export."""
    fields = {row["field_name"]: row for row in metadata if row.get("field_type") != "descriptive"}
    event_forms: dict[str, set[str]] = {}
    for row in form_event_mapping or []:
        event_forms.setdefault(str(row.get("unique_event_name", "")), set()).add(
            str(row.get("form", ""))
        )
    return Dictionary(
        fields=fields,
        events=list(events),
        is_longitudinal=is_longitudinal,
        event_forms={event: frozenset(forms) for event, forms in event_forms.items()},
    )


def dictionary_load(*, project: Project) -> Dictionary:
    """Read the data dictionary (and events) from REDCap; ValidationError in words on failure."""
    try:
        client = redcap_client_for(project)
        metadata = client.metadata()
        info = client.project_info()
        longitudinal = redcap_is_longitudinal(info)
        events = client.events() if longitudinal else []
        form_events = client.form_event_mapping() if longitudinal else []
    except RedcapError as exc:
        raise ValidationError(str(exc)) from exc
    return dictionary_from_metadata(
        metadata,
        events=events,
        is_longitudinal=longitudinal,
        form_event_mapping=form_events,
    )


def _validate(mapping: FieldMapping, dictionary: Dictionary, time_zone: str) -> None:
    errors: dict[str, str] = {}
    fields = dictionary.fields

    def need(attr: str, words: str, *, optional: bool = False) -> str:
        """The field mapped as `attr` when it exists and is of a kind that can hold it."""
        value = getattr(mapping, attr)
        if not value:
            if not optional:
                errors[attr] = f"Choose the {words}."
            return ""
        if value not in fields:
            errors[attr] = f"“{value}” is not a field in this project's data dictionary."
            return ""
        problem = dictionary.kind_problem(attr, value)
        if problem:
            errors[attr] = problem
            return ""
        return value

    need("phone_field", "field with the participant's mobile number")
    consent = need("consent_field", "field that records consent to texts")
    if consent:
        coded = dictionary.coded_values(consent)
        if coded and mapping.consent_value not in {code for code, _ in coded}:
            labels = ", ".join(f"{c} ({label})" for c, label in coded)
            errors["consent_value"] = (
                f"“{mapping.consent_value}” is not one of the coded values of {consent}: {labels}."
            )
        elif not mapping.consent_value:
            errors["consent_value"] = "Give the value that means “consented”."
    need("time_zone_field", "time-zone field", optional=True)
    need("first_name_field", "first-name field", optional=True)
    optout = need("optout_field", "opt-out field", optional=True)
    if not optout:
        mapping.optout_value = mapping.optout_value or "1"
    else:
        mapping.optout_value = (mapping.optout_value or "").strip()
        coded = dictionary.coded_values(optout)
        if not mapping.optout_value:
            errors["optout_value"] = "Give the value that means “opted out”."
        elif coded and mapping.optout_value not in {code for code, _ in coded}:
            labels = ", ".join(f"{c} ({label})" for c, label in coded)
            errors["optout_value"] = (
                f"“{mapping.optout_value}” is not one of the coded values of {optout}: {labels}."
            )
    for name in mapping.date_fields:
        if name not in fields:
            errors["date_fields"] = f"“{name}” is not a field in this project's data dictionary."
        elif problem := dictionary.kind_problem("date_fields", name):
            errors["date_fields"] = problem
    if mapping.withdrawn_logic.strip():
        try:
            used = logic.fields_used(mapping.withdrawn_logic)
        except logic.LogicError as exc:
            errors["withdrawn_logic"] = f"REDCap cannot read this logic: {exc}"
        else:
            unknown = sorted(f for f in used if f not in fields)
            if unknown:
                errors["withdrawn_logic"] = "Unknown field(s) in the logic: " + ", ".join(unknown)
    if dictionary.is_longitudinal:
        names = {e["unique_event_name"] for e in dictionary.events}
        if mapping.event not in names:
            errors["event"] = (
                "This is a longitudinal project: choose the event that holds these fields."
            )
        else:
            # Each mapped field must be on a form the chosen event has (REDCap's form-event
            # mapping): elsewhere it exports blank, and every record would look "no phone".
            mapped = [
                (attr, getattr(mapping, attr)) for attr in FIELD_KINDS if attr != "date_fields"
            ]
            mapped += [("date_fields", name) for name in mapping.date_fields]
            for attr, name in mapped:
                if attr in errors or not name or name not in fields:
                    continue
                if problem := dictionary.event_problem(mapping.event, name):
                    errors[attr] = problem
    else:
        mapping.event = ""
    if mapping.phone_region and phonenumbers.country_code_for_region(mapping.phone_region) == 0:
        errors["phone_region"] = (
            f"“{mapping.phone_region}” is not a two-letter region code such as US."
        )
    if time_zone not in zoneinfo.available_timezones():
        errors["time_zone"] = "Choose a time zone such as America/Chicago."
    if errors:
        raise ValidationError(errors)


def field_mapping_save(
    *,
    project: Project,
    actor,
    data: dict,
    dictionary: Dictionary | None = None,
    ask_redcap_about_logic: bool = True,
) -> FieldMapping:
    """Validate the choices against the REDCap dictionary, then save them (and the defaults).

    "Withdrawn" logic is parsed here and then tried on REDCap itself, the judge of its own
    logic. `ask_redcap_about_logic=False` is for the sandbox demo seed only (no web server is
    running yet), where the sandbox would evaluate the logic with this same parser.
    """
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="map its fields")
    dictionary = dictionary or dictionary_load(project=project)
    mapping = project_field_mapping(project=project) or FieldMapping(project=project)
    for attr in MAPPING_FIELDS:
        if attr in data:
            empty = [] if attr == "date_fields" else ""
            setattr(mapping, attr, data[attr] if data[attr] is not None else empty)
    mapping.phone_region = (mapping.phone_region or "").upper()
    time_zone = data.get("time_zone") or project.time_zone
    _validate(mapping, dictionary, time_zone)
    if mapping.withdrawn_logic.strip() and ask_redcap_about_logic:
        # REDCap is the judge of its own logic: ask it once before saving.
        try:
            redcap_client_for(project).records(
                fields=[next(iter(dictionary.fields))],
                filter_logic=mapping.withdrawn_logic,
                events=[mapping.event] if mapping.event else None,
            )
        except RedcapRequestError as exc:
            raise ValidationError(
                {"withdrawn_logic": f"REDCap rejected this logic: {exc}"}
            ) from exc
        except RedcapError as exc:
            raise ValidationError(
                f"The “withdrawn” logic could not be checked with REDCap: {exc}"
            ) from exc
    with transaction.atomic():
        project.time_zone = time_zone
        project.save(update_fields=["time_zone"])
        mapping.save()
        audit.send(
            sender=FieldMapping,
            actor=actor,
            action="field_mapping.saved",
            obj=project,
            message="Field mapping saved: " + ", ".join(f"{f}" for f in mapping.redcap_fields),
        )
    return mapping
