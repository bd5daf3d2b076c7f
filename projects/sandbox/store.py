"""The REDCap sandbox's state and behaviour: records, exports, imports and surveys.

Records live in this process's memory, guarded by a lock: imports are visible to later exports
and to the survey pages, and are lost on restart. That suits ``runserver`` and the test live
server (one process); several worker processes would each keep their own copy. Tests call
:func:`reset` for a clean state. Enrollment dates are relative to the day of the reset, so
schedules always have dates in the future.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from projects.logic import Expression
from projects.sandbox.data import (
    CHOICE_TYPES,
    COMPLETE_LABELS,
    SANDBOX_PROJECTS,
    SandboxProject,
    blank_row,
    checkbox_name,
    choices,
    export_columns,
    field_names,
    seed,
)


class SandboxError(Exception):
    """A request REDCap would refuse: ``status`` and REDCap's ``message``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def export_field_names(project: SandboxProject, *, field: str = "") -> list[dict[str, str]]:
    """``exportFieldNames``: one row per export column of each data field (form-complete
    fields are not listed), or of ``field`` alone."""
    metas = [m for m in project.metadata if m["field_type"] != "descriptive"]
    if field and field not in {m["field_name"] for m in metas}:
        raise bad_values("field", [field])
    out = []
    for meta in metas:
        name = meta["field_name"]
        if field and name != field:
            continue
        codes = list(choices(meta)) if meta["field_type"] == "checkbox" else [""]
        for code in codes:
            out.append(
                {
                    "original_field_name": name,
                    "choice_value": code,
                    "export_field_name": checkbox_name(name, code) if code else name,
                }
            )
    return out


# --- The store -------------------------------------------------------------------------------
_lock = threading.RLock()
_rows: dict[int, dict[tuple[str, str], dict[str, str]]] = {}
# Instances of repeating instruments: (record, event, instrument) -> {instance: values}.
_instances: dict[int, dict[tuple[str, str, str], dict[int, dict[str, str]]]] = {}
# Each project's Data Entry Trigger address (Project Setup) and its latest posts, kept like the
# records; see entry.py.
det_urls: dict[int, str] = {}
det_deliveries: dict[int, list] = {}


def reset(*, today: date | None = None) -> None:
    """Forget every import and setting: back to the seed records (dates relative to
    ``today``)."""
    today = today or date.today()
    with _lock:
        _rows.clear()
        _instances.clear()
        det_urls.clear()
        det_deliveries.clear()
        for pid, project in SANDBOX_PROJECTS.items():
            _rows[pid] = seed(project, today)
            _instances[pid] = {}


def project_create(*, pid: int, token: str, title: str) -> SandboxProject:
    """A new sandbox project for REDCap project id ``pid``: the demo's instruments and records
    (a copy of PID 101), answering to ``token``. Kept in this process like the records, so it is
    forgotten on restart (``projects.sandbox.services.sandbox_projects_restore`` brings back the
    ones a project linked). Creating one that exists returns it unchanged."""
    with _lock:
        existing = SANDBOX_PROJECTS.get(pid)
        if existing is not None:
            return existing
        project = SandboxProject(pid=pid, token=token, title=title)
        SANDBOX_PROJECTS[pid] = project
        if _rows:  # else the first reset() seeds it with the others
            _rows[pid] = seed(project, date.today())
            _instances[pid] = {}
        return project


def _project_rows(project: SandboxProject) -> dict[tuple[str, str], dict[str, str]]:
    with _lock:
        if not _rows:
            reset()
        return _rows[project.pid]


def project_for_token(token: str) -> SandboxProject | None:
    found = None
    for project in SANDBOX_PROJECTS.values():
        if hmac.compare_digest(token.upper().encode(), project.token.encode()):
            found = project
    return found


def _record_sort_key(record: str) -> tuple[int, int, str]:
    return (0, int(record), "") if record.isdigit() else (1, 0, record)


def rows(project: SandboxProject) -> list[tuple[str, str, dict[str, str]]]:
    """A copy of every stored row as (record, event, values), in REDCap's export order."""
    order = {name: i for i, name in enumerate(project.event_names())}
    with _lock:
        stored = [(r, e, dict(v)) for (r, e), v in _project_rows(project).items()]
    return sorted(stored, key=lambda x: (_record_sort_key(x[0]), order.get(x[1], 99)))


