"""The REDCap sandbox over HTTP: one POST endpoint answering like REDCap's ``/api/``, and the
survey pages its survey links open. Served only when ``settings.SANDBOX_ENABLED`` is on."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from projects.logic import LogicError, parse
from projects.sandbox import store
from projects.sandbox.data import REDCAP_VERSION, SandboxProject, field_names
from projects.sandbox.store import SandboxError

NO_PERMISSION = "You do not have permissions to use the API"


def sandbox_only(view: Callable) -> Callable:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.SANDBOX_ENABLED:
            raise Http404("The REDCap sandbox is off.")
        return view(request, *args, **kwargs)

    return wrapper


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _text(text: str) -> HttpResponse:
    return HttpResponse(text, content_type="text/plain; charset=utf-8")


def _json(body: object) -> JsonResponse:
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


def _classic_refusal(project: SandboxProject, what: str) -> JsonResponse | None:
    if project.longitudinal:
        return None
    return _error(f"You cannot export {what} for classic projects")


# --- Methods ---------------------------------------------------------------------------------
def _version(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _text(REDCAP_VERSION)


def _project(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _json(project.project_info())


def _metadata(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    fields, forms = _array(request, "fields"), _array(request, "forms")
    known = {f["field_name"] for f in project.metadata}
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise store.bad_values("fields", unknown)
    store.check_forms(project, forms)
    return _json(
        [
            dict(row)
            for row in project.metadata
            if (not fields and not forms)
            or row["field_name"] in fields
            or row["form_name"] in forms
        ]
    )


def _field_names(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _json(store.export_field_names(project, field=request.POST.get("field", "").strip()))


def _instruments(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _json(
        [{"instrument_name": n, "instrument_label": label} for n, label in project.instruments]
    )


def _events(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _classic_refusal(project, "events") or _json([e.as_api() for e in project.events])


def _arms(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    return _classic_refusal(project, "arms") or _json([{"arm_num": 1, "name": "Arm 1"}])


def _form_event_mapping(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    refusal = _classic_refusal(project, "form/event mappings")
    return refusal or _json(
        [
            {"arm_num": e.arm_num, "unique_event_name": e.unique_event_name, "form": form}
            for e in project.events
            for form in e.forms
        ]
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
    return _json(
        store.export_records(
            project,
            records=_array(request, "records"),
            fields=_array(request, "fields"),
            forms=_array(request, "forms"),
            events=_array(request, "events"),
            logic=logic,
            labels=request.POST.get("rawOrLabel", "raw") == "label",
        )
    )


def _import(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    try:
        rows = json.loads(request.POST["data"])
    except ValueError:
        raise SandboxError("The data being imported is not formatted correctly") from None
    behavior = request.POST.get("overwriteBehavior", "normal")
    if behavior not in ("normal", "overwrite"):
        raise SandboxError("The value of the parameter 'overwriteBehavior' is not valid")
    ids = store.import_records(project, rows, overwrite=behavior == "overwrite")
    if request.POST.get("returnContent", "count") in ("ids", "auto_ids"):
        return _json(ids)
    return _json({"count": len(ids)})


def _record_param(request: HttpRequest, project: SandboxProject) -> str:
    record = request.POST.get("record", "").strip()
    if not record:
        raise SandboxError("You must provide a record name")
    if not store.record_exists(project, record):
        raise SandboxError(f"The record '{record}' does not exist")
    return record


def _survey_link(request: HttpRequest, project: SandboxProject) -> HttpResponse:
    instrument = request.POST.get("instrument", "").strip()
    event = request.POST.get("event", "").strip() if project.longitudinal else ""
    store.check_survey(project, instrument, event)
    record = _record_param(request, project)
    if request.POST.get("repeat_instance", "1").strip() != "1":
        raise SandboxError("The instrument is not repeating, so repeat_instance must be 1")
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
    return _json(
        store.participant_list(
            project, instrument=instrument, event=event, base_url=_survey_base(request)
        )
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
    "surveyLink": _survey_link,
    "surveyQueueLink": _survey_queue_link,
    "participantList": _participant_list,
}


@csrf_exempt  # an API called with a token, like REDCap's own
@sandbox_only
def api(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _error("The API accepts POST requests only", status=405)
    token = request.POST.get("token", "").strip()
    if not token:
        return _error(NO_PERMISSION, status=401)
    project = store.project_for_token(token)
    if project is None:
        return _error(NO_PERMISSION, status=403)
    method = METHODS.get(request.POST.get("content", ""))
    if method is None:
        return _error("The value of the parameter 'content' is not valid")
    if request.POST.get("format", "json") != "json":
        return _error("The sandbox answers format=json only")
    try:
        return method(request, project)
    except SandboxError as exc:
        return _error(exc.message, status=exc.status)


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
        store.mark_complete(target)
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
