"""Page times at 1,000 and at 1,000,000 messages: pages must not slow down as a project's texts
pile up (see docs/architecture.md, "Performance at scale").

`python benchmarks/pages.py` builds two throwaway SQLite databases (the embedded default: WAL,
IMMEDIATE transactions), each with one project: 1,000,000 texts over the last 12 months to
5,000 participants (200 each), with ten rules, forty sends by hand and 20,000 replies; and the
same study at 1,000 texts (5 participants, 200 texts each, one send). Each page so shows as
many rows at both sizes, and only the number of texts behind it differs. Rows go in with raw
SQL (`executemany`), each size in its own process; the large database takes a few minutes.

Then, with DEBUG off and the statistics refreshed by the portal's own scheduled task (as a
deployment's hourly schedule does after such a load), it times every main page through Django's
test client as the project's owner (the admin pages as a server administrator). Both databases
are timed in one process, page by page and size after size (warm-up once each, then the median
of 3), so a load change on this shared machine touches both sizes alike. It prints each page's
time and query count at both sizes, and last

    page_ratio_max=<slowest page's time at 1M / its time at 1k> slowest_ms_at_1m=<ms>

Targets: page_ratio_max <= 3 and slowest_ms_at_1m <= 150 on this machine, and every page's
query count equal at both sizes. It exits 1 when one is missed.

    python benchmarks/pages.py [--sizes 1000,1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password-123"  # noqa: S105 (a throwaway database)
TEXTS_PER_PARTICIPANT = 200  # 5,000 participants at 1,000,000 texts
RULES = 10
TEXTS_PER_SEND = 2_500  # 40 sends at 1,000,000 (of the manual rule's 100,000 texts)
REPLY_EVERY = 50  # one reply per 50 messages: 20,000 at 1,000,000
RATIO_TARGET = 3.0
SLOWEST_TARGET_MS = 150.0


# --- The child: one size, one database ---------------------------------------------------------
def setup(directory: str) -> None:
    os.environ["DATABASE_URL"] = f"sqlite:///{directory}/pages.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret")
    os.environ.setdefault("SECRETS_ENCRYPTION_KEYS", "w2nrQiDO3D_4uvgFdTsmaMCiQ_Qx0pb4fwTJ3dJsMBE=")
    os.environ.setdefault("SECRETS_FINGERPRINT_KEY", "benchmark-fingerprint-key")
    os.environ["SMS_GATEWAY_OVERRIDE"] = "console"
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_SSL_REDIRECT = False
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.WHITENOISE_AUTOREFRESH = True
    # No collectstatic for a benchmark: templates' {% static %} resolves without the manifest.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _raw_insert(model, template, rows, columns_varying) -> None:
    """Insert `rows` (tuples of the `columns_varying` attnames' values, already in database
    form) with every other column taken from `template` (an unsaved instance with defaults)."""
    from django.db import connection

    fields = [f for f in model._meta.concrete_fields]
    fixed = {
        f.attname: f.get_db_prep_save(getattr(template, f.attname), connection)
        for f in fields
        if f.attname not in columns_varying
    }
    names = list(columns_varying) + list(fixed)
    table = model._meta.db_table
    sql = (
        f'INSERT INTO "{table}" ({", ".join(connection.ops.quote_name(n) for n in names)}) '  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(names))})"
    )
    tail = tuple(fixed.values())
    batch: list[tuple] = []
    with connection.cursor() as cursor:
        for row in rows:
            batch.append(row + tail)
            if len(batch) == 20_000:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)


def build(size: int) -> dict:
    participants = max(size // TEXTS_PER_PARTICIPANT, 1)
    send_count = max(size // RULES // TEXTS_PER_SEND, 1)
    replies = max(size // REPLY_EVERY, 100)  # at least a full page of the admin's Reply list
    import datetime

    from django.contrib.auth.models import Group
    from django.db import connection, transaction
    from django.utils import timezone

    from billing.models import Account, AccountMembership, Plan
    from messaging.models import Message, MessageRule, Reply, Send
    from portal.models import SERVER_ADMIN_GROUP, User
    from projects import crypto
    from projects.models import Membership, Participant, Project, ProviderLink, RedcapInstance

    owner = User.objects.create_user(
        email="owner@bench.invalid", password=PASSWORD, email_verified=True
    )
    admin = User.objects.create_user(
        email="admin@bench.invalid",
        password=PASSWORD,
        email_verified=True,
        is_staff=True,
        is_superuser=True,
    )
    admin.groups.add(Group.objects.get_or_create(name=SERVER_ADMIN_GROUP)[0])
    plan = Plan.objects.create(name="Benchmark plan", project_limit=10, monthly_messages=10**7)
    account = Account.objects.create(name="Benchmark lab", plan=plan, time_zone="America/Chicago")
    AccountMembership.objects.create(account=account, user=owner, role="owner")
    instance = RedcapInstance.objects.create(
        name="Benchmark REDCap", api_url="https://redcap.invalid/api/"
    )
    project = Project.objects.create(
        account=account,
        redcap_instance=instance,
        redcap_project_id=4242,
        title="Benchmark study",
        pi_name="Pat Benchmark",
        pi_email="pi@bench.invalid",
        irb_protocol="IRB-BENCH",
    )
    Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
    ProviderLink.objects.create(
        project=project,
        provider="sandbox",
        config_encrypted=crypto.encrypt_json({}),
        rate_per_second=5,
        linked_by=owner,
    )
    Participant.objects.bulk_create(
        Participant(
            project=project,
            record_id=str(n + 1),
            phone_encrypted="",
            phone_last4=f"{n % 10_000:04d}",
            consented=True,
            time_zone="America/Chicago",
            first_name=f"P{n + 1}",
        )
        for n in range(participants)
    )
    people = list(Participant.objects.filter(project=project).values_list("pk", flat=True))
    rules = [
        MessageRule.objects.create(
            project=project,
            kind="reminder",
            name=f"Reminder {n + 1}",
            body="Please complete today's survey: [survey-link]",
            status=MessageRule.Status.ACTIVE,
            schedule=MessageRule.Schedule.RECURRING if n < RULES - 1 else "manual",
            created_by=owner,
        )
        for n in range(RULES)
    ]
    sends = [
        Send.objects.create(project=project, rule=rules[-1], created_by=owner, total=0)
        for _ in range(send_count)
    ]

    now = timezone.now().replace(microsecond=0)
    start = now - datetime.timedelta(days=365)
    span = (now - start).total_seconds()
    adapt = connection.ops.adapt_datetimefield_value
    future = int(size * 0.995)  # the last 0.5% are still to go out
    varying = [
        "id",
        "participant_id",
        "rule_id",
        "send_id",
        "occurrence",
        "dedup_key",
        "kind",
        "status",
        "due_at",
        "not_before",
        "sent_at",
        "delivered_at",
        "created_at",
        "updated_at",
        "provider_message_id",
    ]

    def message_rows():
        for i in range(size):
            due = start + datetime.timedelta(seconds=span * i / size)
            if i >= future:
                due = now + datetime.timedelta(minutes=i - future)
            rule = rules[i % RULES] if i % 53 else None
            send_id = None
            if rule is rules[-1]:
                send_id = sends[(i * send_count) // size].pk
            draw = (i * 2654435761) % 1000
            if i >= future:
                status = "queued"
            elif draw < 35:  # landlines, numbers out of service: 5% in all
                status = "failed"
            elif draw < 50:
                status = "undelivered"
            elif draw < 52:
                status = "unknown"
            elif draw < 72:
                status = "skipped"
            elif draw < 77:
                status = "cancelled"
            elif draw < 79:
                status = "held"
            elif draw < 200:
                status = "sent"
            else:
                status = "delivered"
            went = status in ("sent", "delivered", "undelivered", "unknown")
            sent_at = due + datetime.timedelta(seconds=3) if went else None
            delivered_at = due + datetime.timedelta(seconds=9) if status == "delivered" else None
            yield (
                i + 1,
                people[(i * 7919) % len(people)],
                rule.pk if rule else None,
                send_id,
                str(i),
                f"bench:{i}",
                rule.kind if rule else "adhoc",
                status,
                adapt(due),
                adapt(due),
                adapt(sent_at) if sent_at else None,
                adapt(delivered_at) if delivered_at else None,
                adapt(due - datetime.timedelta(hours=1)),
                adapt(delivered_at or sent_at or due),
                f"SM{i:032x}" if went else "",
            )

    template = Message(
        project=project,
        body="Please complete today's survey: https://redcap.invalid/surveys/?s=ABCDEFGHIJ",
        segments=1,
        encoding="GSM-7",
        units=1,
        provider="sandbox",
        attempts=1,
    )
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous=OFF")
    with transaction.atomic():
        _raw_insert(Message, template, message_rows(), varying)
        for send in sends:
            send.total = Message.objects.filter(send=send).count()
            send.save(update_fields=["total"])

    def reply_rows():
        for n in range(replies):
            when = start + datetime.timedelta(seconds=span * n / replies)
            yield (
                n + 1,
                people[(n * 104729) % len(people)],
                f"SMr{n:031x}",
                "STOP" if n % 97 == 0 else "Done, thanks",
                "stop" if n % 97 == 0 else "",
                adapt(when),
                adapt(when),
            )

    with transaction.atomic():
        _raw_insert(
            Reply,
            Reply(project=project, provider="sandbox", phone_last4="0000"),
            reply_rows(),
            [
                "id",
                "participant_id",
                "provider_message_id",
                "body",
                "keyword",
                "received_at",
                "created_at",
            ],
        )
    # What a deployment's schedule does within the hour of such a load.
    from messaging.paging import LogCursor
    from portal.tasks import refresh_statistics

    refresh_statistics()

    deep = Message.objects.filter(project=project).order_by("-due_at", "-id")[
        max(int(size * 0.9) - 1, 0)
    ]
    some_day = (start + datetime.timedelta(days=120)).date()
    return {
        "owner": owner.pk,
        "admin": admin.pk,
        "project": project.pk,
        "account": account.pk,
        "rule": rules[3].pk,
        "send": sends[len(sends) // 2].pk,
        "participant": people[len(people) // 2],
        "record": Participant.objects.get(pk=people[len(people) // 3]).record_id,
        "deep": LogCursor.older_than(deep).token(),
        "since": some_day.isoformat(),  # a month: 80,000 texts at 1M, 80 at 1k
        "until": (some_day + datetime.timedelta(days=29)).isoformat(),
    }


def pages(data: dict) -> list[tuple[str, str, str]]:
    from django.urls import reverse

    p = data["project"]
    log = reverse("message-log", args=[p])
    return [
        ("overview", "owner", reverse("project-detail", args=[p])),
        ("log", "owner", log),
        ("log ?status=failed", "owner", log + "?status=failed,undelivered"),
        ("log ?rule=", "owner", f"{log}?rule={data['rule']}"),
        ("log ?send=", "owner", f"{log}?send={data['send']}"),
        ("log ?record=", "owner", f"{log}?record={data['record']}"),
        ("log ?since=&until=", "owner", f"{log}?since={data['since']}&until={data['until']}"),
        ("log, deep page (90%)", "owner", f"{log}?before={data['deep']}"),
        ("log CSV, first rows", "owner", reverse("message-log-csv", args=[p])),
        ("participants", "owner", reverse("project-participants", args=[p])),
        ("a participant", "owner", reverse("participant-detail", args=[p, data["participant"]])),
        ("messages (rules list)", "owner", reverse("rule-list", args=[p])),
        ("a rule", "owner", reverse("rule-detail", args=[p, data["rule"]])),
        ("a send", "owner", reverse("send-detail", args=[p, data["send"]])),
        ("billing", "owner", reverse("billing-account-detail", args=[data["account"]])),
        ("dashboard (owner)", "owner", reverse("dashboard")),
        ("dashboard (admin)", "admin", reverse("dashboard")),
        ("admin: Message list", "admin", reverse("admin:messaging_message_changelist")),
        ("admin: Reply list", "admin", reverse("admin:messaging_reply_changelist")),
    ]


def _fetch(client, url: str) -> None:
    response = client.get(url)
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    if response.streaming:  # the CSV: its header and first 100 rows
        lines = 0
        for chunk in response.streaming_content:
            lines += chunk.count(b"\n")
            if lines > 100:
                break
        response.close()


def _use(path: str) -> None:
    """Point the default connection at one size's database (closed, it reopens there)."""
    from django.db import connections

    connections["default"].close()
    connections["default"].settings_dict["NAME"] = path