def record_exists(project: SandboxProject, record: str) -> bool:
    with _lock:
        return any(r == record for r, _ in _project_rows(project))


def bad_values(parameter: str, values: Iterable[str]) -> SandboxError:
    listed = ", ".join(f"'{v}'" for v in values)
    return SandboxError(
        f"The following values in the parameter '{parameter}' are not valid: {listed}"
    )


def data_fields(project: SandboxProject, fields: Sequence[str]) -> list[str]:
    """The fields of a record export, as REDCap reads them: descriptive fields (which hold no
    data, but are in the data dictionary, so clients such as PyCap ask for them) are dropped;
    a name that is not a field at all is refused, as is a list of descriptive fields alone."""
    descriptive = {m["field_name"] for m in project.metadata if m["field_type"] == "descriptive"}
    known = set(field_names(project))
    unknown = [f for f in fields if f not in known and f not in descriptive]
    if unknown:
        raise bad_values("fields", unknown)
    kept = [f for f in fields if f not in descriptive]
    if fields and not kept:
        raise SandboxError(
            'The variables provided in the parameter "fields" are not valid fields that contain '
            "data. This might happen if you only provided variables for Descriptive fields."
        )
    return kept


def check_forms(project: SandboxProject, forms: Sequence[str]) -> None:
    unknown = [f for f in forms if f not in project.forms()]
    if unknown:
        raise bad_values("forms", unknown)


def check_events(project: SandboxProject, events: Sequence[str]) -> None:
    unknown = [e for e in events if project.event(e) is None]
    if unknown:
        raise bad_values("events", unknown)


def _label(project: SandboxProject, column: str, original: str, value: str) -> str:
    if column.endswith("_complete") and column == original:
        return COMPLETE_LABELS.get(value, value)
    meta = project.fields_by_name().get(original)
    if meta is None or meta["field_type"] not in CHOICE_TYPES:
        return value
    if meta["field_type"] == "checkbox":
        return "Checked" if value == "1" else "Unchecked"
    return choices(meta).get(value, value)


def _record_columns(
    project: SandboxProject, fields: Sequence[str], forms: Sequence[str]
) -> list[tuple[str, str]]:
    pk = project.record_id_field
    wanted_fields, wanted_forms = set(fields), set(forms)
    return [
        (name, original)
        for name, original, form in export_columns(project)
        if name != pk
        and ((not fields and not forms) or original in wanted_fields or form in wanted_forms)
    ]


def record_header(
    project: SandboxProject, *, fields: Sequence[str] = (), forms: Sequence[str] = ()
) -> list[str]:
    """The columns of a record export (what a CSV export's header row lists)."""
    fields = data_fields(project, fields)
    columns = _record_columns(project, fields, forms)
    return _head(project, fields, forms) + [name for name, _ in columns]


def export_records(
    project: SandboxProject,
    *,
    records: Sequence[str] = (),
    fields: Sequence[str] = (),
    forms: Sequence[str] = (),
    events: Sequence[str] = (),
    logic: Expression | None = None,
    labels: bool = False,
    survey_fields: bool = False,
) -> list[dict[str, str]]:
    """Flat records as REDCap exports them (see the module docstring for the rules). With
    `survey_fields` (REDCap's exportSurveyFields), each exported survey's completion field is
    followed by `<instrument>_timestamp`: when it was completed, in the server's local time, or
    "[not completed]"."""
    fields = data_fields(project, fields)
    check_forms(project, forms)
    if project.longitudinal:
        check_events(project, events)
    pk = project.record_id_field
    columns = _record_columns(project, fields, forms)
    head = _head(project, fields, forms)
    stored = rows(project)
    by_record: dict[str, dict[str, dict[str, str]]] = {}
    for record, event, values in stored:
        by_record.setdefault(record, {})[event] = values
    out = []
    for record, event, values in stored:
        if records and record not in records:
            continue
        if project.longitudinal and events and event not in events:
            continue
        base = {**values, "redcap_event_name": event} if event else values
        found = [("", "", values)]
        if REPEAT_COLUMNS[0] in head:
            found += instance_rows(project, record=record, event=event)
        for form, instance, row_values in found:
            context = {**base, **{k: v for k, v in row_values.items() if v}} if form else base
            if logic is not None and not logic.evaluate(context, events=by_record[record]):
                continue
            row = {pk: record, "redcap_event_name": event}
            row.update(zip(REPEAT_COLUMNS, (form, str(instance) if form else ""), strict=True))
            stamps = []
            for name, original in columns:
                value = row_values.get(name, "")
                row[name] = _label(project, name, original, value) if labels else value
                form = name.removesuffix("_complete")
                if survey_fields and name.endswith("_complete") and form in project.surveys:
                    stamp = row_values.get(f"{COMPLETED_AT}{form}", "")
                    row[f"{form}_timestamp"] = stamp if value == "2" and stamp else NOT_COMPLETED
                    stamps.append(f"{form}_timestamp")
            out.append({k: row[k] for k in head + [c for c, _ in columns] + stamps})
    return out


