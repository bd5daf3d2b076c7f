"""A loopback fake SMS provider for benchmarks and reliability tests (stdlib only).

It speaks the subset of Twilio's REST API that messaging/gateways/twilio.py uses, and Mosio's
send_single_sms / text_history, with a configurable latency, a send rate limit (token bucket;
over it: HTTP 429 with Twilio error 20429) and a seeded random failure mix. It records every
message it accepted and counts how often the same message was accepted (the dedup key: To +
Body by default), so a test can prove that nothing was sent twice.

In process:
    fake = FakeProvider(latency_ms=50, rate=50).start()   # returns the provider, started
    settings.TWILIO_API_BASE = fake.twilio_api_base       # http://127.0.0.1:PORT/2010-04-01/
    settings.MOSIO_API_BASE = fake.mosio_api_base         # http://127.0.0.1:PORT/mosio/api/
    ...; fake.stats(); fake.stop()
    (`with FakeProvider(...) as fake:` starts and stops it.)

Command line:
    python tests/fakes/provider.py --serve --port 8765 --latency-ms 50 --rate 50 \
        --failure-rate 0.3 --seed 1
then `curl http://127.0.0.1:8765/stats`. Without --serve it runs a few-second self-check and
exits.

Failure kinds (each failing send picks one at random, seeded):
  drop          the connection is closed without an answer; nothing accepted
  429           HTTP 429 / 20429; nothing accepted
  500           HTTP 500; nothing accepted
  500-accepted  the message is accepted, then HTTP 500 (the ambiguous case)
  timeout       the message is accepted, then the answer is held for `hang_s` seconds, past
                the client's read timeout (the other ambiguous case); set hang_s above it

It also answers REDCap's record export (`content=record`) at `fake.redcap_api_url`, for the values
the sender pipes at release: every record asked for, with each field asked for taken from
`fake.redcap_records[record][field]` (default: "<field> <record>"); records in
`fake.redcap_gone` are not returned, and with `fake.redcap_down` set every REDCap call gets HTTP
503. Every send request's arrival time is kept (`calls`, `calls_since(moment, numbers)`), so a
test can count the calls that reached the provider after a STOP or the close of sending hours.
`redcap_latency_ms` delays its answers; `stats()["redcap_calls"]` counts them.

Twilio's magic test numbers are honoured: To +15005550001 -> 21211 (invalid), +15005550009 ->
21614 (not mobile), +15005550004 -> 21610 (unsubscribed).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import math
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

FAILURE_KINDS = ("drop", "429", "500", "500-accepted", "timeout")
MAGIC_NUMBERS = {
    "+15005550001": (21211, "The 'To' number {to} is not a valid phone number."),
    "+15005550009": (21614, "The 'To' number {to} is not a valid mobile number."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient {to}."),
}
TWILIO_PREFIX = "/2010-04-01/Accounts/"
REDCAP_PREFIX = "/redcap/api/"
MOSIO_PREFIX = "/mosio/api/"


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.capacity = rate, burst
        self.tokens = burst
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class FakeProvider:
    def __init__(
        self,
        *,
        latency_ms: float = 0,
        rate: float | None = None,
        burst: float | None = None,
        failure_rate: float = 0.0,
        failure_kinds: tuple[str, ...] = FAILURE_KINDS,
        seed: int | None = None,
        hang_s: float = 2.0,
        retry_after: int | None = None,
        dedup: str = "to+body",
        auth_token: str | None = None,
        mosio_api_key: str | None = None,
        redcap_latency_ms: float = 0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        unknown = set(failure_kinds) - set(FAILURE_KINDS)
        if unknown:
            raise ValueError(f"Unknown failure kinds {sorted(unknown)}; use {FAILURE_KINDS}.")
        if dedup not in ("to+body", "body", "callback"):
            raise ValueError("dedup is 'to+body', 'body' or 'callback'.")
        self.latency_s = latency_ms / 1000
        self.rate = rate
        # Default burst: a tenth of a second's worth, so a client paced at `rate` with a little
        # jitter is never refused, but one running faster soon is.
        self.burst = burst if burst is not None else max(1.0, math.ceil((rate or 0) / 10))
        self.bucket = TokenBucket(rate, self.burst) if rate else None
        self.failure_rate = failure_rate
        self.failure_kinds = failure_kinds
        self.random = random.Random(seed)
        self.hang_s = hang_s
        self.retry_after = retry_after
        self.dedup = dedup
        self.auth_token = auth_token
        self.mosio_api_key = mosio_api_key
        self.redcap_latency_s = redcap_latency_ms / 1000
        self.redcap_records: dict[str, dict[str, str]] = {}
        self.redcap_gone: set[str] = set()
        self.redcap_down = False
        self.host, self.port = host, port
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.connections: set[socket.socket] = set()
        self.connections_opened = 0  # TCP connections accepted since start (a client's churn)
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeProvider:
        handler = type("Handler", (_Handler,), {"provider": self})
        self.server = _Server((self.host, self.port), handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.stopping.clear()
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers holding a "timeout" answer
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        # Kept-alive connections would otherwise go on being served by their handler threads.
        with self.lock:
            connections, self.connections = list(self.connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def twilio_api_base(self) -> str:
        return f"{self.url}2010-04-01/"

    @property
    def mosio_api_base(self) -> str:
        return f"{self.url}mosio/api/"

    @property
    def redcap_api_url(self) -> str:
        return f"{self.url}redcap/api/"

    # --- records -----------------------------------------------------------------------------
    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.messages: list[dict[str, Any]] = []
            self.by_sid: dict[str, dict[str, Any]] = {}
            self.keys: Counter[str] = Counter()
            self.requests = 0
            self.send_attempts = 0
            self.rate_limited = 0
            self.failures: Counter[str] = Counter()
            self.in_flight = 0
            self.max_in_flight = 0
            self.first_accept: float | None = None
            self.last_accept: float | None = None
            self.inbound: list[dict[str, Any]] = []
            self.redcap_calls: list[dict[str, Any]] = []
            # Every send request as it arrived: (time.time(), To), accepted or not.
            self.calls: list[tuple[float, str]] = []

    def stats(self) -> dict[str, Any]:
        with self.lock:
            accepted = len(self.messages)
            span = (self.last_accept or 0) - (self.first_accept or 0)
            duplicates = {key: n for key, n in self.keys.items() if n > 1}
            return {
                "requests": self.requests,
                "send_attempts": self.send_attempts,
                "accepted": accepted,
                "unique_accepted": len(self.keys),
                "duplicates": sum(n - 1 for n in duplicates.values()),
                "duplicate_keys": sorted(duplicates)[:20],
                "rate_limited": self.rate_limited,
                "failures": dict(self.failures),
                "max_in_flight": self.max_in_flight,
                "redcap_calls": len(self.redcap_calls),
                "accepted_per_second": (accepted - 1) / span if accepted > 1 and span else None,
                "config": {
                    "latency_ms": self.latency_s * 1000,
                    "rate": self.rate,
                    "burst": self.burst,
                    "failure_rate": self.failure_rate,
                    "failure_kinds": list(self.failure_kinds),
                    "dedup": self.dedup,
                },
            }

    def calls_since(self, moment: float, numbers: set[str] | None = None) -> int:
        """Send requests that arrived after `moment` (time.time()), to `numbers` if given."""
        with self.lock:
            return sum(
                1 for at, to in self.calls if at > moment and (numbers is None or to in numbers)
            )

    def add_inbound(self, *, from_number: str, body: str) -> None:
        """Queue a participant's reply for Mosio's text_history."""
        with self.lock:
            self.inbound.append(
                {
                    "Id": len(self.inbound) + 1_000_000,
                    "Phone": from_number.lstrip("+"),
                    "Body": body,
                    "Date": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
                    "Direction": "in",
                }
            )

    def _accept(self, *, to: str, body: str, sender: str, callback: str, provider: str) -> dict:
        now = datetime.now(UTC)
        message = {
            "sid": "SM" + uuid.uuid4().hex,
            "mosio_id": None,
            "provider": provider,
            "to": to,
            "from": sender,
            "body": body,
            "status_callback": callback,
            "created": now,
        }
        key = {"to+body": f"{to}\n{body}", "body": body, "callback": callback}[self.dedup]
        with self.lock:
            message["mosio_id"] = len(self.messages) + 1
            self.messages.append(message)
            self.by_sid[message["sid"]] = message
            self.keys[key] += 1
            self.last_accept = time.monotonic()
            if self.first_accept is None:
                self.first_accept = self.last_accept
        return message

    def _draw_failure(self) -> str | None:
        with self.lock:
            if self.failure_rate and self.random.random() < self.failure_rate:
                kind = self.random.choice(self.failure_kinds)
                self.failures[kind] += 1
                return kind
        return None


class _Server(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: sixteen clients connecting at once on a busy
    # machine overflow it, and a connection the server never accepted is reset mid-request.
    request_queue_size = 128


def _twilio_message(message: dict[str, Any], *, status: str) -> dict[str, Any]:
    return {
        "sid": message["sid"],
        "status": status,
        "to": message["to"],
        "from": message["from"],
        "body": message["body"],
        "direction": "outbound-api",
        "num_segments": "1",
        "date_created": format_datetime(message["created"]),
        "date_sent": None if status == "queued" else format_datetime(message["created"]),
        "error_code": None,
    }


def _index(item: tuple[str, str]) -> tuple[str, int]:
    """Sort `records[10]` after `records[9]`."""
    name, _ = item
    match = re.fullmatch(r"(\w+)\[(\d+)\]", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


class _Handler(BaseHTTPRequestHandler):
    provider: FakeProvider
    protocol_version = "HTTP/1.1"  # keep-alive, as httpx's pool expects
    # Headers and body go out in separate writes; with Nagle's algorithm on, each answer would
    # wait ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.provider.lock:
            self.provider.connections.add(self.connection)
            self.provider.connections_opened += 1

    def finish(self) -> None:
        with self.provider.lock:
            self.provider.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    # --- plumbing ----------------------------------------------------------------------------
    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:  # the client gave up (read timeout) and closed the connection
            self.close_connection = True

    def _twilio_error(self, status: int, code: int, message: str, **headers: str) -> None:
        self._reply(status, {"code": code, "message": message, "status": status}, headers)

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        provider = self.provider
        with provider.lock:
            provider.requests += 1
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        form = self._form() if method == "POST" else {}
        if parts.path == "/stats" and method == "GET":
            return self._reply(200, provider.stats())
        if parts.path.startswith(TWILIO_PREFIX):
            return self._twilio(method, parts.path[len(TWILIO_PREFIX) :], query, form)
        if parts.path.startswith(MOSIO_PREFIX):
            return self._mosio(method, parts.path[len(MOSIO_PREFIX) :], query, form)
        if parts.path == REDCAP_PREFIX and method == "POST":
            return self._redcap(form)
        self._reply(404, {"message": "Not found"})

    # --- REDCap: the record export the sender pipes from ---------------------------------------
    def _redcap(self, form: dict[str, str]) -> None:
        provider = self.provider
        records = [v for k, v in sorted(form.items(), key=_index) if k.startswith("records[")]
        fields = [v for k, v in sorted(form.items(), key=_index) if k.startswith("fields[")]
        events = [v for k, v in sorted(form.items(), key=_index) if k.startswith("events[")]
        call = {"content": form.get("content"), "records": records, "fields": fields}
        with provider.lock:
            provider.redcap_calls.append({**call, "events": events, "at": time.time()})
        if provider.redcap_latency_s:
            time.sleep(provider.redcap_latency_s)
        if provider.redcap_down:
            return self._reply(503, {"error": "REDCap is down for maintenance."})
        if form.get("content") != "record":
            return self._reply(400, {"error": "This fake REDCap only exports records."})
        rows = []
        for record in records:
            if record in provider.redcap_gone:
                continue
            stored = provider.redcap_records.get(record, {})
            row = {"record_id": record}  # REDCap puts the record id first
            row.update({f: stored.get(f, f"{f} {record}") for f in fields if f != "record_id"})
            rows.append(row)
        self._reply(200, rows)

    # --- sends, common to both providers -----------------------------------------------------
    def _send(self, *, on_refused, on_accepted, **fields: str) -> None:
        """Apply the rate limit and failure mix around one send."""
        provider = self.provider
        arrived = time.time()
        with provider.lock:
            provider.calls.append((arrived, fields.get("to", "")))
            provider.send_attempts += 1
            provider.in_flight += 1
            provider.max_in_flight = max(provider.max_in_flight, provider.in_flight)
        try:
            if provider.bucket is not None and not provider.bucket.take():
                with provider.lock:
                    provider.rate_limited += 1
                time.sleep(provider.latency_s)
                return on_refused(429)
            failure = provider._draw_failure()
            if failure == "drop":
                return self._drop()
            time.sleep(provider.latency_s)
            if failure in ("429", "500"):
                return on_refused(int(failure))
            message = provider._accept(**fields)
            if failure == "500-accepted":
                return on_refused(500)
            if failure == "timeout":
                # Accepted, then answered too late: the client has given up by then.
                provider.stopping.wait(provider.hang_s)
            on_accepted(message)
        finally:
            with provider.lock:
                provider.in_flight -= 1

    # --- Twilio ------------------------------------------------------------------------------
    def _twilio_auth(self, sid: str) -> bool:
        header = self.headers.get("Authorization") or ""
        try:
            user, _, token = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            user, token = "", ""
        expected = self.provider.auth_token
        if user != sid or not token or (expected is not None and token != expected):
            self._twilio_error(401, 20003, "Authenticate")
            return False
        return True

    def _twilio(self, method: str, rest: str, query: dict, form: dict) -> None:
        match = re.fullmatch(r"(AC\w+)(\.json|/(.+))", rest)
        if not match:
            return self._twilio_error(404, 20404, "The requested resource was not found")
        sid, tail = match.group(1), match.group(3)
        if not self._twilio_auth(sid):
            return None
        if tail is None and method == "GET":
            return self._reply(
                200,
                {"sid": sid, "friendly_name": "Fake account", "status": "active", "type": "Full"},
            )
        if tail == "Messages.json" and method == "POST":
            return self._twilio_send(form)
        if tail == "Messages.json" and method == "GET":
            return self._twilio_list(sid, query)
        if tail == "IncomingPhoneNumbers.json" and method == "GET":
            number = query.get("PhoneNumber", "")
            found = [{"phone_number": number}] if number else []
            return self._reply(200, {"incoming_phone_numbers": found})
        found = re.fullmatch(r"Messages/(\w+)\.json", tail or "")
        if found and method == "GET":
            message = self.provider.by_sid.get(found.group(1))
            if message is None:
                return self._twilio_error(404, 20404, "The requested resource was not found")
            return self._reply(200, _twilio_message(message, status="delivered"))
        return self._twilio_error(404, 20404, "The requested resource was not found")

    def _twilio_send(self, form: dict[str, str]) -> None:
        to, body = form.get("To", ""), form.get("Body", "")
        sender = form.get("From") or form.get("MessagingServiceSid") or ""
        if not re.fullmatch(r"\+[1-9]\d{6,14}", to):
            return self._twilio_error(
                400, 21211, f"The 'To' number {to} is not a valid phone number."
            )
        if to in MAGIC_NUMBERS:
            code, text = MAGIC_NUMBERS[to]
            return self._twilio_error(400, code, text.format(to=to))
        if not sender:
            return self._twilio_error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return self._twilio_error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return self._twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )

        def refused(status: int) -> None:
            if status == 429:
                extra = (
                    {"Retry-After": str(self.provider.retry_after)}
                    if self.provider.retry_after
                    else {}
                )
                return self._twilio_error(429, 20429, "Too Many Requests", **extra)
            return self._twilio_error(500, 20500, "Internal Server Error")

        def accepted(message: dict[str, Any]) -> None:
            self._reply(201, _twilio_message(message, status="queued"))

        self._send(
            on_refused=refused,
            on_accepted=accepted,
            to=to,
            body=body,
            sender=sender,
            callback=form.get("StatusCallback", ""),
            provider="twilio",
        )

    def _twilio_list(self, sid: str, query: dict[str, str]) -> None:
        size = max(1, min(1000, int(query.get("PageSize") or 50)))
        page = max(0, int(query.get("Page") or 0))
        with self.provider.lock:
            matches = [
                m
                for m in reversed(self.provider.messages)
                if m["provider"] == "twilio"
                and (not query.get("To") or m["to"] == query["To"])
                and (not query.get("From") or m["from"] == query["From"])
            ]
        chunk = matches[page * size : (page + 1) * size]
        next_uri = None
        if len(matches) > (page + 1) * size:
            params = {k: v for k, v in query.items() if k != "Page"} | {"Page": page + 1}
            next_uri = f"{TWILIO_PREFIX}{sid}/Messages.json?{urlencode(params)}"
        self._reply(
            200,
            {
                "messages": [_twilio_message(m, status="delivered") for m in chunk],
                "next_page_uri": next_uri,
                "page": page,
                "page_size": size,
            },
        )

    # --- Mosio -------------------------------------------------------------------------------
    def _mosio_error(self, status: int, message: str, code: int = 1) -> None:
        self._reply(status, {"Success": False, "ErrorCode": code, "ErrorMessage": message})

    def _mosio(self, method: str, rest: str, query: dict, form: dict) -> None:
        key = self.headers.get("X-ApiKey") or ""
        if not key or (
            self.provider.mosio_api_key is not None and key != self.provider.mosio_api_key
        ):
            return self._mosio_error(401, "Invalid API key")
        if rest == "send_single_sms" and method == "POST":
            return self._mosio_send(form)
        if rest == "text_history" and method == "GET":
            if self.headers.get("Content-Type"):  # as Mosio does (docs/mosio.md, M7)
                return self._mosio_error(400, "Content-Type is not allowed on GET")
            return self._mosio_history(query)
        return self._mosio_error(404, "Unknown endpoint")

    def _mosio_send(self, form: dict[str, str]) -> None:
        phone, text = form.get("Phone", ""), form.get("Message", "")
        if not re.fullmatch(r"1\d{10}", phone):
            return self._reply(
                200, {"Success": False, "ErrorCode": 2, "ErrorMessage": "Invalid phone number"}
            )
        if not text:
            return self._reply(
                200, {"Success": False, "ErrorCode": 3, "ErrorMessage": "Message is required"}
            )

        def refused(status: int) -> None:
            if status == 429:
                return self._mosio_error(429, "Too many requests", code=429)
            return self._mosio_error(500, "Server error", code=500)

        def accepted(message: dict[str, Any]) -> None:
            self._reply(
                200,
                {
                    "Success": True,
                    "ErrorCode": 0,
                    "ErrorMessage": "",
                    "TransactionId": message["mosio_id"],
                },
            )

        self._send(
            on_refused=refused,
            on_accepted=accepted,
            to="+" + phone,
            body=text,
            sender="mosio",
            callback="",
            provider="mosio",
        )

    def _mosio_history(self, query: dict[str, str]) -> None:
        since = None
        if query.get("Since"):
            try:
                since = datetime.fromisoformat(query["Since"]).replace(tzinfo=UTC)
            except ValueError:
                return self._mosio_error(400, "Invalid Since")
        limit = max(1, min(1000, int(query.get("Limit") or 100)))
        with self.provider.lock:
            items = [
                {
                    "Id": m["mosio_id"],
                    "Phone": m["to"].lstrip("+"),
                    "Body": m["body"],
                    "Date": m["created"].replace(tzinfo=None).isoformat(timespec="seconds"),
                    "Direction": "out",
                    "_when": m["created"],
                }
                for m in self.provider.messages
                if m["provider"] == "mosio"
            ]
            items += [
                {**m, "_when": datetime.fromisoformat(m["Date"]).replace(tzinfo=UTC)}
                for m in self.provider.inbound
            ]
        if since is not None:
            # Dates carry whole seconds, so compare at that precision.
            items = [i for i in items if i["_when"].replace(microsecond=0) >= since]
        items.sort(key=lambda i: i["_when"], reverse=True)
        contacts = [{k: v for k, v in i.items() if k != "_when"} for i in items[:limit]]
        self._reply(200, {"Success": True, "Contacts": contacts})


def self_check(*, rate: float = 50, messages: int = 100, latency_ms: float = 10) -> dict:
    """Pace a bare client at `rate` (expect no 429), then burst (expect 429s). Returns ratios."""
    import httpx  # only the self-check needs a client

    sid = "AC" + "0" * 32
    with (
        FakeProvider(latency_ms=latency_ms, rate=rate) as fake,
        httpx.Client(auth=(sid, "x"), timeout=5) as client,
    ):
        url = f"{fake.twilio_api_base}Accounts/{sid}/Messages.json"
        started = time.monotonic()
        for n in range(messages):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            client.post(url, data={"To": "+14155550100", "Body": f"paced {n}", "From": "+1500"})
        paced = fake.stats()
        for n in range(messages):
            client.post(url, data={"To": "+14155550100", "Body": f"burst {n}", "From": "+1500"})
        burst = fake.stats()
    return {
        "rate_ratio": (paced["accepted_per_second"] or 0) / rate,
        "paced_rejections": paced["rate_limited"],
        "burst_rejections": burst["rate_limited"] - paced["rate_limited"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="A loopback fake SMS provider. Without --serve: a quick self-check."
    )
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--rate", type=float, default=None, help="sends per second (default: none)")
    parser.add_argument("--burst", type=float, default=None)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--failure-kinds", default=",".join(FAILURE_KINDS))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--hang-s", type=float, default=2.0)
    parser.add_argument("--dedup", default="to+body", choices=["to+body", "body", "callback"])
    args = parser.parse_args(argv)
    if not args.serve:
        result = self_check()
        print(
            " ".join(
                f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
            )
        )
        return
    fake = FakeProvider(
        latency_ms=args.latency_ms,
        rate=args.rate,
        burst=args.burst,
        failure_rate=args.failure_rate,
        failure_kinds=tuple(k for k in args.failure_kinds.split(",") if k),
        seed=args.seed,
        hang_s=args.hang_s,
        dedup=args.dedup,
        host=args.host,
        port=args.port,
    ).start()
    print(f"TWILIO_API_BASE={fake.twilio_api_base}")
    print(f"MOSIO_API_BASE={fake.mosio_api_base}")
    print(f"stats: {fake.url}stats  (Ctrl-C stops)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
