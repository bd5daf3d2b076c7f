"""Quota reservations under concurrency: reservations per second, and the overshoot (must be 0).

Standalone: `python benchmarks/quota_reserve.py` makes a throwaway SQLite database (WAL,
IMMEDIATE transactions: the settings the portal runs with), migrates it, and then

1. one thread reserves one unit at a time until the quota is gone (the baseline rate, and the
   queries one reservation costs);
2. N threads race to do the same against a fresh quota, each reservation in its own transaction
   as messaging's claim does.

It prints both rates, their ratio (measured in the same run, because these machines are shared and
absolute times wander), and the overshoot: units granted beyond the quota, which must be 0. It
exits non-zero if the overshoot is not 0 or the per-project counters disagree with the period.

    python benchmarks/quota_reserve.py [--threads 8] [--units 2000] [--credits 500]
    python benchmarks/quota_reserve.py --database-url postgres://.../throwaway_db
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup(database_url: str | None) -> str | None:
    tmp = None
    if not database_url:
        tmp = tempfile.mkdtemp(prefix="studytext-bench-")
        database_url = f"sqlite:///{tmp}/bench.sqlite3"
    os.environ["DATABASE_URL"] = database_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-not-a-secret")
    os.environ["LOG_LEVEL"] = "WARNING"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return tmp


def make_account(tag: str, *, included: int, credits: int, projects: int):
    from billing.models import Account, Plan
    from billing.services import credits_add
    from projects.models import Project, RedcapInstance

    plan = Plan.objects.create(
        name=f"Benchmark {tag}", project_limit=projects, monthly_messages=included
    )
    account = Account.objects.create(name=f"Benchmark {tag}", plan=plan, time_zone="UTC")
    instance, _ = RedcapInstance.objects.get_or_create(
        name="Benchmark REDCap", defaults={"api_url": "https://redcap.invalid/api/"}
    )
    base = int(time.time() * 1000) % 10**8
    rows = [
        Project(
            account=account,
            redcap_instance=instance,
            redcap_project_id=base + i,
            title=f"Benchmark project {i}",
            pi_name="Benchmark",
            pi_email="bench@example.invalid",
            irb_protocol="BENCH",
        )
        for i in range(projects)
    ]
    Project.objects.bulk_create(rows)
    projects_ = list(Project.objects.filter(account=account).select_related("account"))
    if credits:
        credits_add(account=account, units=credits)
    return account, projects_


def drain(projects, *, threads: int) -> tuple[int, float, list[BaseException]]:
    """`threads` workers reserve one unit at a time until refused. Returns (granted, seconds)."""
    from django.db import connection, transaction

    from billing.services import quota_reserve

    barrier = threading.Barrier(threads + 1)
    granted = [0] * threads
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            n = 0
            while True:
                project = projects[(i + n) % len(projects)]
                n += 1
                with transaction.atomic():
                    if not quota_reserve(project=project, units=1):
                        break
                granted[i] += 1
        except BaseException as exc:  # noqa: BLE001 - reported
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    return sum(granted), time.perf_counter() - started, errors


def queries_per_reservation(project, samples: int = 50) -> float:
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from billing.services import quota_reserve

    with CaptureQueriesContext(connection) as ctx:
        for _ in range(samples):
            with transaction.atomic():
                quota_reserve(project=project, units=1)
    bookkeeping = ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE")
    statements = [q for q in ctx.captured_queries if not q["sql"].upper().startswith(bookkeeping)]
    return len(statements) / samples


def check(account, capacity: int, granted: int) -> tuple[int, bool]:
    from django.db.models import Sum

    from billing.models import ProjectUsage, UsagePeriod

    period = UsagePeriod.objects.get(account=account)
    per_project = ProjectUsage.objects.filter(period=period).aggregate(n=Sum("units"))["n"] or 0
    overshoot = max(granted, period.used) - capacity
    consistent = period.used == granted == per_project
    return overshoot, consistent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--units", type=int, default=2000, help="included units per quota")
    parser.add_argument("--credits", type=int, default=500, help="credit units per quota")
    parser.add_argument("--database-url", help="a THROWAWAY database (default: temp SQLite)")
    args = parser.parse_args()

    tmp = setup(args.database_url)
    try:
        from django.db import connection

        capacity = args.units + args.credits
        tag = str(int(time.time()))
        print(
            f"database: {connection.vendor}; quota: {args.units} included + {args.credits} credits"
        )

        account, projects = make_account(f"{tag}-q", included=100, credits=0, projects=1)
        qpr = queries_per_reservation(projects[0])

        account1, projects1 = make_account(
            f"{tag}-1", included=args.units, credits=args.credits, projects=4
        )
        got1, secs1, errors1 = drain(projects1, threads=1)
        over1, ok1 = check(account1, capacity, got1)

        accountn, projectsn = make_account(
            f"{tag}-n", included=args.units, credits=args.credits, projects=4
        )
        gotn, secsn, errorsn = drain(projectsn, threads=args.threads)
        overn, okn = check(accountn, capacity, gotn)

        rate1, raten = got1 / secs1, gotn / secsn
        print(f"queries per reservation: {qpr:.1f} (plus BEGIN/COMMIT and a savepoint)")
        print(f"1 thread:   {got1} units granted of {capacity} in {secs1:.2f} s = {rate1:,.0f}/s")
        print(
            f"{args.threads} threads:  {gotn} units granted of {capacity} in {secsn:.2f} s "
            f"= {raten:,.0f}/s"
        )
        print(f"ratio {args.threads} threads / 1 thread: {raten / rate1:.2f}")
        print(f"overshoot: {over1} (1 thread), {overn} ({args.threads} threads); must be 0")
        errors = errors1 + errorsn
        for exc in errors:
            print(f"error: {exc!r}")
        ok = over1 == 0 and overn == 0 and ok1 and okn and not errors
        print(
            "OK: no overshoot, counters agree"
            if ok
            else "FAIL: overshoot, errors or counters disagree"
        )
        return 0 if ok else 1
    finally:
        if tmp:
            from django.db import connections

            connections.close_all()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