REPEAT_COLUMNS = ("redcap_repeat_instrument", "redcap_repeat_instance")
# Where a row keeps when each survey was completed (never an export column of its own).
COMPLETED_AT = "__completed_at__"
NOT_COMPLETED = "[not completed]"


def _completion_stamps(project: SandboxProject, target: dict, values: dict) -> dict[str, str]:
    """The completion times a write sets: a survey's completion field turning to 2 (Complete)
    stamps the moment, in the server's local time, as REDCap's survey timestamp."""
    from django.utils import timezone

    stamps = {}
    for column, value in values.items():
        form = column.removesuffix("_complete")
        completes = column.endswith("_complete") and form in project.surveys
        if completes and value == "2" and target.get(column) != "2":
            stamps[f"{COMPLETED_AT}{form}"] = f"{timezone.localtime():%Y-%m-%d %H:%M:%S}"
    return stamps


def _head(project: SandboxProject, fields: Sequence[str], forms: Sequence[str]) -> list[str]:
    """The columns before the data: the record id, the event (longitudinal projects) and, when
    the export covers a repeating instrument's columns, which instrument and instance a row
    is (blank on a record's own row), as REDCap adds them."""
    head = [project.record_id_field] + (["redcap_event_name"] if project.longitudinal else [])
    covered = (
        {form for _, _, form in export_columns(project)}
        if not fields and not forms
        else (set(forms) | {f for _, original, f in export_columns(project) if original in fields})
    )
    if covered & set(project.repeating):
        head += list(REPEAT_COLUMNS)
    return head


def instance_rows(
    project: SandboxProject, *, record: str, event: str = ""
) -> list[tuple[str, int, dict[str, str]]]:
    """A record's instances of repeating instruments as (instrument, instance, values), in
    instrument order, then by instance."""
    with _lock:
        _project_rows(project)
        stored = _instances.setdefault(project.pid, {})
        return [
            (form, number, dict(values))
            for form in project.repeating
            for number, values in sorted(stored.get((record, event, form), {}).items())
        ]


_YMD = r"\d{4}-\d{2}-\d{2}"
_DECIMALS = {f"number_{n}dp": rf"[+-]?\d+\.\d{{{n}}}" for n in range(1, 5)}
_COMMA_DECIMALS = {f"number_{n}dp_comma_decimal": rf"[+-]?\d+,\d{{{n}}}" for n in range(1, 5)}
# What an import may write for each validation, as REDCap stores it, and REDCap-style words.
VALIDATIONS: dict[str, tuple[str, str]] = {
    **{f"date_{o}": (_YMD, "a date in the format Y-M-D") for o in ("ymd", "mdy", "dmy")},
    **{
        f"datetime_{o}": (_YMD + r" \d{2}:\d{2}", "a datetime in the format Y-M-D H:M")
        for o in ("ymd", "mdy", "dmy")
    },
    **{
        f"datetime_seconds_{o}": (
            _YMD + r" \d{2}:\d{2}:\d{2}",
            "a datetime in the format Y-M-D H:M:S",
        )
        for o in ("ymd", "mdy", "dmy")
    },
    "time": (r"(?:[01]\d|2[0-3]):[0-5]\d", "a time in the format HH:MM"),
    "integer": (r"[+-]?\d+", "an integer"),
    "number": (r"[+-]?(\d+(\.\d*)?|\.\d+)", "a number"),
    **{
        name: (pattern, "a number with those decimal places") for name, pattern in _DECIMALS.items()
    },
    "number_comma_decimal": (r"[+-]?\d+(,\d+)?", "a number with a comma as decimal"),
    **{
        name: (pattern, "a number with those decimal places")
        for name, pattern in _COMMA_DECIMALS.items()
    },
    "email": (r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,63}", "a valid e-mail address"),
    "phone": (
        r"\(?[2-9]\d{2}\)?[ .-]*[2-9]\d{2}[ .-]*\d{4}(?: x\d+)?",
        "a 10-digit US phone number",
    ),
    "zipcode": (r"\d{5}(?:-\d{4})?", "a 5- or 9-digit US ZIP code"),
}


