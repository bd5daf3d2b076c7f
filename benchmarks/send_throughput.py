"""Send throughput: the real pipeline against a loopback fake provider, as ratios.

    .venv/bin/python benchmarks/send_throughput.py

It sets up Django on its own throwaway SQLite file (the embedded default: WAL, IMMEDIATE
transactions), migrates, seeds an account, projects, participants and Twilio provider links whose
credentials are fake, points TWILIO_API_BASE at a FakeProvider (tests/fakes/provider.py), and
runs the real pipeline: a "once" rule falls due and the dispatcher (`outbox.dispatch`, the
every-minute q2 task) materialises its texts, then `messaging.sender.run` (release: the first name
each text pipes is exported from REDCap as it goes out, one record export per batch,
from a third FakeProvider's fake REDCap with --redcap-latency-ms; claim, quota, gateway over
HTTP, record), as the q2 task does. It prints, measured in the same run:

  (a) rate_ratio: achieved / configured rate for a 2,000-message send at 50 messages per second
      with 50 ms provider latency. The fake enforces the rate with a token bucket holding one
      second's worth (50: "50 a second"; --burst changes it) and answers 429 beyond it; the 429s
      are printed, and any 429 makes rate_ratio 0;
  (b) bare_ratio: pipeline throughput / a bare httpx loop with the same concurrency, against the
      same fake with no rate limit;
  (c) queries_per_message: database queries per sent message (every query of the dispatcher
      and the sender, on every thread), at 200 and at 2,000 messages; the larger is reported.

  (d) the last gate (docs/sending.md): a 2,000-text send at 100 a second; a quarter of the way,
      the participants whose texts are in flight or next in line (a tenth) text STOP, in one
      transaction; 60% of the way the sending hours close. stop_leaks / window_leaks: attempts
      recorded after the STOP committed (for those participants) / after the close; the line
      before says how many provider calls still arrived after each (only calls already handed
      to a pool thread may, at most START_AHEAD of the pace, after a STOP; none after the close).

  (e) many links: 100 provider links (a study each) x 20 texts, every link at 1 text a second
      (a US long code), 50 ms provider latency, 100 ms REDCap latency; and the same with one
      link. links_ratio: each link's 20 texts ideally span 19 s from the sender's start; the
      ratio is 19 s over the time the sender took (achieved / configured aggregate, counting
      each link's gaps). redcap_exports_per_text: REDCap exports / texts sent (read ahead:
      docs/sending.md). Queries per text at 1 and at 100 links (dispatcher and sender).

Its last line is `rate_ratio=… bare_ratio=… queries_per_message=… stop_leaks=… window_leaks=…
links_ratio=… redcap_exports_per_text=… queries_per_text_1_link=… queries_per_text_100_links=…`;
it exits 1 when a target is missed (the `targets:` line says which); the line before the last
says how many provider calls still arrived after the STOP and after the close. Targets:
rate_ratio >= 0.95 with no 429, bare_ratio >= 0.8, queries_per_message <= 10 and about the same
at both sizes, stop_leaks = window_leaks = 0, links_ratio >= 0.95, redcap_exports_per_text <=
0.1, queries per text <= 6 at 1 and at 100 links. Options: --messages N (default 2000), --small N
(200), --rate R (50), --latency-ms L (50), --burst B (default: R), --redcap-latency-ms L (100),
--gate-messages N (2000), --gate-rate R (100), --links N (100), --link-texts N (20),
--link-rate R (1). The fakes run in child processes, as a
real provider is elsewhere: in this process their threads would compete with the sender's for
the interpreter lock.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f" * 32


def configure_environment(directory: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{directory}/bench.sqlite3"
    os.environ["SMS_GATEWAY_OVERRIDE"] = ""
    os.environ["REDIS_URL"] = ""
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_DEBUG"] = "False"  # no query log kept in memory
    # The fake REDCap answers on http://127.0.0.1 (projects/netguard.py refuses that otherwise;
    # this process is not a web or worker process, which refuse to start with it).
    os.environ["REDCAP_ALLOW_LOOPBACK_HTTP"] = "True"
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-secret-key-not-for-production")
    os.environ.setdefault("SECRETS_ENCRYPTION_KEYS", "w2nrQiDO3D_4uvgFdTsmaMCiQ_Qx0pb4fwTJ3dJsMBE=")
    os.environ.setdefault("SECRETS_FINGERPRINT_KEY", "benchmark-fingerprint-key")


class QueryCounter:
    """Counts every statement sent through Django's cursor wrapper, on every thread."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.active = False

    def install(self) -> None:
        from django.db.backends import utils

        counter = self
        original_execute = utils.CursorWrapper.execute
        original_executemany = utils.CursorWrapper.executemany

        def execute(self, sql, params=None):
            counter.tick()
            return original_execute(self, sql, params)

        def executemany(self, sql, param_list):
            counter.tick()
            return original_executemany(self, sql, param_list)

        utils.CursorWrapper.execute = execute
        utils.CursorWrapper.executemany = executemany

    def tick(self) -> None:
        if self.active:
            with self.lock:
                self.count += 1

    def start(self) -> None:
        with self.lock:
            self.count = 0
        self.active = True

    def stop(self) -> int:
        self.active = False
        return self.count


