"""Saving a record as a person does in REDCap, and the Data Entry Trigger post that follows.

REDCap posts a project's Data Entry Trigger after every interactive save (a data entry form, a
survey page, a partial save included, a new record) and never after an import (API, CSV,
mobile app): docs/redcap.md, "The Data Entry Trigger". The sandbox does the same: its data
entry and survey pages call `record_save` and `det_post`; the API's import does not.

Posts go out from a small pool of threads, so a save never waits for the receiver. Each
answer is kept (the last DELIVERIES_KEPT per project, for the sandbox's Project Setup page)
and otherwise ignored, as REDCap ignores it. The sandbox posts only to this site: the address
must start with the origin the sandbox is served from, or SITE_URL (no free-form URLs, even in
development).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from projects.sandbox import store
from projects.sandbox.data import REDCAP_VERSION, SandboxProject, export_columns
from projects.sandbox.store import SandboxError

DELIVERY_TIMEOUT = 30.0  # seconds
DELIVERIES_KEPT = 20
SURVEY_RESPONDENT = "[survey respondent]"  # the user name REDCap gives a survey's saves
STATUSES = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-det")


@dataclass(frozen=True)
class Delivery:
    at: datetime.datetime
    record: str
    instrument: str
    answer: str  # the HTTP status, or why there was none
    detail: str  # the start of the receiver's answer


def det_url(project: SandboxProject) -> str:
    return store.det_urls.get(project.pid, "")


def det_url_set(project: SandboxProject, url: str, *, origins: Iterable[str]) -> None:
    """Set (or, with "", clear) the project's Data Entry Trigger, as Project Setup does. The
    sandbox posts only to `origins` (this site): anything else is refused."""
    url = url.strip()
    if url:
        allowed = sorted({o.rstrip("/") for o in origins if o})
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if (
            len(url) > 500
            or parts.scheme not in ("http", "https")
            or parts.username
            or parts.password
            or origin not in allowed
        ):
            raise SandboxError(
                "The sandbox posts its Data Entry Trigger only to this site ("
                + " or ".join(allowed)
                + "). Paste the address StudyText shows on the project's REDCap page."
            )
    with store._lock:
        if url:
            store.det_urls[project.pid] = url
        else:
            store.det_urls.pop(project.pid, None)


def deliveries(project: SandboxProject) -> list[Delivery]:
    """The project's latest posts, newest first."""
    with store._lock:
        return list(store.det_deliveries.get(project.pid, []))


def instrument_columns(project: SandboxProject, instrument: str) -> list[str]:
    """The columns a data entry form of `instrument` writes (not the record id, not its
    status)."""
    return [
        name
        for name, _, form in export_columns(project)
        if form == instrument and name not in (project.record_id_field, f"{instrument}_complete")
    ]


def check_form(project: SandboxProject, instrument: str, event: str) -> None:
    """REDCap's checks of a data entry form's instrument and event, in its words."""
    if instrument not in project.forms():
        raise SandboxError("Invalid instrument")
    if project.longitudinal:
        if project.event(event) is None:
            raise SandboxError("Invalid event")
        if not project.form_in_event(instrument, event):
            raise SandboxError(
                f'The instrument "{instrument}" has not been designated for the event "{event}"'
            )


def record_save(
    project: SandboxProject,
    *,
    record: str,
    instrument: str,
    values: Mapping[str, str],
    status: str,
    username: str,
    base_url: str,
    event: str = "",
) -> Future | None:
    """Save one instrument of one record as its data entry form does: every field of the form
    is written (a blank erases) with the form's status; a new record id creates the record.
    Then post the Data Entry Trigger. A refused value saves nothing (SandboxError, REDCap's
    words). Returns the post's future (None when no trigger is set)."""
    record = record.strip()
    if not record or len(record) > 100:
        raise SandboxError("The record name is missing or too long")
    check_form(project, instrument, event)
    if status not in STATUSES:
        raise SandboxError("The form status must be 0 (Incomplete), 1 (Unverified) or 2 (Complete)")
    columns = instrument_columns(project, instrument)
    unknown = sorted(set(values) - set(columns))
    if unknown:
        raise store.bad_values("fields", unknown)
    row = {
        project.record_id_field: record,
        **{column: values.get(column, "") for column in columns},
        f"{instrument}_complete": status,
    }
    if project.longitudinal:
        row["redcap_event_name"] = event
    store.import_records(project, [row], overwrite=True)
    return det_post(
        project,
        record=record,
        instrument=instrument,
        event=event,
        status=status,
        username=username,
        base_url=base_url,
    )


def det_post(
    project: SandboxProject,
    *,
    record: str,
    instrument: str,
    event: str,
    status: str,
    username: str,
    base_url: str,
) -> Future | None:
    """Post the project's Data Entry Trigger (if one is set) with REDCap's fields, from the
    pool. `base_url` is the sandbox's root ("…/sandbox/redcap/"), REDCap's `redcap_url`."""
    url = det_url(project)
    if not url:
        return None
    data = {
        "redcap_url": base_url,
        "project_url": f"{base_url}redcap_v{REDCAP_VERSION}/index.php?pid={project.pid}",
        "project_id": str(project.pid),
        "username": username,
        "record": record,
        "instrument": instrument,
        # REDCap sends these two in projects with repeating instruments or events; the sandbox
        # always does (instance 1, no repeating instrument), so receivers meet them.
        "redcap_repeat_instance": "1",
        "redcap_repeat_instrument": "",
        f"{instrument}_complete": status,
    }
    if project.longitudinal:
        data["redcap_event_name"] = event
    return _pool.submit(_deliver, project.pid, url, data)


def _deliver(pid: int, url: str, data: dict[str, str]) -> str:
    try:
        with httpx.Client(timeout=DELIVERY_TIMEOUT, follow_redirects=False) as client:
            response = client.post(url, data=data)
        answer, detail = str(response.status_code), " ".join(response.text.split())[:200]
    except httpx.HTTPError as exc:
        answer, detail = "no answer", type(exc).__name__
    delivery = Delivery(
        at=datetime.datetime.now(datetime.UTC),
        record=data["record"],
        instrument=data["instrument"],
        answer=answer,
        detail=detail,
    )
    with store._lock:
        kept = store.det_deliveries.setdefault(pid, [])
        kept.insert(0, delivery)
        del kept[DELIVERIES_KEPT:]
    return answer