def _value_problem(meta: Mapping[str, str] | None, column: str, value: str) -> str | None:
    if value == "":
        return None
    if meta is None:  # a checkbox option or a form-complete field
        allowed = ("0", "1", "2") if column.endswith("_complete") else ("0", "1")
        return None if value in allowed else f"The value is not valid for {column}"
    single_choice = meta["field_type"] in ("radio", "dropdown", "yesno", "truefalse")
    if single_choice and value not in choices(meta):
        return f"The value is not a valid category for {column}"
    validation = meta["text_validation_type_or_show_slider_number"]
    if meta["field_type"] == "slider":
        validation = "integer"
    elif meta["field_type"] != "text":
        return None
    pattern, words = VALIDATIONS.get(validation, ("", ""))
    if pattern and not re.fullmatch(pattern, value):
        return f"The value must be {words}"
    if validation.startswith("date"):
        try:
            date.fromisoformat(value[:10])
        except ValueError:
            return f"The value must be {words}"
    return None


_DAY_FIRST = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
DATE_FORMATS = {"YMD": "Y-M-D", "MDY": "M/D/Y", "DMY": "D/M/Y"}


def _as_ymd(value: str, date_format: str) -> str:
    """A date (or a datetime's date) in the import's `dateFormat` (MDY: 03/31/2026, DMY:
    31/03/2026) as REDCap stores it (2026-03-31); a value that does not fit is left as it is,
    to be refused."""
    day, _, clock = value.strip().partition(" ")
    found = _DAY_FIRST.fullmatch(day) if date_format in ("MDY", "DMY") else None
    if not found:
        return value
    first, second, year = found.groups()
    month, day = (first, second) if date_format == "MDY" else (second, first)
    return f"{year}-{int(month):02d}-{int(day):02d}" + (f" {clock}" if clock else "")


def next_record_id(project: SandboxProject) -> int:
    """What REDCap's auto-numbering gives the next new record: one more than the highest
    numeric record id."""
    with _lock:
        numbers = [int(r) for r, _ in _project_rows(project) if r.isdigit()]
    return max(numbers, default=0) + 1