class Seed:
    """The objects every phase shares, and a fresh project per phase."""

    def __init__(self) -> None:
        from billing.models import Account, Plan
        from portal.models import User
        from projects.models import RedcapInstance

        self.user = User.objects.create_user(
            email="bench@uni.test", password=None, full_name="Bench"
        )
        plan = Plan.objects.create(name="Bench", project_limit=100, monthly_messages=1_000_000)
        self.account = Account.objects.create(name="Bench lab", plan=plan)
        self.instance = RedcapInstance.objects.create(
            name="Bench REDCap", api_url="https://redcap.bench.test/api/"
        )
        self.projects = 0

    def project(self, *, participants: int, rate: float):
        import datetime
        import secrets

        from django.utils import timezone

        from messaging.models import MessageRule
        from projects import crypto
        from projects.models import (
            FieldMapping,
            Membership,
            Participant,
            Project,
            ProviderLink,
            RedcapLink,
        )

        self.projects += 1
        n = self.projects
        project = Project.objects.create(
            account=self.account,
            redcap_instance=self.instance,
            redcap_project_id=9000 + n,
            title=f"Bench study {n}",
            pi_name="Pat Investigator",
            pi_email="pi@uni.test",
            irb_protocol=f"IRB-BENCH-{n}",
            time_zone="UTC",
            # No quiet hours: a benchmark must not depend on the time of day it runs at.
            send_window_start=datetime.time(0, 0),
            send_window_end=datetime.time(23, 59, 59, 999999),
            send_days=list(range(7)),
        )
        Membership.objects.create(project=project, user=self.user, role=Membership.Role.OWNER)
        token = secrets.token_hex(16).upper()
        RedcapLink.objects.create(
            project=project,
            token_encrypted=crypto.encrypt(token),
            token_last4=token[-4:],
            token_fingerprint=crypto.fingerprint(token, purpose="redcap-token"),
            linked_by=self.user,
        )
        FieldMapping.objects.create(
            project=project,
            phone_field="phone",
            consent_field="consent",
            first_name_field="first_name",
        )
        sender = f"+1415555{n:04d}"
        config = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "sender": sender}
        ProviderLink.objects.create(
            project=project,
            provider="twilio",
            config_encrypted=crypto.encrypt_json(config),
            display={"Sender": sender},
            fingerprint=crypto.fingerprint(sender, purpose="provider:twilio"),
            rate_per_second=rate,
            webhook_secret=secrets.token_urlsafe(32),
            linked_by=self.user,
        )
        rows = []
        for i in range(participants):
            phone = f"+1{200 + n:03d}555{i:04d}"
            rows.append(
                Participant(
                    project=project,
                    record_id=str(i + 1),
                    phone_encrypted=crypto.encrypt(phone),
                    phone_fingerprint=crypto.fingerprint(phone, purpose="phone"),
                    phone_last4=phone[-4:],
                    consented=True,
                    first_name=f"P{i}",
                )
            )
        Participant.objects.bulk_create(rows, batch_size=500)
        due_at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=30)
        rule = MessageRule.objects.create(
            project=project,
            kind=MessageRule.Kind.ALERT,
            name=f"Bench alert {n}",
            body=f"Hello [first_name], this is study {n}: please remember your visit.",
            # Due half a minute ago, in UTC (the project's zone): the next dispatcher run
            # materialises it for every participant.
            schedule=MessageRule.Schedule.ONCE,
            once_date=due_at.date(),
            send_time=due_at.time(),
            materialized_through=due_at - datetime.timedelta(seconds=30),
            status=MessageRule.Status.ACTIVE,
            created_by=self.user,
        )
        return project, rule


