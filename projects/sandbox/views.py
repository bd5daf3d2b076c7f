"""The REDCap sandbox over HTTP: one POST endpoint answering like REDCap's ``/api/``, and the
survey pages its survey links open. Served only when ``settings.SANDBOX_ENABLED`` is on."""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Callable, Iterable
from xml.sax.saxutils import escape

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from projects.logic import LogicError, parse
from projects.sandbox import entry, store
from projects.sandbox.data import REDCAP_VERSION, SandboxProject, field_names
from projects.sandbox.store import SandboxError

# REDCap's own words (docs/redcap.md, "Errors").
NO_PERMISSION = "You do not have permissions to use the API"
UNAUTHORIZED = "The API token was missing or incorrect"
UNKNOWN_CONTENT = 'The value of the parameter "content" is not valid'
NOT_IMPLEMENTED = "The requested method is not implemented."
NO_REPEATING = (
    "You cannot export repeating instruments and events because the project does not contain "
    "any repeating instruments and events"
)
DATA_FORMATS = ("json", "csv")  # what the sandbox writes; REDCap also writes xml and odm


def sandbox_only(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.SANDBOX_ENABLED:
            raise Http404("The REDCap sandbox is off.")
        return view(request, *args, **kwargs)

    return wrapper


def formats(post) -> tuple[str, str]:
    """(format, returnFormat) as REDCap reads them: `format` is json, csv, odm or else xml
    (REDCap's default); `returnFormat`, the format of errors and import results, is json or
    csv, else xml, and defaults to `format`."""
    data_format = post.get("format", "")
    if data_format not in ("json", "csv", "odm"):
        data_format = "xml"
    return_format = (post.get("returnFormat", "") or data_format).lower()
    if return_format not in ("json", "csv"):
        return_format = "xml"
    return data_format, return_format


def error_response(message: str, status: int, return_format: str) -> HttpResponse:
    """An error as REDCap sends it in each returnFormat."""
    if return_format == "json":
        return JsonResponse({"error": message}, status=status)
    if return_format == "csv":
        return HttpResponse(
            f"ERROR: {message}", status=status, content_type="text/csv; charset=utf-8"
        )
    body = f'<?xml version="1.0" encoding="UTF-8" ?><hash><error>{escape(message)}</error></hash>'
    return HttpResponse(body, status=status, content_type="text/xml; charset=utf-8")


def _text(text: str) -> HttpResponse:
    return HttpResponse(text, content_type="text/plain; charset=utf-8")


def _csv(rows: Iterable[dict], header: list[str] | None = None) -> str:
    rows = list(rows)
    header = header if header is not None else (list(rows[0]) if rows else [])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(header)
    for row in rows:
        writer.writerow(["" if row.get(key) is None else row.get(key) for key in header])
    return out.getvalue()


def _data(request: HttpRequest, body: object, header: list[str] | None = None) -> HttpResponse:
    """An export in the requested format: json, or csv (a header row, then one row each)."""
    if request.redcap_format == "csv":
        rows = [body] if isinstance(body, dict) else body
        return HttpResponse(_csv(rows, header), content_type="text/csv; charset=utf-8")
    return JsonResponse(body, safe=False)


def _array(request: HttpRequest, name: str) -> list[str]:
    """``name[0]=a&name[1]=b`` (or ``name[]=a``), else a comma-separated ``name=a,b``."""
    indexed = []
    for key in request.POST:
        match = re.fullmatch(rf"{re.escape(name)}\[(\d*)\]", key)
        if match:
            for n, value in enumerate(request.POST.getlist(key)):
                indexed.append((int(match.group(1) or 0), n, value.strip()))
    if indexed:
        return [value for *_, value in sorted(indexed) if value]
    return [v.strip() for v in request.POST.get(name, "").split(",") if v.strip()]


def _survey_base(request: HttpRequest) -> str:
    # Links point at the host the API was called on: SITE_URL under `make run` (the demo's
    # instance URL is SITE_URL/sandbox/redcap/api/), the live server's address in tests.
    return request.build_absolute_uri(reverse("sandbox-redcap-survey"))


def _classic_refusal(project: SandboxProject, what: str) -> None:
    if not project.longitudinal:
        raise SandboxError(f"You cannot export {what} for classic projects")


# --- Methods ---------------------------------------------------------------------------------
def _version(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _text(REDCAP_VERSION)


def _project(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _data(request, project.project_info())


def _metadata(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    fields, forms = _array(request, "fields"), _array(request, "forms")
    known = {f["field_name"] for f in project.metadata}
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise store.bad_values("fields", unknown)
    store.check_forms(project, forms)
    return _data(
        request,
        [
            dict(row)
            for row in project.metadata
            if (not fields and not forms)
            or row["field_name"] in fields
            or row["form_name"] in forms
        ],
    )


def _field_names(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    field = request.POST.get("field", "").strip()
    return _data(
        request,
        store.export_field_names(project, field=field),
        ["original_field_name", "choice_value", "export_field_name"],
    )


def _instruments(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _data(
        request,
        [{"instrument_name": n, "instrument_label": label} for n, label in project.instruments],
    )


def _events(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    _classic_refusal(project, "events")
    return _data(request, [e.as_api() for e in project.events])


def _arms(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    _classic_refusal(project, "arms")
    return _data(request, [{"arm_num": 1, "name": "Arm 1"}])


def _form_event_mapping(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    _classic_refusal(project, "form/event mappings")
    return _data(
        request,
        [
            {"arm_num": e.arm_num, "unique_event_name": e.unique_event_name, "form": form}
            for e in project.events
            for form in e.forms
        ],
    )


def _records(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    if request.POST.get("type", "flat") != "flat":
        raise SandboxError("The sandbox exports and imports type=flat only")
    if "data" in request.POST:
        return _import(request, project)
    logic = None
    filter_logic = request.POST.get("filterLogic", "").strip()
    if filter_logic:
        try:
            logic = parse(
                filter_logic,
                fields=field_names(project),
                events=[e.unique_event_name for e in project.events] or None,
            )
        except LogicError as exc:
            raise SandboxError(exc.message) from exc
    fields, forms = _array(request, "fields"), _array(request, "forms")
    rows = store.export_records(
        project,
        records=_array(request, "records"),
        fields=fields,
        forms=forms,
        events=_array(request, "events"),
        logic=logic,
        labels=request.POST.get("rawOrLabel", "raw") == "label",
        survey_fields=_truthy(request.POST.get("exportSurveyFields", "")),
    )
    return _data(request, rows, store.record_header(project, fields=fields, forms=forms))


def _truthy(value: str) -> bool:
    """REDCap's reading of a boolean parameter: "1" or "true" in any case."""
    return value == "1" or value.lower() == "true"


def _import(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    raw = request.POST["data"]
    if request.redcap_format == "csv":
        rows: object = list(csv.DictReader(io.StringIO(raw)))
    else:
        try:
            rows = json.loads(raw)
        except ValueError:
            raise SandboxError("The data being imported is not formatted correctly") from None
    behavior = request.POST.get("overwriteBehavior", "normal")
    if behavior not in ("normal", "overwrite"):
        raise SandboxError("The value of the parameter 'overwriteBehavior' is not valid")
    auto_number = _truthy(request.POST.get("forceAutoNumber", ""))
    imported = store.import_records(
        project,
        rows,
        overwrite=behavior == "overwrite",
        date_format=request.POST.get("dateFormat", "YMD"),
        auto_number=auto_number,
    )
    content = request.POST.get("returnContent", "count").lower()
    if content not in ("count", "ids", "auto_ids", "nothing"):
        content = "count"
    if content == "auto_ids" and not auto_number:
        content = "count"
    return _import_answer(request.redcap_return_format, content, imported)


def _import_answer(return_format: str, content: str, imported: list[tuple[str, str]]):
    """What an import answers, as REDCap writes it in each returnFormat (docs/redcap.md)."""
    ids = [new for new, _ in imported]
    pairs = [f"{new},{old}" for new, old in imported]  # auto_ids: "new id,id in the data"
    if content == "nothing":
        return HttpResponse("", content_type="text/plain; charset=utf-8")
    if return_format == "json":
        body = {"count": len(ids)} if content == "count" else ids if content == "ids" else pairs
        return JsonResponse(body, safe=False)
    if return_format == "csv":
        if content == "count":
            text = str(len(ids))
        elif content == "ids":
            text = "\n".join(["id", *ids])
        else:
            text = "\n".join(["id,original_id", *pairs])
        return HttpResponse(text, content_type="text/csv; charset=utf-8")
    head = '<?xml version="1.0" encoding="UTF-8" ?>'
    if content == "count":
        xml = f"{head}<count>{len(ids)}</count>"
    else:
        items = ids if content == "ids" else pairs
        xml = head + "<ids>" + "".join(f"<id>{escape(i)}</id>" for i in items) + "</ids>"
    return HttpResponse(xml, content_type="text/xml; charset=utf-8")


def _repeating(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    if not project.repeating:
        raise SandboxError(NO_REPEATING)
    # Repeating instruments only (no repeating events); event_name only when longitudinal.
    return _data(
        request,
        [
            {
                **({"event_name": e} if project.longitudinal else {}),
                "form_name": form,
                "custom_form_label": "",
            }
            for form in project.repeating
            for e in (project.event_names() if project.longitudinal else [""])
            if not project.longitudinal or project.form_in_event(form, e)
        ],
    )


def _record_param(request: HttpRequest, project: SandboxProject) -> str:
    record = request.POST.get("record", "").strip()
    if not record:
        raise SandboxError("The parameter 'record' is missing")
    if not store.record_exists(project, record):
        raise SandboxError(f'The record "{record}" does not exist')
    return record


def _survey_link(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    # REDCap checks the record first, then the instrument and event; on an instrument that
    # does not repeat it reads any repeat_instance as 1.
    record = _record_param(request, project)
    instrument = request.POST.get("instrument", "").strip()
    event = request.POST.get("event", "").strip() if project.longitudinal else ""
    store.check_survey(project, instrument, event)
    return _text(
        store.survey_link(
            project,
            instrument=instrument,
            record=record,
            event=event,
            base_url=_survey_base(request),
        )
    )


def _survey_queue_link(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    record = _record_param(request, project)
    return _text(f"{_survey_base(request)}?sq={store.queue_code(project, record=record)}")


def _participant_list(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    instrument = request.POST.get("instrument", "").strip()
    event = request.POST.get("event", "").strip() if project.longitudinal else ""
    return _data(
        request,
        store.participant_list(
            project, instrument=instrument, event=event, base_url=_survey_base(request)
        ),
    )


METHODS: dict[str, Callable[[HttpRequest, SandboxProject], HttpResponse]] = {
    "version": _version,
    "project": _project,
    "metadata": _metadata,
    "exportFieldNames": _field_names,
    "instrument": _instruments,
    "event": _events,
    "arm": _arms,
    "formEventMapping": _form_event_mapping,
    "record": _records,
    "repeatingFormsEvents": _repeating,
    "surveyLink": _survey_link,
    "surveyQueueLink": _survey_queue_link,
    "participantList": _participant_list,
}
# Methods whose answer is plain text whatever `format` says (REDCap ignores it for them).
TEXT_METHODS = {"version", "surveyLink", "surveyQueueLink"}


@csrf_exempt  # an API called with a token, like REDCap's own
@sandbox_only
def api(request: HttpRequest) -> HttpResponse:
    """REDCap's API over the sandbox's projects: REDCap's checks in REDCap's order (method,
    token, content, format), its answers in `format`, its errors in `returnFormat`. Content
    REDCap has but the sandbox does not implement (users, logging, files...) is answered as
    REDCap answers a content it does not know (docs/redcap.md)."""
    request.redcap_format, request.redcap_return_format = formats(request.POST)

    def refuse(message: str, status: int = 400) -> HttpResponse:
        return error_response(message, status, request.redcap_return_format)

    if request.method != "POST":
        return refuse(NOT_IMPLEMENTED, status=501)
    token = request.POST.get("token", "").strip()
    if not token:
        return refuse(UNAUTHORIZED, status=401)
    project = store.project_for_token(token)
    if project is None:
        return refuse(NO_PERMISSION, status=403)
    content = request.POST.get("content", "")
    method = METHODS.get(content)
    if method is None:
        return refuse(UNKNOWN_CONTENT)
    if content not in TEXT_METHODS and request.redcap_format not in DATA_FORMATS:
        return refuse(
            f"The REDCap sandbox writes format=json or format=csv; format="
            f"{request.redcap_format} (REDCap's default when none is given) is not available "
            "in the sandbox."
        )
    try:
        return method(request, project)
    except SandboxError as exc:
        return refuse(exc.message, status=exc.status)


@sandbox_only
@require_http_methods(["GET", "POST"])
def survey(request: HttpRequest) -> HttpResponse:
    """The page a survey link opens: which survey, for which record, and a button to finish."""
    code = request.GET.get("s") or request.GET.get("sq") or ""
    target = store.find_survey(code) if code else None
    if target is None:
        raise Http404("This survey link is not valid.")
    project = target.project
    labels = dict(project.instruments)
    if target.instrument is None:
        base = reverse("sandbox-redcap-survey")
        surveys = []
        for record, event, values in store.rows(project):
            if record != target.record:
                continue
            for instrument in project.surveys:
                if project.form_in_event(instrument, event):
                    code = store.survey_code(
                        project, instrument=instrument, record=record, event=event
                    )
                    surveys.append(
                        {
                            "label": labels[instrument],
                            "event": event,
                            "status": store.response_status(project, values, instrument),
                            "url": f"{base}?s={code}",
                        }
                    )
        return render(
            request,
            "projects/sandbox/survey_queue.html",
            {"project": project, "record": target.record, "surveys": surveys},
        )
    if request.method == "POST":
        # Submitting completes the survey; "Save & Return Later" keeps it partial. Both are
        # saves by a person, so both post the Data Entry Trigger (entry.py).
        partial = "partial" in request.POST
        if not partial:
            store.mark_complete(target)
        entry.det_post(
            project,
            record=target.record,
            instrument=target.instrument,
            event=target.event,
            status="0" if partial else "2",
            username=entry.SURVEY_RESPONDENT,
            base_url=request.build_absolute_uri(reverse("sandbox-redcap-api")).removesuffix("api/"),
        )
        return redirect(f"{reverse('sandbox-redcap-survey')}?s={code}")
    status = store.response_status(project, store.survey_values(target), target.instrument)
    return render(
        request,
        "projects/sandbox/survey.html",
        {
            "project": project,
            "record": target.record,
            "event": target.event,
            "instrument": labels[target.instrument],
            "status": status,
        },
    )