def import_records(
    project: SandboxProject,
    data: object,
    *,
    overwrite: bool = False,
    date_format: str = "YMD",
    auto_number: bool = False,
) -> list[tuple[str, str]]:
    """Validate every row, then apply them all; return (record id, id in the data) for each
    record imported, in order. With `auto_number` (REDCap's forceAutoNumber) every record gets
    the next free number, whatever id the data gave it ("new", say)."""
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise SandboxError("The data being imported is not formatted correctly")
    if date_format not in DATE_FORMATS:
        date_format = "YMD"  # as REDCap: anything else is read as YMD
    pk = project.record_id_field
    columns = {name: (original, form) for name, original, form in export_columns(project)}
    metas = project.fields_by_name()
    allowed_extra = {"redcap_event_name"} if project.longitudinal else set()
    allowed_extra |= set(REPEAT_COLUMNS) if project.repeating else set()
    unknown = sorted({k for row in data for k in row} - set(columns) - allowed_extra)
    if unknown:
        raise SandboxError(
            "The following fields were not found in the project as real data fields: "
            + ", ".join(unknown)
        )
    problems: list[str] = []
    changes: list[tuple[str, str, str, str, dict[str, str]]] = []
    for row in data:
        record = str(row.get(pk) or "").strip()
        if not record:
            raise SandboxError(f"The record ID field ({pk}) is missing or blank in some rows")
        event = ""
        if project.longitudinal:
            event = str(row.get("redcap_event_name") or "")
            if project.event(event) is None:
                problems.append(
                    f'"{record}","redcap_event_name","{event}","The event is not valid"'
                )
                continue
        repeat_form, instance, problem = _repeat_target(project, row)
        if problem:
            problems.append(f'"{record}",{problem}')
            continue
        values = {}
        for column, raw in row.items():
            if column in (pk, "redcap_event_name", *REPEAT_COLUMNS):
                continue
            value = "" if raw is None else str(raw)
            original, form = columns[column]
            if value and form != repeat_form and (repeat_form or form in project.repeating):
                where = f"the repeating instrument {repeat_form}" if repeat_form else "a row"
                problems.append(
                    f'"{record}","{column}","{value}","The field belongs to the instrument '
                    f"{form}, not to {where}: give redcap_repeat_instrument and "
                    'redcap_repeat_instance for repeating instruments"'
                )
                continue
            if event and not project.form_in_event(form, event):
                if value:
                    problems.append(
                        f'"{record}","{column}","{value}","The field is not designated '
                        f'to the event {event}"'
                    )
                continue
            meta = metas.get(original) if original == column else None
            if meta and meta["text_validation_type_or_show_slider_number"].startswith("date"):
                value = _as_ymd(value, date_format)
            problem = _value_problem(meta, column, value)
            if problem:
                problems.append(f'"{record}","{column}","{value}","{problem}"')
            elif value or overwrite:
                values[column] = value
        changes.append((record, event, repeat_form, instance, values))
    if problems:
        raise SandboxError("\n".join(problems))
    with _lock:
        renamed: dict[str, str] = {}
        if auto_number:
            following = next_record_id(project)
            for record, *_ in changes:
                if record not in renamed:
                    renamed[record] = str(following)
                    following += 1
        stored = _project_rows(project)
        for record, event, repeat_form, instance, values in changes:
            record_id = renamed.get(record, record)
            target = stored.get((record_id, event))
            if target is None:  # REDCap creates the record
                target = stored[(record_id, event)] = blank_row(project)
                target[pk] = record_id
            if repeat_form:
                target = _instance(project, record_id, event, repeat_form, instance)
            stamps = _completion_stamps(project, target, values)
            target.update(values)
            target.update(stamps)
    originals = list(dict.fromkeys(record for record, *_ in changes))
    return [(renamed.get(record, record), record) for record in originals]


def _repeat_target(project: SandboxProject, row: Mapping[str, object]) -> tuple[str, str, str]:
    """(repeating instrument, instance, problem) of an import row, checked as REDCap does: the
    instrument must repeat, and the instance is a whole number from 1, or "new"."""
    form_column, instance_column = REPEAT_COLUMNS
    form = str(row.get(form_column) or "").strip()
    instance = str(row.get(instance_column) or "").strip()
    problem = ""
    if form and form not in project.repeating:
        problem = (
            f"{form_column} must be the unique form name of a Repeating Instrument. It "
            "currently does not match the unique form name of any Repeating Instruments."
        )
        return form, instance, f'"{form_column}","{form}","{problem}"'
    if not form and instance:
        problem = (
            f"{instance_column} cannot have a value since this instrument or event is not a "
            "repeating instrument or repeating event, respectively. The "
            f"{instance_column} field must be left blank for this row."
        )
    elif form and not (instance == "new" or (instance.isdigit() and int(instance) >= 1)):
        problem = f"{instance_column} must be a whole number of 1 or more, or new"
    return form, instance, f'"{instance_column}","{instance}","{problem}"' if problem else ""


def _instance(
    project: SandboxProject, record: str, event: str, form: str, instance: str
) -> dict[str, str]:
    """The stored values of one instance (created blank); "new" is the next instance."""
    instances = _instances.setdefault(project.pid, {}).setdefault((record, event, form), {})
    number = max(instances, default=0) + 1 if instance == "new" else int(instance)
    if number not in instances:
        instances[number] = blank_row(project, repeat_form=form)
    return instances[number]


# --- Surveys -------------------------------------------------------------------------------
def _code(*parts: object, length: int = 10) -> str:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return re.sub(r"[^A-Za-z0-9]", "", base64.b64encode(digest).decode())[:length]


def survey_code(project: SandboxProject, *, instrument: str, record: str, event: str = "") -> str:
    return _code("survey", project.pid, instrument, record, event)


def queue_code(project: SandboxProject, *, record: str) -> str:
    return _code("queue", project.pid, record)


def access_code(project: SandboxProject, *, instrument: str, record: str, event: str = "") -> str:
    return _code("access", project.pid, instrument, record, event, length=9).upper()


