"""N workers race for the last units of a quota and get exactly the units available.

Each thread has its own database connection (the test database is a file on SQLite, a real
server on PostgreSQL), as the web server and the q2 workers do. The same tests run on both, but
they prove different things:

- On SQLite they cannot catch a race. Every `quota_reserve` opens its own transaction, and SQLite
  runs with `transaction_mode=IMMEDIATE`, so each one takes the database's single write lock when
  it begins and the workers take turns, whether or not the caller is in a transaction (even a
  naive read-then-write would pass). There they check correctness under serialisation: the units
  handed out, the period, per-project and per-day counters agree; one period per month; credits
  spent to the last unit; and no worker fails while waiting for the lock.
- On PostgreSQL (CI's second leg, `.ci/run`, which runs the whole suite with DATABASE_URL set and
  fails the build if a test fails) the workers really do run at once: that leg is the one that
  would catch an overshoot, a duplicate period or a deadlock.
"""

import threading
from contextlib import nullcontext

import pytest
from django.db import connection, transaction

from billing.models import DailyUsage, ProjectUsage, UsagePeriod
from billing.services import credits_add, quota_reserve
from tests.factories import AccountFactory, PlanFactory, ProjectFactory, UsagePeriodFactory

WORKERS = 8


def race(projects, *, attempts: int, units: int = 1, in_claim: bool = True) -> list[int]:
    """Start WORKERS threads together; each tries `attempts` reservations, cycling through the
    projects, inside a transaction of its own as messaging's claim does (or, with
    in_claim=False, in autocommit: then `quota_reserve`'s own transaction is the only one).
    Returns the units each worker got. On SQLite both variants are serialised (see the module
    docstring); only on PostgreSQL do they race."""
    barrier = threading.Barrier(WORKERS)
    got = [0] * WORKERS
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            for n in range(attempts):
                project = projects[(i + n) % len(projects)]
                with transaction.atomic() if in_claim else nullcontext():
                    if quota_reserve(project=project, units=units):
                        got[i] += units
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return got


@pytest.mark.parametrize("in_claim", [True, False], ids=["in-claim-transaction", "autocommit"])
@pytest.mark.django_db(transaction=True)
def test_workers_racing_for_the_last_units_get_exactly_the_units_left(in_claim):
    plan = PlanFactory(name="Basic", project_limit=4, monthly_messages=1000)
    account = AccountFactory(plan=plan)
    projects = [ProjectFactory(account=account) for _ in range(3)]
    UsagePeriodFactory(account=account, used=975)  # 25 left

    got = race(projects, attempts=10, in_claim=in_claim)  # 80 tries for 25 units

    period = UsagePeriod.objects.get(account=account)
    assert sum(got) == 25
    assert period.used == 1000  # overshoot 0
    assert sum(ProjectUsage.objects.values_list("units", flat=True)) == 25
    assert sum(DailyUsage.objects.values_list("units", flat=True)) == 25


@pytest.mark.django_db(transaction=True)
def test_workers_starting_the_month_together_make_one_period_and_share_its_quota():
    plan = PlanFactory(name="Tiny", project_limit=2, monthly_messages=20)
    account = AccountFactory(plan=plan)
    project = ProjectFactory(account=account)

    got = race([project], attempts=5)  # 40 tries, no period yet: they race to create it

    assert sum(got) == 20
    assert UsagePeriod.objects.filter(account=account).count() == 1
    assert UsagePeriod.objects.get(account=account).used == 20
    assert ProjectUsage.objects.get(project=project).units == 20


@pytest.mark.django_db(transaction=True)
def test_workers_spend_credits_to_the_last_unit_and_not_one_more():
    plan = PlanFactory(name="Basic", project_limit=4, monthly_messages=1000)
    account = AccountFactory(plan=plan)
    project = ProjectFactory(account=account)
    UsagePeriodFactory(account=account, used=1000, credits=30)

    got = race([project], attempts=6, units=2)  # 48 tries of 2 units for 30 credit units

    period = UsagePeriod.objects.get(account=account)
    assert sum(got) == 30
    assert (period.used, period.credits_left) == (1030, 0)


@pytest.mark.django_db(transaction=True)
def test_credits_added_while_workers_race_are_all_spent_and_never_overspent():
    plan = PlanFactory(name="Basic", project_limit=4, monthly_messages=1000)
    account = AccountFactory(plan=plan)
    project = ProjectFactory(account=account)
    UsagePeriodFactory(account=account, used=1000)

    adder_errors = []

    def add_credits() -> None:
        try:
            for _ in range(5):
                credits_add(account=account, units=4)
        except BaseException as exc:  # noqa: BLE001
            adder_errors.append(exc)
        finally:
            connection.close()

    adder = threading.Thread(target=add_credits)
    adder.start()
    race([project], attempts=10)
    adder.join(timeout=60)
    assert not adder_errors

    period = UsagePeriod.objects.get(account=account)
    assert period.credits == 20
    assert period.used <= period.capacity
    # Whatever the interleaving, what was reserved is what the counters say (no counter row
    # when every worker came before the first credits: nothing was reserved).
    units = ProjectUsage.objects.filter(project=project).values_list("units", flat=True)
    assert period.used - 1000 == (units.first() or 0)