def _serve_fake(conn, options: dict) -> None:
    """The fake provider's own process: answers "stats", "reset" and "stop" on a pipe."""
    from tests.fakes.provider import FakeProvider

    fake = FakeProvider(**options).start()
    conn.send(fake.twilio_api_base)
    while True:
        command = conn.recv()
        if isinstance(command, tuple) and command[0] == "calls_since":
            conn.send(fake.calls_since(command[1], command[2]))
        elif command == "stats":
            conn.send(fake.stats())
        elif command == "reset":
            fake.reset()
            conn.send(None)
        else:
            fake.stop()
            conn.send(None)
            return


class RemoteFake:
    """A FakeProvider in a child process, as a real provider is: its threads do not compete
    with the sender's for this process's interpreter lock."""

    def __init__(self, **options) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve_fake, args=(child, options), daemon=True)

    def __enter__(self) -> RemoteFake:
        self.process.start()
        self.twilio_api_base = self.conn.recv()
        return self

    def __exit__(self, *exc) -> None:
        self.conn.send("stop")
        self.conn.recv()
        self.process.join(5)

    def stats(self) -> dict:
        self.conn.send("stats")
        return self.conn.recv()

    def reset(self) -> None:
        self.conn.send("reset")
        self.conn.recv()

    def calls_since(self, moment: float, numbers: set[str] | None = None) -> int:
        self.conn.send(("calls_since", moment, numbers))
        return self.conn.recv()


def run_pipeline(seed: Seed, counter: QueryCounter, *, messages: int, rate: float) -> dict:
    """A rule falls due for `messages` participants: run the dispatcher, then the sender loop
    until the queue is empty, as the q2 tasks do (a sender run lasts SENDER_MAX_SECONDS at most;
    another follows if work is left).
    """
    from django.db.models import Count

    from messaging import sender
    from messaging.models import Message, MessageRule
    from messaging.services.outbox import dispatch

    project, rule = seed.project(participants=messages, rate=rate)
    counter.start()
    started = time.monotonic()
    dispatched = dispatch()
    assert dispatched.queued == messages, dispatched
    reports = []
    while True:
        report = sender.run()
        reports.append(report)
        if not report.more_work:
            break
    elapsed = time.monotonic() - started
    queries = counter.stop()
    statuses = dict(
        Message.objects.filter(project=project).values_list("status").annotate(n=Count("id"))
    )
    sent = statuses.get(Message.Status.SENT, 0)
    result = {
        "sent": sent,
        "statuses": statuses,
        "elapsed": elapsed,
        "queries": queries,
        "queries_per_message": queries / max(sent, 1),
        "runs": len(reports),
    }
    # Done: the next phase's dispatcher runs need not look at this rule again.
    MessageRule.objects.filter(pk=rule.pk).update(status=MessageRule.Status.ARCHIVED)
    return result