@dataclass(frozen=True)
class SurveyTarget:
    project: SandboxProject
    record: str
    instrument: str | None  # None: the record's survey queue
    event: str = ""


def find_survey(code: str) -> SurveyTarget | None:
    """The survey (or survey queue) a link's ``s``/``sq`` code stands for."""
    for project in SANDBOX_PROJECTS.values():
        for record, event, _ in rows(project):
            if hmac.compare_digest(code, queue_code(project, record=record)):
                return SurveyTarget(project, record, None)
            for instrument in project.surveys:
                if not project.form_in_event(instrument, event or ""):
                    continue
                expected = survey_code(project, instrument=instrument, record=record, event=event)
                if hmac.compare_digest(code, expected):
                    return SurveyTarget(project, record, instrument, event)
    return None


def check_survey(project: SandboxProject, instrument: str, event: str) -> None:
    """REDCap's checks of a survey's instrument and event, in its words."""
    if not instrument:
        raise SandboxError("The parameter 'instrument' is missing")
    if instrument not in project.forms():
        raise SandboxError("Invalid instrument")
    if instrument not in project.surveys:
        raise SandboxError(f"The instrument '{instrument}' has not been enabled as a survey")
    if project.longitudinal:
        if not event:
            raise SandboxError("The parameter 'event' is missing")
        if project.event(event) is None:
            raise SandboxError("Invalid event")
        if not project.form_in_event(instrument, event):
            raise SandboxError(
                f'The instrument "{instrument}" has not been designated for the event "{event}"'
            )


def response_status(project: SandboxProject, values: Mapping[str, str], instrument: str) -> int:
    """0 no response, 1 partial, 2 complete (what the participant list reports)."""
    if values.get(f"{instrument}_complete") == "2":
        return 2
    for name, original, form in export_columns(project):
        if form != instrument or name == f"{instrument}_complete":
            continue
        value = values.get(name, "")
        is_checkbox_option = name != original
        if (value == "1") if is_checkbox_option else (value != ""):
            return 1
    return 0


def participant_list(
    project: SandboxProject, *, instrument: str, event: str, base_url: str
) -> list[dict[str, object]]:
    check_survey(project, instrument, event)
    out = []
    seen: set[str] = set()
    stored = {(r, e): v for r, e, v in rows(project)}
    for record, _, _ in rows(project):
        if record in seen:
            continue
        seen.add(record)
        values = stored.get((record, event), {})
        if instrument in project.repeating:  # the participant list shows instance 1
            values = survey_values(SurveyTarget(project, record, instrument, event))
        status = response_status(project, values, instrument)
        out.append(
            {
                "email": "",
                "email_occurrence": 1,
                "identifier": "",
                "record": record,
                "invitation_sent_status": int(status > 0),
                "invitation_send_time": "",
                "response_status": status,
                "survey_access_code": access_code(
                    project, instrument=instrument, record=record, event=event
                ),
                "survey_link": survey_link(
                    project, instrument=instrument, record=record, event=event, base_url=base_url
                ),
            }
        )
    return out


def survey_link(
    project: SandboxProject, *, instrument: str, record: str, event: str, base_url: str
) -> str:
    code = survey_code(project, instrument=instrument, record=record, event=event)
    return f"{base_url}?s={code}"


def mark_complete(target: SurveyTarget) -> None:
    """What submitting the survey does: the instrument becomes complete for that record."""
    if target.instrument is None:
        raise SandboxError("A survey queue cannot be completed")
    repeats = target.instrument in target.project.repeating  # its link opens instance 1
    import_records(
        target.project,
        [
            {
                target.project.record_id_field: target.record,
                **({"redcap_event_name": target.event} if target.event else {}),
                **(
                    dict(zip(REPEAT_COLUMNS, (target.instrument, "1"), strict=True))
                    if repeats
                    else {}
                ),
                f"{target.instrument}_complete": "2",
            }
        ],
    )


def survey_values(target: SurveyTarget) -> dict[str, str]:
    if target.instrument in target.project.repeating:  # its link opens instance 1
        return next(
            (
                values
                for form, number, values in instance_rows(
                    target.project, record=target.record, event=target.event
                )
                if form == target.instrument and number == 1
            ),
            {},
        )
    for record, event, values in rows(target.project):
        if record == target.record and event == target.event:
            return values
    return {}
