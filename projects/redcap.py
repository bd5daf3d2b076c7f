"""A small REDCap API client: every call is a form POST to the instance's ``/api/`` URL.

Errors are typed, and their messages are written for a study coordinator; they never contain
the token (the client shows at most its last 4 characters, in ``repr``). Redirects are never
followed and every call has a timeout.

    client = RedcapClient("https://redcap.example.edu/api/", token)
    client.project_info()["project_id"]
    for batch in client.iter_record_batches(records=client.record_ids(), fields=["phone"]):
        ...  # one list of flat records per batch: report progress here

Without an injected ``httpx.Client`` each call (or each batched export) opens and closes its
own connection; pass ``client=`` to pool connections across calls.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.views.decorators.debug import sensitive_variables

from projects import netguard

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0  # seconds to wait for REDCap's answer (exports can be slow)
CONNECT_TIMEOUT = 10.0
DEFAULT_BATCH_SIZE = 200  # records per export request
_TOKEN = re.compile(r"[0-9A-Fa-f]{32}")
_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")
_EMBEDDED_ERROR = re.compile(r'\{\s*"error"\s*:\s*"((?:[^"\\]|\\.)*)"\s*\}')

Record = dict[str, str]


# --- Errors --------------------------------------------------------------------------------
class RedcapError(Exception):
    """Something went wrong talking to REDCap. ``message`` is safe to show to a researcher."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class RedcapConfigError(RedcapError, ValueError):
    """The API URL or the token cannot be right; nothing was sent."""


class RedcapAuthError(RedcapError):
    """401/403: the token is wrong, revoked, or its user lacks the API rights asked for."""