def measure(runs: dict[int, dict]) -> dict[int, dict]:
    """Time every page at each size, alternating sizes page by page."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from portal.models import User

    clients = {}
    for size, run in runs.items():
        _use(run["path"])
        for who in ("owner", "admin"):
            clients[size, who] = Client()
            clients[size, who].force_login(User.objects.get(pk=run["data"][who]))
    results: dict[int, dict] = {size: {} for size in runs}
    urls = {size: pages(run["data"]) for size, run in runs.items()}
    for n, (name, who, _) in enumerate(urls[next(iter(runs))]):
        times: dict[int, list[float]] = {size: [] for size in runs}
        for round_ in range(4):  # the first round warms up
            for size, run in runs.items():
                _use(run["path"])
                url = urls[size][n][2]
                began = time.perf_counter()
                _fetch(clients[size, who], url)
                if round_:
                    times[size].append((time.perf_counter() - began) * 1000)
        for size, run in runs.items():
            _use(run["path"])
            with CaptureQueriesContext(connection) as queries:
                _fetch(clients[size, who], urls[size][n][2])
            results[size][name] = {"ms": statistics.median(times[size]), "queries": len(queries)}
    return results


def child(size: int, directory: str) -> None:
    began = time.perf_counter()
    setup(directory)
    data = build(size)
    print(json.dumps({"build_s": time.perf_counter() - began, "data": data}))


# --- The parent: build each size, then time both ----------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,1000000")
    parser.add_argument("--keep", help="keep each size's database under this folder")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.dir)
        return 0
    small, large = (int(s) for s in args.sizes.split(","))
    root = args.keep or tempfile.mkdtemp(prefix="studytext-pages-")
    runs = {}
    try:
        for size in (small, large):
            directory = os.path.join(root, str(size))
            shutil.rmtree(directory, ignore_errors=True)
            os.makedirs(directory)
            command = [sys.executable, __file__, "--child", str(size), "--dir", directory]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                print(done.stdout, done.stderr, sep="\n")
                return 1
            run = json.loads(done.stdout.strip().splitlines()[-1])
            run["path"] = os.path.join(directory, "pages.sqlite3")
            runs[size] = run
            print(f"built {size:,} messages in {run['build_s']:.0f} s", flush=True)
        setup(os.path.join(root, str(small)))
        results = measure(runs)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return report(results[small], results[large], f"{small:,}", f"{large:,}")


def report(a: dict, b: dict, label_a: str, label_b: str) -> int:
    print(f"{'page':<24} {'ms @' + label_a:>12} {'ms @' + label_b:>14} {'ratio':>6}  queries")
    ratios, failures = {}, []
    for name in a:
        ratios[name] = b[name]["ms"] / a[name]["ms"]
        same = a[name]["queries"] == b[name]["queries"]
        if not same:
            failures.append(f"{name}: {a[name]['queries']} queries vs {b[name]['queries']}")
        print(
            f"{name:<24} {a[name]['ms']:>12.1f} {b[name]['ms']:>14.1f} {ratios[name]:>6.2f}  "
            f"{a[name]['queries']} / {b[name]['queries']}{'' if same else '  (differ)'}"
        )
    ratio_max = max(ratios.values())
    slowest = max(page["ms"] for page in b.values())
    if ratio_max > RATIO_TARGET:
        failures.append(f"page_ratio_max {ratio_max:.2f} > {RATIO_TARGET}")
    if slowest > SLOWEST_TARGET_MS:
        failures.append(f"slowest_ms_at_1m {slowest:.0f} > {SLOWEST_TARGET_MS:.0f}")
    for failure in failures:
        print("MISSED:", failure)
    print(f"page_ratio_max={ratio_max:.2f} slowest_ms_at_1m={slowest:.0f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
