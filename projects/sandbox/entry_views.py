"""The sandbox's own REDCap pages for people: a project's home (its Project Setup's Data Entry
Trigger, and its records) and a data entry form. Saving a form posts the Data Entry Trigger as
REDCap does (entry.py). Served only when the sandbox is on, to signed-in users."""

from __future__ import annotations

import csv

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_http_methods

from projects.sandbox import entry, store
from projects.sandbox.data import (
    SANDBOX_PROJECTS,
    SandboxProject,
    checkbox_name,
    choices,
    export_columns,
)
from projects.sandbox.store import SandboxError
from projects.sandbox.views import sandbox_only


def _project(pid: int) -> SandboxProject:
    project = SANDBOX_PROJECTS.get(pid)
    if project is None:
        raise Http404("The sandbox has no such project.")
    return project


def _origins(request: HttpRequest) -> list[str]:
    """Where the sandbox may post: the origin it is served from, and the site's address."""
    return [f"{request.scheme}://{request.get_host()}", settings.SITE_URL]


def _base_url(request: HttpRequest) -> str:
    """REDCap's `redcap_url`: the sandbox's root as this request reached it."""
    return request.build_absolute_uri(reverse("sandbox-redcap-api")).removesuffix("api/")


def _entry_url(pid: int, record: str, instrument: str, event: str = "") -> str:
    query = {"record": record, "instrument": instrument, **({"event": event} if event else {})}
    return reverse("sandbox-redcap-entry", args=[pid]) + "?" + urlencode(query)


@sandbox_only
@login_required
@require_http_methods(["GET", "POST"])
def project_home(request: HttpRequest, pid: int) -> HttpResponse:
    """Project Setup → Additional customizations → Data Entry Trigger, and the records."""
    project = _project(pid)
    error = ""
    if request.method == "POST":
        try:
            entry.det_url_set(project, request.POST.get("det_url", ""), origins=_origins(request))
        except SandboxError as exc:
            error = exc.message
        else:
            messages.success(
                request,
                "Data Entry Trigger saved."
                if entry.det_url(project)
                else "Data Entry Trigger cleared: saves post nothing.",
            )
            return redirect("sandbox-redcap-project", pid=pid)
    labels = dict(project.instruments)
    columns = [
        (event, form)
        for event in project.event_names()
        for form in project.forms()
        if project.form_in_event(form, event)
    ]
    stored = {(r, e): v for r, e, v in store.rows(project)}
    records = []
    for record in dict.fromkeys(r for r, _, _ in store.rows(project)):
        cells = []
        for event, form in columns:
            values = stored.get((record, event))
            status = values.get(f"{form}_complete", "0") if values else ""
            cells.append(
                {
                    "status": entry.STATUSES.get(status, "") if values else "",
                    "url": _entry_url(pid, record, form, event),
                }
            )
        records.append({"record": record, "cells": cells})
    first_event = project.event_names()[0]
    return render(
        request,
        "projects/sandbox/project.html",
        {
            "project": project,
            "det_url": request.POST.get("det_url", "") if error else entry.det_url(project),
            "error": error,
            "deliveries": entry.deliveries(project),
            "columns": [(event, labels[form]) for event, form in columns],
            "records": records,
            "new_record_url": _entry_url(
                pid, str(store.next_record_id(project)), project.forms()[0], first_event
            ),
        },
    )


def _readable(message: str) -> str:
    """An import's refusal ("record","field","value","problem" a line) as a person reads it."""
    lines = []
    for row in csv.reader(message.splitlines()):
        lines.append(f"{row[1]} “{row[2]}”: {row[3]}." if len(row) == 4 else ", ".join(row))
    return " ".join(lines)


def _widgets(project: SandboxProject, instrument: str, values: dict[str, str]) -> list[dict]:
    widgets = []
    for meta in project.metadata:
        name, kind = meta["field_name"], meta["field_type"]
        if meta["form_name"] != instrument or kind == "descriptive":
            continue
        if name == project.record_id_field:
            continue
        widget = {
            "name": name,
            "label": meta["field_label"],
            "kind": kind,
            "note": meta.get("field_note", ""),
        }
        if kind == "checkbox":
            widget["options"] = [
                {
                    "name": checkbox_name(name, code),
                    "label": label,
                    "checked": values.get(checkbox_name(name, code)) == "1",
                }
                for code, label in choices(meta).items()
            ]
        elif kind in ("radio", "dropdown", "yesno", "truefalse"):
            widget["options"] = [
                {"code": code, "label": label, "selected": values.get(name) == code}
                for code, label in choices(meta).items()
            ]
        else:
            widget["value"] = values.get(name, "")
        widgets.append(widget)
    return widgets


def _posted_values(request: HttpRequest, project: SandboxProject, instrument: str) -> dict:
    originals = {name: original for name, original, _ in export_columns(project)}
    values = {}
    for column in entry.instrument_columns(project, instrument):
        if originals[column] != column:  # a checkbox option: ticked or not
            values[column] = "1" if request.POST.get(column) else "0"
        else:
            values[column] = request.POST.get(column, "").strip()
    return values


@sandbox_only
@login_required
@require_http_methods(["GET", "POST"])
def data_entry(request: HttpRequest, pid: int) -> HttpResponse:
    """One instrument of one record, as REDCap's data entry form; Save posts the trigger."""
    project = _project(pid)
    record = request.GET.get("record", "").strip()
    instrument = request.GET.get("instrument", "")
    event = request.GET.get("event", "") if project.longitudinal else ""
    if not record or len(record) > 100:
        raise Http404("Name a record.")
    try:
        entry.check_form(project, instrument, event)
    except SandboxError as exc:
        raise Http404(exc.message) from exc
    existing = next(
        (v for r, e, v in store.rows(project) if r == record and e == event),
        None,
    )
    values = dict(existing or {})
    error = ""
    status = values.get(f"{instrument}_complete", "0")
    if request.method == "POST":
        posted = _posted_values(request, project, instrument)
        status = request.POST.get("status", "0")
        try:
            entry.record_save(
                project,
                record=record,
                instrument=instrument,
                event=event,
                values=posted,
                status=status,
                username=request.user.email,
                base_url=_base_url(request),
            )
        except SandboxError as exc:
            error = _readable(exc.message)
            values.update(posted)
        else:
            posted_to = entry.det_url(project)
            messages.success(
                request,
                f"Record {record} saved."
                + (
                    " The Data Entry Trigger was posted."
                    if posted_to
                    else " No Data Entry Trigger is set in Project Setup, so nothing was posted."
                ),
            )
            return redirect(_entry_url(pid, record, instrument, event))
    return render(
        request,
        "projects/sandbox/data_entry.html",
        {
            "project": project,
            "record": record,
            "is_new": existing is None,
            "instrument": dict(project.instruments)[instrument],
            "event": event,
            "widgets": _widgets(project, instrument, values),
            "status": status,
            "statuses": entry.STATUSES,
            "error": error,
        },
    )