class RedcapRequestError(RedcapError):
    """REDCap refused the request (400 and other 4xx). ``redcap_message`` is REDCap's own."""

    def __init__(
        self, message: str, *, status_code: int | None = None, redcap_message: str = ""
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.redcap_message = redcap_message


class RedcapNotLongitudinal(RedcapRequestError):
    """Events (or the form/event mapping) were asked of a classic project."""


class RedcapServerError(RedcapError):
    """5xx, or an answer that is not what was asked for (REDCap can send an HTML error page)."""


class RedcapTimeout(RedcapError):
    """REDCap did not answer in time. An import may or may not have been applied."""


class RedcapConnectionError(RedcapError):
    """The server could not be reached, or the connection broke before it answered."""


# --- Validation ----------------------------------------------------------------------------
def validate_api_url(url: str) -> str:
    """Return the URL if it can be a REDCap API endpoint; raise RedcapConfigError if not.

    It must be a web address ending in ``/api/`` with no user name, password, query or fragment,
    on a server the portal may send a token to: public https on port 443 (projects/netguard.py
    says which exceptions the settings allow).
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RedcapConfigError(
            "The REDCap API URL must be a web address such as https://redcap.example.edu/api/."
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise RedcapConfigError(
            "The REDCap API URL must not contain a user name, password, query or fragment."
        )
    if not parts.path.endswith("/api/"):
        raise RedcapConfigError(
            "The REDCap API URL must end in /api/ (for example https://redcap.example.edu/api/)."
        )
    try:
        return netguard.check_redcap_url(url)
    except ValueError as exc:
        raise RedcapConfigError(str(exc)) from None


def validate_token(token: str) -> str:
    """Return the token if it looks like a REDCap API token (32 hexadecimal characters)."""
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise RedcapConfigError(
            "A REDCap API token is 32 characters long, made of the digits 0-9 and letters A-F. "
            "Copy it again from the project's API page in REDCap."
        )
    return token


def mask_token(token: str) -> str:
    """The only form of a token that may be shown or logged: its last 4 characters."""
    return "…" + token[-4:] if token else ""


def _array(name: str, values: Iterable[str] | None) -> dict[str, str]:
    """REDCap's array parameters: ``fields[0]=a&fields[1]=b``."""
    return {f"{name}[{i}]": str(value) for i, value in enumerate(values or ())}


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- The client ----------------------------------------------------------------------------
class RedcapClient:
    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        batch_size: int = DEFAULT_BATCH_SIZE,
        client: httpx.Client | None = None,
    ) -> None:
        """``client`` is an optional shared ``httpx.Client`` (the caller closes it); the default
        connects only to addresses projects/netguard.py allows, checked after DNS resolution."""
        self.api_url = validate_api_url(api_url)
        self._token = validate_token(token)
        if batch_size < 1:
            raise RedcapConfigError("The export batch size must be at least 1.")
        self.batch_size = batch_size
        self.timeout = httpx.Timeout(timeout, connect=min(CONNECT_TIMEOUT, timeout))
        self._client = client
        self._record_id_field: str | None = None

    def __repr__(self) -> str:
        return f"<RedcapClient {self.api_url} token {mask_token(self._token)}>"

    # --- Project -------------------------------------------------------------------------
    def version(self) -> str:
        """REDCap's version, e.g. ``"14.5.11"`` (plain text)."""
        text = self._call("version", expect="text")
        if not _VERSION.match(text):
            raise self._not_what_was_asked(text, "a version number")
        return text

    def project_info(self) -> dict[str, Any]:
        return self._call("project", expect=dict)

    def metadata(
        self, *, fields: Sequence[str] | None = None, forms: Sequence[str] | None = None
    ) -> list[dict[str, str]]:
        """The data dictionary: one dict per field, with REDCap's 18 keys, in form order."""
        return self._call("metadata", {**_array("fields", fields), **_array("forms", forms)})

    def field_names(self, *, field: str | None = None) -> list[dict[str, str]]:
        """Export names, e.g. checkbox ``optout`` → ``optout___1`` (one row per option)."""
        return self._call("exportFieldNames", {"field": field} if field else {})

    def instruments(self) -> list[dict[str, str]]:
        return self._call("instrument")

    def events(self) -> list[dict[str, Any]]:
        """Events of a longitudinal project; raises RedcapNotLongitudinal for a classic one."""
        return self._call("event")

    def form_event_mapping(self) -> list[dict[str, Any]]:
        """Which instruments each event has; raises RedcapNotLongitudinal for a classic one."""
        return self._call("formEventMapping")

    def repeating_forms_events(self) -> list[dict[str, Any]]:
        """Which instruments (``form_name``) and events repeat. REDCap answers 400 for a project
        that repeats nothing, and 403 to a token without Project Design rights."""
        return self._call("repeatingFormsEvents")

    def record_id_field(self) -> str:
        """The project's record-id field: the first field of the data dictionary."""
        if self._record_id_field is None:
            rows = self.metadata()
            if not rows or "field_name" not in rows[0]:
                raise RedcapServerError("REDCap returned an empty data dictionary.")
            self._record_id_field = rows[0]["field_name"]
        return self._record_id_field

    # --- Records -------------------------------------------------------------------------
    def record_ids(
        self,
        *,
        events: Sequence[str] | None = None,
        filter_logic: str | None = None,
    ) -> list[str]:
        """Every record id (matching ``filter_logic``), in REDCap's order, without repeats."""
        id_field = self.record_id_field()
        rows = self._export_records(fields=[id_field], events=events, filter_logic=filter_logic)
        return list(dict.fromkeys(str(row.get(id_field, "")) for row in rows))

    def iter_record_batches(
        self,
        *,
        records: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        filter_logic: str | None = None,
        batch_size: int | None = None,
        survey_fields: bool = False,
    ) -> Iterator[list[Record]]:
        """Export records in batches of ``batch_size`` record ids, yielding each batch's rows.

        Without ``records``, the record ids are exported first (with the same filter). For a
        progress bar, call :meth:`record_ids` yourself and pass them as ``records``: the number
        of batches is then known in advance.
        """
        size = batch_size or self.batch_size
        ids = (
            list(records)
            if records is not None
            else self.record_ids(events=events, filter_logic=filter_logic)
        )
        if not ids:
            return
        with self._session() as session:  # one connection for all the batches
            for chunk in _chunks(ids, size):
                yield self._export_records(
                    records=chunk,
                    fields=fields,
                    events=events,
                    filter_logic=filter_logic,
                    session=session,
                    survey_fields=survey_fields,
                )

    def records(
        self,
        *,
        records: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        filter_logic: str | None = None,
        batch_size: int | None = None,
        survey_fields: bool = False,
    ) -> list[Record]:
        """Flat, raw records (all of them, or those asked for), exported in batches.

        ``records=[]`` asks for no records and returns ``[]`` without calling REDCap (REDCap
        itself would read an empty list as "all records")."""
        rows: list[Record] = []
        for batch in self.iter_record_batches(
            records=records,
            fields=fields,
            events=events,
            filter_logic=filter_logic,
            batch_size=batch_size,
            survey_fields=survey_fields,
        ):
            rows.extend(batch)
        return rows

    def import_records(self, rows: Sequence[Mapping[str, Any]], *, overwrite: bool = False) -> int:
        """Import flat records; return how many REDCap says it imported.

        With ``overwrite`` a blank value erases what REDCap holds; otherwise blanks are ignored.
        """
        if not rows:
            return 0
        answer = self._call(
            "record",
            {
                "type": "flat",
                "overwriteBehavior": "overwrite" if overwrite else "normal",
                "forceAutoNumber": "false",
                "dateFormat": "YMD",
                "returnContent": "count",
                "data": json.dumps(list(rows)),
            },
            expect=dict,
            purpose="import",
        )
        try:
            return int(answer["count"])
        except (KeyError, TypeError, ValueError):
            raise self._not_what_was_asked(json.dumps(answer), "an import count") from None

    # --- Surveys -------------------------------------------------------------------------
    def survey_link(
        self,
        *,
        instrument: str,
        record: str,
        event: str | None = None,
        repeat_instance: int = 1,
    ) -> str:
        params = {"instrument": instrument, "record": str(record)}
        if event:
            params["event"] = event
        params["repeat_instance"] = str(repeat_instance)
        return self._url_answer(self._call("surveyLink", params, expect="text"))

    def survey_queue_link(self, *, record: str) -> str:
        return self._url_answer(
            self._call("surveyQueueLink", {"record": str(record)}, expect="text")
        )

    def participant_list(self, *, instrument: str, event: str | None = None) -> list[dict]:
        """One row per participant: ``record``, ``response_status`` (0 none, 1 partial,
        2 complete), ``survey_link``… Needs the Survey Distribution Tools right too."""
        params = {"instrument": instrument}
        if event:
            params["event"] = event
        return self._call("participantList", params)

    # --- Plumbing ------------------------------------------------------------------------
    def _export_records(
        self,
        *,
        records: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
        events: Sequence[str] | None = None,
        filter_logic: str | None = None,
        session: httpx.Client | None = None,
        survey_fields: bool = False,
    ) -> list[Record]:
        params = {
            "type": "flat",
            "rawOrLabel": "raw",
            "rawOrLabelHeaders": "raw",
            "exportCheckboxLabel": "false",
            **_array("records", records),
            **_array("fields", fields),
            **_array("events", events),
        }
        if filter_logic:
            params["filterLogic"] = filter_logic
        if survey_fields:
            # Adds each exported survey's `<instrument>_timestamp`: when it was completed.
            params["exportSurveyFields"] = "true"
        return self._call("record", params, session=session)

    @contextmanager
    def _session(self) -> Iterator[httpx.Client]:
        if self._client is not None:
            yield self._client
            return
        with netguard.guarded_client(timeout=self.timeout) as session:
            yield session

    @sensitive_variables("data")  # the token is in `data`: keep it out of error reports
    def _call(
        self,
        content: str,
        params: Mapping[str, str] | None = None,
        *,
        expect: type | str = list,
        purpose: str = "export",
        session: httpx.Client | None = None,
    ) -> Any:
        data = {
            "token": self._token,
            "content": content,
            "format": "json",
            "returnFormat": "json",
            **(params or {}),
        }
        host = urlsplit(self.api_url).hostname
        try:
            if session is not None:
                response = self._send(session, data)
            else:
                with self._session() as own:
                    response = self._send(own, data)
        except httpx.TimeoutException as exc:
            if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                raise RedcapTimeout(
                    f"Could not reach REDCap at {host} within {self.timeout.connect:g} seconds. "
                    "Check the instance's API URL, or try again if REDCap is down."
                ) from exc
            raise RedcapTimeout(
                f"REDCap at {host} did not answer within {self.timeout.read:g} seconds. It may "
                "be busy; try again later."
                + (" The import may or may not have been applied." if purpose == "import" else "")
            ) from exc
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, netguard.BlockedAddress):
                raise RedcapConfigError(
                    f"Refused to connect to REDCap: {exc.__cause__}. Ask a server administrator "
                    "to check the instance's API URL."
                ) from exc
            reason = (
                "its security certificate could not be verified"
                if "CERTIFICATE" in str(exc).upper() or "SSL" in str(exc).upper()
                else "the server could not be reached"
            )
            raise RedcapConnectionError(
                f"Could not connect to REDCap at {host}: {reason}. Check the instance's API URL, "
                "or try again if REDCap is down."
            ) from exc
        except httpx.TransportError as exc:
            raise RedcapConnectionError(
                f"The connection to REDCap at {host} broke before it answered. Try again later."
                + (" The import may or may not have been applied." if purpose == "import" else "")
            ) from exc
        logger.debug("REDCap %s at %s: HTTP %s", content, host, response.status_code)
        if response.status_code != 200:
            raise self._http_error(response, content=content, purpose=purpose)
        if expect == "text":
            return response.text.strip()
        return self._json(response, expect)

    # Every frame below this one (httpx, httpcore) holds the encoded form: hide all their values.
    @sensitive_variables()
    def _send(self, session: httpx.Client, data: dict[str, str]) -> httpx.Response:
        return session.post(
            self.api_url,
            data=data,
            headers={"Accept": "application/json", "User-Agent": "StudyText"},
            timeout=self.timeout,
            follow_redirects=False,
        )

    def _scrub(self, text: str) -> str:
        """REDCap's own words, shortened, with the token masked should it ever appear."""
        text = re.sub(re.escape(self._token), mask_token(self._token), text, flags=re.IGNORECASE)
        text = " ".join(text.split())
        return text if len(text) <= 300 else text[:297] + "…"

    def _redcap_message(self, response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            found = _EMBEDDED_ERROR.search(response.text)
            if found:
                try:
                    return self._scrub(json.loads(f'"{found.group(1)}"'))
                except ValueError:
                    return self._scrub(found.group(1))
            return ""
        if isinstance(body, dict) and body.get("error"):
            return self._scrub(str(body["error"]))
        return ""

    def _http_error(self, response: httpx.Response, *, content: str, purpose: str) -> RedcapError:
        status = response.status_code
        said = self._redcap_message(response)
        suffix = f" (REDCap said: {said})" if said else ""
        if status in (401, 403):
            rights = "API import rights" if purpose == "import" else "API export rights"
            if content == "participantList":
                rights = "the API export and Survey Distribution Tools rights"
            if content == "repeatingFormsEvents":
                rights = "the API export and Project Design and Setup rights"
            return RedcapAuthError(
                f"REDCap refused the API token: it is wrong, or its user lacks {rights}.{suffix}",
                status_code=status,
            )
        if 300 <= status < 400:
            where = response.headers.get("location", "another address")
            return RedcapRequestError(
                f"REDCap redirected the request to {self._scrub(where)}. The instance's API URL "
                "is out of date; ask a server administrator to correct it.",
                status_code=status,
            )
        if status == 404:
            return RedcapRequestError(
                f"Nothing answers at {self.api_url} (HTTP 404). The instance's API URL is wrong; "
                "ask a server administrator to correct it.",
                status_code=status,
                redcap_message=said,
            )
        if status < 500:
            if status == 400 and "classic project" in said.lower():
                return RedcapNotLongitudinal(
                    f"This REDCap project is not longitudinal, so it has no events.{suffix}",
                    status_code=status,
                    redcap_message=said,
                )
            return RedcapRequestError(
                f"REDCap refused the request: {said}"
                if said
                else f"REDCap refused the request (HTTP {status}).",
                status_code=status,
                redcap_message=said,
            )
        return RedcapServerError(
            f"REDCap had an internal error (HTTP {status}).{suffix} Try again later; if it "
            "persists, tell the REDCap administrators.",
            status_code=status,
        )

    def _json(self, response: httpx.Response, expect: type | str) -> Any:
        try:
            body = response.json()
        except ValueError:
            raise self._not_what_was_asked(response.text, "JSON") from None
        if isinstance(body, dict) and set(body) == {"error"}:
            raise RedcapRequestError(
                f"REDCap refused the request: {self._scrub(str(body['error']))}",
                status_code=response.status_code,
                redcap_message=self._scrub(str(body["error"])),
            )
        if not isinstance(body, expect):  # type: ignore[arg-type]
            raise self._not_what_was_asked(response.text, "JSON")
        return body

    def _not_what_was_asked(self, text: str, wanted: str) -> RedcapServerError:
        found = _EMBEDDED_ERROR.search(text or "")
        said = f" (REDCap said: {self._scrub(found.group(1))})" if found else ""
        return RedcapServerError(
            f"REDCap answered with something other than {wanted}, probably an error page."
            f"{said} A very large export can exhaust REDCap's memory; try again later, and if "
            "it persists, tell the REDCap administrators.",
            status_code=200,
        )

    def _url_answer(self, text: str) -> str:
        if not re.match(r"https?://\S+$", text):
            raise self._not_what_was_asked(text, "a survey link")
        return text