def run_many_links(
    seed: Seed,
    counter: QueryCounter,
    fake: RemoteFake,
    redcap: RemoteFake,
    *,
    links: int,
    texts: int,
    rate: float,
) -> dict:
    """(e) Many studies at once: `links` provider links (a project each) with `texts` texts
    each, every link paced at `rate` (a US long code: one a second). Their rules fall due
    together; the dispatcher queues them and the sender loop sends until the queue is empty.

    links_ratio: each link's texts ideally span (texts - 1) / rate seconds from the sender's
    start (1.0: every link kept its pace from the first moment); the ratio is that ideal over the
    time the sender took (achieved / configured aggregate, counting each link's gaps).
    """
    from django.db.models import Count

    from messaging import sender
    from messaging.models import Message, MessageRule
    from messaging.services.outbox import dispatch

    made = [seed.project(participants=texts, rate=rate) for _ in range(links)]
    fake.reset()
    redcap.reset()
    counter.start()
    assert dispatch().queued == links * texts
    started = time.monotonic()
    runs = 0
    while True:
        runs += 1
        if not sender.run().more_work:
            break
    elapsed = time.monotonic() - started
    queries = counter.stop()
    projects = [project for project, _ in made]
    statuses = dict(
        Message.objects.filter(project__in=projects)
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    sent = statuses.get(Message.Status.SENT, 0)
    stats = fake.stats()
    MessageRule.objects.filter(pk__in=[rule.pk for _, rule in made]).update(
        status=MessageRule.Status.ARCHIVED
    )
    return {
        "links": links,
        "sent": sent,
        "statuses": statuses,
        "elapsed": elapsed,
        "runs": runs,
        "links_ratio": ((texts - 1) / rate) / elapsed,
        "achieved": sent / elapsed,
        "queries_per_text": queries / max(sent, 1),
        "redcap_exports": redcap.stats()["redcap_calls"],
        "redcap_exports_per_text": redcap.stats()["redcap_calls"] / max(sent, 1),
        "duplicates": stats["duplicates"],
        "max_in_flight": stats["max_in_flight"],
    }


def midday_zone() -> str:
    """A fixed-offset zone where it is between 6 a.m. and 5 p.m. now (Etc/GMT-N is UTC+N), so
    that the sending hours' close can be set a few seconds ahead without crossing midnight."""
    import datetime

    hour = datetime.datetime.now(datetime.UTC).hour
    offset = next(h for h in range(-12, 13) if 6 <= (hour + h) % 24 < 17)
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def run_last_gate(
    seed: Seed, fake: RemoteFake, *, messages: int, rate: float, stop_after: int, close_in: float
) -> dict:
    """(d) The last gate under load: a `messages`-text send at `rate`; once `stop_after` texts
    were accepted, the participants whose texts are in flight or next in line text STOP (one
    transaction); `close_in` seconds after the sender starts, the sending hours close. Counts
    the attempts recorded after the STOP committed (to those participants) and after the close,
    which must be 0, and the provider calls that still arrived after each."""
    import datetime
    import zoneinfo

    from django.db import connection, transaction
    from django.utils import timezone

    from messaging import sender
    from messaging.models import Attempt, Message
    from messaging.scheduling import local_to_utc
    from messaging.services import optouts
    from messaging.services.outbox import dispatch
    from projects.models import Participant, Project

    project, _ = seed.project(participants=messages, rate=rate)
    name = midday_zone()
    tz = zoneinfo.ZoneInfo(name)
    assert dispatch().queued == messages
    Project.objects.filter(pk=project.pk).update(time_zone=name)  # (the rule was due in UTC)
    local_now = timezone.now().astimezone(tz)
    closes = (local_now + datetime.timedelta(seconds=close_in)).time()
    close = local_to_utc(local_now.date(), closes, tz)
    Project.objects.filter(pk=project.pk).update(send_window_end=closes)
    stop = {}

    def stop_mid_send() -> None:
        try:
            while fake.stats()["accepted"] < stop_after:
                time.sleep(0.01)
            # In flight (claimed) first, then the next in line: 10% of the send.
            ids = list(
                Message.objects.filter(
                    project=project, status__in=[Message.Status.SENDING, Message.Status.QUEUED]
                )
                .order_by("-status", "not_before", "id")  # "sending" sorts before "queued"
                .values_list("participant_id", flat=True)[: messages // 10]
            )
            people = list(Participant.objects.filter(pk__in=ids))
            with transaction.atomic():
                for person in people:
                    optouts.opt_out_record(participant=person, source="keyword")
            stop["moment"], stop["at"] = time.time(), timezone.now()
            stop["people"] = people
        finally:
            connection.close()

    stopper = threading.Thread(target=stop_mid_send)
    fake.reset()
    stopper.start()
    started = time.monotonic()
    while True:
        report = sender.run()
        if not report.more_work:
            break
    elapsed = time.monotonic() - started
    stopper.join(60)
    people = stop.get("people", [])
    numbers = {p.phone for p in people}
    stop_leaks = Attempt.objects.filter(
        message__participant__in=people, started_at__gt=stop["at"]
    ).count()
    window_leaks = Attempt.objects.filter(message__project=project, started_at__gte=close).count()
    statuses = dict(
        Message.objects.filter(project=project)
        .values_list("status")
        .annotate(n=models_count("id"))
        .order_by()
    )
    return {
        "stopped": len(people),
        "stop_calls_after": fake.calls_since(stop["moment"], numbers),
        "window_calls_after": fake.calls_since(close.timestamp()),
        "stop_leaks": stop_leaks,
        "window_leaks": window_leaks,
        "handed_ahead": int(sender.START_AHEAD * rate) + 1,
        "statuses": statuses,
        "elapsed": elapsed,
        "duplicates": fake.stats()["duplicates"],
    }


def models_count(field: str):
    from django.db.models import Count

    return Count(field)


def run_bare(url: str, *, messages: int, concurrency: int) -> float:
    """A bare httpx loop: `concurrency` threads posting as fast as the fake answers."""
    import httpx

    client = httpx.Client(
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=10,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )
    counter = iter(range(messages))
    lock = threading.Lock()

    def worker() -> int:
        done = 0
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                return done
            response = client.post(
                url,
                data={"To": f"+1300555{n:04d}", "Body": f"bare {n}", "From": "+14155550000"},
            )
            response.raise_for_status()
            done += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        total = sum(pool.map(lambda _: worker(), range(concurrency)))
    elapsed = time.monotonic() - started
    client.close()
    assert total == messages
    return messages / elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--burst", type=float, default=None, help="default: one second's worth")
    parser.add_argument("--redcap-latency-ms", type=float, default=100)
    parser.add_argument("--gate-messages", type=int, default=2000)
    parser.add_argument("--gate-rate", type=float, default=100)
    parser.add_argument("--links", type=int, default=100)
    parser.add_argument("--link-texts", type=int, default=20)
    parser.add_argument("--link-rate", type=float, default=1)
    args = parser.parse_args(argv)

    directory = tempfile.mkdtemp(prefix="studytext-bench-")
    configure_environment(directory)
    try:
        _run(args)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _run(args) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    began = time.monotonic()
    call_command("migrate", verbosity=0, interactive=False)
    counter = QueryCounter()
    counter.install()
    seed = Seed()
    concurrency = min(settings.SENDER_THREADS, settings.SENDER_MAX_IN_FLIGHT_PER_LINK)
    print(
        f"setup: migrated in {time.monotonic() - began:.1f} s; sender threads "
        f"{settings.SENDER_THREADS}, in flight per link {settings.SENDER_MAX_IN_FLIGHT_PER_LINK}",
        flush=True,
    )

    with (
        RemoteFake(
            latency_ms=args.latency_ms, rate=args.rate, burst=args.burst or args.rate
        ) as limited,
        RemoteFake(latency_ms=args.latency_ms) as free,
        RemoteFake(redcap_latency_ms=args.redcap_latency_ms) as redcap,
        RemoteFake(latency_ms=args.latency_ms) as gate_fake,
        RemoteFake(latency_ms=args.latency_ms) as many_fake,
    ):
        seed.instance.api_url = redcap.twilio_api_base.replace("2010-04-01/", "redcap/api/")
        seed.instance.save()
        # (c) small, then (a) and (c) large: paced at the configured rate.
        settings.TWILIO_API_BASE = limited.twilio_api_base
        small = run_pipeline(seed, counter, messages=args.small, rate=args.rate)
        small_stats = limited.stats()
        small_stats["redcap_calls"] = redcap.stats()["redcap_calls"]
        limited.reset()
        redcap.reset()
        large = run_pipeline(seed, counter, messages=args.messages, rate=args.rate)
        large_stats = limited.stats()
        large_stats["redcap_calls"] = redcap.stats()["redcap_calls"]
        for name, result, stats in (("small", small, small_stats), ("paced", large, large_stats)):
            print(
                f"{name}: {result['sent']} sent of {stats['send_attempts']} provider calls in "
                f"{result['elapsed']:.1f} s ({result['runs']} sender runs); provider accepted "
                f"{stats['accepted_per_second'] or 0:.1f}/s, 429s {stats['rate_limited']}, "
                f"duplicates {stats['duplicates']}; {stats['redcap_calls']} REDCap exports; "
                f"{result['queries']} queries ({result['queries_per_message']:.2f} per message); "
                f"statuses {result['statuses']}",
                flush=True,
            )
        rate_ratio = (large_stats["accepted_per_second"] or 0) / args.rate
        if large_stats["rate_limited"] or small_stats["rate_limited"]:
            rate_ratio = 0.0  # a 429 means the pace was not kept: fail the target outright

        # (b) no rate limit: the pipeline against a bare loop of the same concurrency.
        settings.TWILIO_API_BASE = free.twilio_api_base
        url = f"{free.twilio_api_base}Accounts/{ACCOUNT_SID}/Messages.json"
        bare_rate = run_bare(url, messages=args.messages, concurrency=concurrency)
        free.reset()
        redcap.reset()
        fast = run_pipeline(seed, counter, messages=args.messages, rate=9999)
        fast_stats = free.stats()
        fast_stats["redcap_calls"] = redcap.stats()["redcap_calls"]
        pipeline_rate = fast["sent"] / fast["elapsed"]

        # (d) the last gate: a STOP and the close of the sending hours mid-send.
        settings.TWILIO_API_BASE = gate_fake.twilio_api_base
        gate = run_last_gate(
            seed,
            gate_fake,
            messages=args.gate_messages,
            rate=args.gate_rate,
            stop_after=args.gate_messages // 4,
            close_in=args.gate_messages / args.gate_rate * 0.6,
        )
        # (e) many slow links at once, and the same with one link (queries per text).
        settings.TWILIO_API_BASE = many_fake.twilio_api_base
        many = {}
        for links in (1, args.links):
            many[links] = run_many_links(
                seed,
                counter,
                many_fake,
                redcap,
                links=links,
                texts=args.link_texts,
                rate=args.link_rate,
            )
            r = many[links]
            print(
                f"many links: {links} links x {args.link_texts} texts at {args.link_rate:g}/s: "
                f"{r['sent']} sent in {r['elapsed']:.1f} s ({r['achieved']:.1f}/s, ideal "
                f"{(args.link_texts - 1) / args.link_rate:.0f} s; {r['runs']} sender runs); "
                f"links_ratio {r['links_ratio']:.3f}; {r['redcap_exports']} REDCap exports "
                f"({r['redcap_exports_per_text']:.3f} per text); "
                f"{r['queries_per_text']:.2f} queries per text; duplicates {r['duplicates']}; "
                f"provider max in flight {r['max_in_flight']}; statuses {r['statuses']}",
                flush=True,
            )
        print(
            f"unpaced: pipeline {pipeline_rate:.1f} msg/s ({fast['sent']} sent, "
            f"{fast['queries_per_message']:.2f} queries per message, provider max in flight "
            f"{fast_stats['max_in_flight']}, {fast_stats['redcap_calls']} REDCap exports); "
            f"bare httpx loop {bare_rate:.1f} msg/s "
            f"(concurrency {concurrency})",
            flush=True,
        )
    bare_ratio = pipeline_rate / bare_rate
    queries_per_message = max(small["queries_per_message"], large["queries_per_message"])
    print(
        f"queries per message: {small['queries_per_message']:.2f} at {args.small}, "
        f"{large['queries_per_message']:.2f} at {args.messages}; total "
        f"{time.monotonic() - began:.1f} s"
    )
    missed = []
    if gate["stop_leaks"] or gate["window_leaks"]:
        missed.append("an attempt was recorded after the STOP or after the close")
    if gate["stop_calls_after"] > gate["handed_ahead"] or gate["window_calls_after"]:
        missed.append("more provider calls after the STOP or the close than were handed ahead")
    if rate_ratio < 0.95:
        missed.append("rate_ratio < 0.95 (or the provider answered 429)")
    if bare_ratio < 0.8:
        missed.append("bare_ratio < 0.8")
    if queries_per_message > 10:
        missed.append("queries_per_message > 10")
    if large["queries_per_message"] > 1.25 * small["queries_per_message"]:
        missed.append("queries per message grow with the number of messages")
    wide, one = many[args.links], many[1]
    if wide["links_ratio"] < 0.95:
        missed.append("links_ratio < 0.95")
    if wide["redcap_exports_per_text"] > 0.1:
        missed.append("redcap_exports_per_text > 0.1")
    if max(wide["queries_per_text"], one["queries_per_text"]) > 6:
        missed.append("queries per text > 6 at 1 or at many links")
    if wide["duplicates"] or wide["sent"] != args.links * args.link_texts:
        missed.append("many links: a text sent twice or not sent")
    print("targets: " + ("MISSED: " + "; ".join(missed) if missed else "all met"))
    print(
        f"last gate: {gate['stopped']} participants texted STOP mid-send; provider calls to them "
        f"after the STOP committed {gate['stop_calls_after']} (only calls already handed to a "
        f"thread: at most {gate['handed_ahead']}, START_AHEAD of the pace); provider calls after "
        f"the sending hours closed {gate['window_calls_after']}; duplicates "
        f"{gate['duplicates']}; statuses {gate['statuses']} in {gate['elapsed']:.1f} s",
        flush=True,
    )
    print(
        f"rate_ratio={rate_ratio:.3f} bare_ratio={bare_ratio:.3f} "
        f"queries_per_message={queries_per_message:.2f} "
        f"stop_leaks={gate['stop_leaks']} window_leaks={gate['window_leaks']} "
        f"links_ratio={wide['links_ratio']:.3f} "
        f"redcap_exports_per_text={wide['redcap_exports_per_text']:.3f} "
        f"queries_per_text_1_link={one['queries_per_text']:.2f} "
        f"queries_per_text_{args.links}_links={wide['queries_per_text']:.2f}"
    )
    if missed:
        sys.exit(1)


if __name__ == "__main__":
    main()
