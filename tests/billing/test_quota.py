import datetime
import zoneinfo

import pytest
from django.core import mail
from django.db import connection, transaction
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import Schedule

from billing import selectors, services, tasks
from billing.models import DailyUsage, ProjectUsage, UsagePeriod
from billing.services import quota_release, quota_reserve, quota_reserve_many, quota_units_for
from billing.services.quota import month_bounds
from billing.signals import credits_added, period_started
from tests.factories import AccountFactory, ProjectFactory, UsagePeriodFactory

pytestmark = pytest.mark.django_db
AUCKLAND = zoneinfo.ZoneInfo("Pacific/Auckland")


def period_of(account) -> UsagePeriod:
    return UsagePeriod.objects.filter(account=account).order_by("-start").first()


def project_units(project) -> int:
    return sum(ProjectUsage.objects.filter(project=project).values_list("units", flat=True))


# --- Reserve and release -----------------------------------------------------------------------


def test_it_reserves_units_and_counts_them_for_the_project_and_the_day(project, clock):
    clock.local(2026, 11, 12, 9, 30)
    assert quota_reserve(project=project, units=3) is True
    assert quota_reserve(project=project, units=2) is True

    period = period_of(project.account)
    assert (period.start, period.end) == (datetime.date(2026, 11, 1), datetime.date(2026, 11, 30))
    assert (period.used, period.included, period.credits) == (5, 1000, 0)
    assert ProjectUsage.objects.get(project=project, period=period).units == 5
    assert DailyUsage.objects.get(account=project.account).day == datetime.date(2026, 11, 12)
    assert DailyUsage.objects.get(account=project.account).units == 5


def test_it_refuses_a_reservation_that_would_pass_the_quota_and_writes_nothing(project, clock):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=project.account, used=998)

    assert quota_reserve(project=project, units=3) is False
    assert period_of(project.account).used == 998
    assert not ProjectUsage.objects.exists()
    assert not DailyUsage.objects.exists()
    assert quota_reserve(project=project, units=2) is True  # exactly the last two fit
    assert period_of(project.account).used == 1000


def test_it_spends_credits_only_after_the_included_units(project, clock):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=project.account, used=990, credits=50)

    assert quota_reserve(project=project, units=30) is True
    period = period_of(project.account)
    assert (period.included_used, period.credits_used, period.credits_left) == (1000, 20, 30)
    assert quota_reserve(project=project, units=31) is False
    assert quota_reserve(project=project, units=30) is True
    assert period_of(project.account).available == 0


def test_a_second_project_shares_the_account_quota_and_has_its_own_count(project, instance, clock):
    clock.local(2026, 11, 12, 9, 30)
    other = ProjectFactory(account=project.account, redcap_instance=instance)
    UsagePeriodFactory(account=project.account, used=990)

    assert quota_reserve(project=project, units=6) is True
    assert quota_reserve(project=other, units=5) is False
    assert quota_reserve(project=other, units=4) is True
    assert (project_units(project), project_units(other)) == (6, 4)


def test_reserving_for_many_projects_at_once_counts_each_and_costs_queries_per_account(
    project, instance, clock
):
    clock.local(2026, 11, 12, 9, 30)
    others = [ProjectFactory(account=project.account, redcap_instance=instance) for _ in range(5)]
    quota_reserve(project=others[0], units=1)  # one project already has its month's counter
    wanted = {project: 3, **{p: 2 for p in others}}
    for p in wanted:
        p.account  # loaded, as messaging's claim has it  # noqa: B018

    with CaptureQueriesContext(connection) as queries:
        reserved = quota_reserve_many(units_by_project=wanted)

    assert reserved == {p.pk for p in wanted}
    assert period_of(project.account).used == 1 + 13
    assert {p.pk: project_units(p) for p in wanted} == {
        project.pk: 3,
        others[0].pk: 3,
        **{p.pk: 2 for p in others[1:]},
    }
    assert DailyUsage.objects.get(account=project.account).units == 14
    # Six projects, one account: not six reservations' worth of queries.
    assert len(queries) <= 16, [q["sql"] for q in queries.captured_queries]


def test_reserving_for_many_reserves_nothing_for_an_account_without_room_for_the_sum(
    project, instance, clock
):
    clock.local(2026, 11, 12, 9, 30)
    other = ProjectFactory(account=project.account, redcap_instance=instance)
    UsagePeriodFactory(account=project.account, used=995)

    assert quota_reserve_many(units_by_project={project: 3, other: 3}) == set()
    assert period_of(project.account).used == 995
    assert not ProjectUsage.objects.exists() and not DailyUsage.objects.exists()
    # The caller then goes one by one: the first fits.
    assert quota_reserve(project=project, units=3) is True


def test_release_gives_the_units_back_to_the_period_the_project_and_the_day(project, clock):
    clock.local(2026, 11, 12, 9, 30)
    quota_reserve(project=project, units=5)

    quota_release(project=project, units=2)

    assert period_of(project.account).used == 3
    assert project_units(project) == 3
    assert DailyUsage.objects.get(account=project.account).units == 3


def test_release_never_takes_a_counter_below_zero(project, clock):
    clock.local(2026, 11, 12, 9, 30)
    quota_reserve(project=project, units=1)
    quota_release(project=project, units=5)
    assert period_of(project.account).used == 0
    assert project_units(project) == 0


def test_release_after_the_month_turned_goes_to_the_month_charged_and_refunds_its_credits(
    project, clock, received, django_capture_on_commit_callbacks
):
    reserved_at = clock.local(2026, 10, 31, 23, 0)
    UsagePeriodFactory(
        account=project.account,
        start=datetime.date(2026, 10, 1),
        end=datetime.date(2026, 10, 31),
        used=995,
        credits=20,
    )
    assert quota_reserve(project=project, units=10) is True  # 5 of them from credits
    clock.local(2026, 11, 1, 0, 5)
    november = services.usage_period_current(account=project.account)
    assert november.credits == 15  # 20 - 5 brought forward

    with django_capture_on_commit_callbacks(execute=True):
        quota_release(project=project, units=10, reserved_at=reserved_at)

    october = UsagePeriod.objects.get(start=datetime.date(2026, 10, 1))
    assert october.used == 995
    assert period_of(project.account).credits == 20  # the 5 credits came back
    assert ProjectUsage.objects.get(period=october).units == 0
    assert received == [("credits_added", project.account_id, 5)]


def test_zero_units_are_free_and_negative_units_are_refused(project):
    assert quota_reserve(project=project, units=0) is True
    assert not UsagePeriod.objects.exists()
    with pytest.raises(ValueError):
        quota_reserve(project=project, units=-1)
    with pytest.raises(ValueError):
        quota_release(project=project, units=-1)


@pytest.mark.parametrize(("unit", "expected"), [("message", 1), ("segment", 3)])
def test_a_unit_is_a_message_or_a_segment_as_quota_unit_says(settings, unit, expected):
    settings.QUOTA_UNIT = unit
    assert quota_units_for(messages=1, segments=3) == expected


def test_a_reservation_costs_the_same_few_queries_however_much_was_sent(project, clock):
    clock.local(2026, 11, 12, 9, 30)
    project.account  # loaded, as messaging's claim has it  # noqa: B018
    quota_reserve(project=project, units=1)  # the month's first: creates the rows
    with CaptureQueriesContext(connection) as early:
        quota_reserve(project=project, units=1)
    UsagePeriod.objects.update(used=500)
    with CaptureQueriesContext(connection) as late:
        quota_reserve(project=project, units=1)
    assert len(early) == len(late) <= 8
    assert not any("COUNT(" in q["sql"].upper() for q in late.captured_queries)


def add_history(account, instance, *, months: int, projects: int) -> None:
    """`months` closed months before October 2026, and `projects` more projects of the account,
    each with a unit used today."""
    past, start = [], datetime.date(2026, 10, 1)
    for _ in range(months):
        start = month_bounds(start - datetime.timedelta(days=1))[0]
        past.append(
            UsagePeriod(
                account=account,
                start=start,
                end=month_bounds(start)[1],
                used=900,
                included=1000,
                closed_at=timezone.now(),
            )
        )
    UsagePeriod.objects.bulk_create(past)
    for _ in range(projects):
        quota_reserve(project=ProjectFactory(account=account, redcap_instance=instance), units=1)


def no_count(queries) -> bool:
    return not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_a_release_costs_the_same_few_queries_however_much_was_sent(project, instance, clock):
    clock.local(2026, 11, 12, 9, 30)
    project.account  # loaded, as messaging's release has it  # noqa: B018
    quota_reserve(project=project, units=2)  # the month's first: creates the rows
    with CaptureQueriesContext(connection) as early:
        quota_release(project=project, units=1)

    add_history(project.account, instance, months=36, projects=20)
    UsagePeriod.objects.filter(closed_at__isnull=True).update(used=F("used") + 500)
    with CaptureQueriesContext(connection) as late:
        quota_release(project=project, units=1)

    assert period_of(project.account).used == 520  # 20 + 500 from the others, ours released
    assert project_units(project) == 0
    assert len(early) == len(late) <= 6
    assert no_count(late)


def test_a_release_into_a_closed_month_costs_the_same_few_queries_however_much_was_sent(
    project, instance, clock
):
    reserved_at = clock.local(2026, 10, 31, 23, 0)
    project.account  # noqa: B018
    UsagePeriodFactory(account=project.account, used=1000, credits=50)
    assert quota_reserve(project=project, units=10)  # all from credits
    clock.local(2026, 11, 12, 9, 30)
    services.usage_period_current(account=project.account)  # November begins
    with CaptureQueriesContext(connection) as early:
        quota_release(project=project, units=1, reserved_at=reserved_at)

    add_history(project.account, instance, months=36, projects=20)
    with CaptureQueriesContext(connection) as late:
        quota_release(project=project, units=1, reserved_at=reserved_at)

    assert period_of(project.account).credits == 40 + 2  # both refunds came back
    assert len(early) == len(late) <= 13
    assert no_count(late)


# --- Month boundaries in the account's time zone ------------------------------------------------


def test_one_second_before_local_midnight_counts_in_the_old_month(project, clock):
    clock.local(2026, 11, 30, 23, 59, 59)  # 04:59:59 UTC on Dec 1
    quota_reserve(project=project, units=1)
    period = period_of(project.account)
    assert period.start == datetime.date(2026, 11, 1)
    assert DailyUsage.objects.get().day == datetime.date(2026, 11, 30)


def test_local_midnight_starts_the_new_month(project, clock):
    clock.local(2026, 11, 30, 23, 59, 59)
    quota_reserve(project=project, units=1)
    clock.local(2026, 12, 1, 0, 0, 0)
    quota_reserve(project=project, units=1)

    november, december = UsagePeriod.objects.order_by("start")
    assert (november.start, november.used, november.closed_at is not None) == (
        datetime.date(2026, 11, 1),
        1,
        True,
    )
    assert (december.start, december.end, december.used) == (
        datetime.date(2026, 12, 1),
        datetime.date(2026, 12, 31),
        1,
    )
    assert december.closed_at is None


def test_the_month_follows_the_account_time_zone_not_utc(instance, clock):
    account = AccountFactory(time_zone="Pacific/Auckland")
    project = ProjectFactory(account=account, redcap_instance=instance)
    # 23:59:59 on Nov 30 in Auckland is 10:59:59 UTC the same day; 00:00:00 is Dec 1 local,
    # while UTC (and New York) still say November 30.
    clock.local(2026, 11, 30, 23, 59, 59, tz=AUCKLAND)
    quota_reserve(project=project, units=1)
    clock.local(2026, 12, 1, 0, 0, 0, tz=AUCKLAND)
    quota_reserve(project=project, units=1)
    assert [(p.start, p.used) for p in UsagePeriod.objects.order_by("start")] == [
        (datetime.date(2026, 11, 1), 1),
        (datetime.date(2026, 12, 1), 1),
    ]


def test_a_new_month_snapshots_the_plan_and_brings_forward_the_credits_left(project, clock):
    clock.local(2026, 11, 20, 12, 0)
    UsagePeriodFactory(account=project.account, used=1040, credits=100)  # 40 credits spent
    project.account.plan.monthly_messages = 1200
    project.account.plan.save()

    clock.local(2026, 12, 1, 0, 0, 0)
    december = services.usage_period_current(account=project.account)

    assert (december.included, december.credits, december.used) == (1200, 60, 0)


def test_credits_never_expire_even_across_quiet_months(project, clock):
    clock.local(2026, 9, 10, 12, 0)
    UsagePeriodFactory(account=project.account, used=0, credits=300)
    clock.local(2027, 2, 3, 12, 0)
    assert quota_reserve(project=project, units=1) is True
    assert period_of(project.account).start == datetime.date(2027, 2, 1)
    assert period_of(project.account).credits == 300


# --- Signals: hold and release ------------------------------------------------------------------


@pytest.fixture
def received():
    """Receivers for billing's two release signals, recording what they were given."""
    calls = []

    def on_credits(sender, *, account, units, **kwargs):
        calls.append(("credits_added", account.pk, units))

    def on_period(sender, *, account, period, **kwargs):
        calls.append(("period_started", account.pk, period.start))

    credits_added.connect(on_credits, weak=False, dispatch_uid="test-credits")
    period_started.connect(on_period, weak=False, dispatch_uid="test-period")
    yield calls
    credits_added.disconnect(dispatch_uid="test-credits")
    period_started.disconnect(dispatch_uid="test-period")


def test_period_started_is_sent_after_commit_with_the_new_period(
    project, clock, received, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        quota_reserve(project=project, units=1)
    assert received == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert received == [("period_started", project.account_id, datetime.date(2026, 11, 1))]


def test_credits_added_is_sent_when_credits_arrive(
    account, clock, received, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=account)
    with django_capture_on_commit_callbacks(execute=True):
        services.credits_add(account=account, units=500)
    assert received == [("credits_added", account.pk, 500)]
    assert period_of(account).credits == 500


class HeldMessages:
    """What messaging will do: hold what does not fit, release in order on billing's signals."""

    def __init__(self, project):
        self.project = project
        self.held: list[tuple[str, int]] = []
        self.sent: list[str] = []
        credits_added.connect(self.release, weak=False, dispatch_uid="held-credits")
        period_started.connect(self.release, weak=False, dispatch_uid="held-period")

    def send(self, name: str, units: int) -> None:
        if self.held or not quota_reserve(project=self.project, units=units):
            self.held.append((name, units))  # held, never dropped; order kept
        else:
            self.sent.append(name)

    def release(self, sender, *, account, **kwargs) -> None:
        while self.held and quota_reserve(project=self.project, units=self.held[0][1]):
            self.sent.append(self.held.pop(0)[0])

    def close(self) -> None:
        credits_added.disconnect(dispatch_uid="held-credits")
        period_started.disconnect(dispatch_uid="held-period")


@pytest.fixture
def outbox(project):
    held = HeldMessages(project)
    yield held
    held.close()


def test_held_messages_go_out_in_order_when_credits_arrive(
    project, clock, outbox, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=project.account, used=997)
    with django_capture_on_commit_callbacks(execute=True):
        for name, units in [("a", 2), ("b", 2), ("c", 1), ("d", 3), ("e", 1)]:
            outbox.send(name, units)
    assert outbox.sent == ["a"]
    assert [name for name, _ in outbox.held] == ["b", "c", "d", "e"]

    with django_capture_on_commit_callbacks(execute=True):
        services.credits_add(account=project.account, units=4)

    # 1 + 4 units are free: b (2) and c (1) fit; d (3) does not, so e (1) waits behind it
    # rather than jump the queue.
    assert outbox.sent == ["a", "b", "c"]
    assert [name for name, _ in outbox.held] == ["d", "e"]
    assert period_of(project.account).used == 1002


def test_held_messages_go_out_when_the_next_month_begins(
    project, clock, outbox, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 30, 22, 0)
    UsagePeriodFactory(account=project.account, used=1000)
    outbox.send("late", 1)
    assert outbox.held == [("late", 1)]

    clock.local(2026, 12, 1, 0, 10)
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.usage_periods_start() == 1

    assert outbox.sent == ["late"]
    assert period_of(project.account).start == datetime.date(2026, 12, 1)
    assert period_of(project.account).used == 1


# --- The scheduled task -------------------------------------------------------------------------


def test_the_task_starts_each_account_month_once(project, instance, clock, received):
    quiet = AccountFactory(time_zone="Pacific/Auckland")
    clock.local(2026, 11, 20, 12, 0)
    UsagePeriodFactory(account=project.account)
    clock.local(2026, 12, 1, 0, 10)  # December in New York and (long since) in Auckland

    assert tasks.usage_periods_start() == 2
    assert tasks.usage_periods_start() == 0
    assert period_of(quiet).start == datetime.date(2026, 12, 1)
    assert period_of(project.account).start == datetime.date(2026, 12, 1)


def test_the_task_is_scheduled_every_15_minutes():
    schedule = Schedule.objects.get(func="billing.tasks.usage_periods_start")
    assert (schedule.schedule_type, schedule.minutes) == (Schedule.MINUTES, 15)
    assert schedule.repeats == -1


def test_registering_the_schedule_again_keeps_one_and_keeps_an_administrators_edit():
    from django.apps import apps

    from portal.schedules import schedules_ensure

    Schedule.objects.filter(func="billing.tasks.usage_periods_start").update(minutes=5)
    schedules_ensure(sender=None, apps=apps)
    assert Schedule.objects.filter(func="billing.tasks.usage_periods_start").count() == 1
    assert Schedule.objects.get(func="billing.tasks.usage_periods_start").minutes == 5


# --- Thresholds ---------------------------------------------------------------------------------


@pytest.fixture
def admins(server_admin):
    return [server_admin.email]


def threshold_mail():
    return [m for m in mail.outbox if "included messages" in m.subject]


def test_it_emails_owners_and_administrators_once_at_80_and_once_at_100_percent(
    project, owner, member, admins, clock, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=project.account, used=790, credits=100)
    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=9)  # 799
    assert threshold_mail() == []

    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=1)  # 800: 80%
        quota_reserve(project=project, units=5)  # still past 80%: no second e-mail
    [first] = threshold_mail()
    assert "80%" in first.subject
    assert sorted(first.to) == sorted([owner.email, *admins])
    assert member.email not in first.to

    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=195)  # 1000: 100%
        quota_reserve(project=project, units=10)  # on credits now
    assert [m.subject for m in threshold_mail()][1].startswith("[StudyText] Sleep Lab has used all")
    assert len(threshold_mail()) == 2
    assert "credits" in threshold_mail()[1].body


def test_jumping_past_both_thresholds_sends_one_email(
    project, admins, clock, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=project.account, used=700)
    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=300)
    assert len(threshold_mail()) == 1
    period = period_of(project.account)
    assert period.warned_80_at is not None and period.warned_100_at is not None


def test_jumping_past_both_thresholds_marks_80_percent_passed_for_the_rest_of_the_period(
    project, owner, admins, clock, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=project.account, used=700, credits=500)
    with django_capture_on_commit_callbacks(execute=True):
        assert quota_reserve(project=project, units=300)  # 70% to 100% in one reservation
    period = period_of(project.account)
    assert period.warned_80_at is not None
    assert period.warned_80_at == period.warned_100_at  # marked by the same statement
    assert selectors.quota_alerts_for_user(user=owner) == [period]  # the banner shows

    # Later that month: credits spent, a release back under 100%, then past 80% again.
    clock.local(2026, 11, 20, 9, 30)
    with django_capture_on_commit_callbacks(execute=True):
        assert quota_reserve(project=project, units=10)  # 1,010
        quota_release(project=project, units=250)  # 760
        assert quota_reserve(project=project, units=50)  # 810
    [mail_100] = threshold_mail()  # still only the 100% e-mail
    assert "80%" not in mail_100.subject
    assert mail_100.subject.startswith("[StudyText] Sleep Lab has used all")


def test_each_month_warns_again(project, admins, clock, django_capture_on_commit_callbacks):
    clock.local(2026, 11, 12, 9, 30)
    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=800)
    clock.local(2026, 12, 2, 9, 30)
    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=800)
    assert [m.subject.split(" for ")[-1] for m in threshold_mail()] == ["November", "December"]


def test_no_email_is_sent_when_the_reservation_rolls_back(
    project, admins, clock, django_capture_on_commit_callbacks
):
    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=project.account)
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        quota_reserve(project=project, units=900)
        raise RuntimeError("the claim failed")
    assert threshold_mail() == []
    assert period_of(project.account).warned_80_at is None
    assert period_of(project.account).used == 0


def test_an_upgrade_mid_month_lets_the_new_quota_warn_again(
    project, admins, server_admin, clock, django_capture_on_commit_callbacks
):
    from billing.models import Plan

    clock.local(2026, 11, 12, 9, 30)
    UsagePeriodFactory(account=project.account, used=790)  # Basic: 1,000 included
    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=10)  # 800: the 80% e-mail
    assert len(threshold_mail()) == 1

    plus = Plan.objects.get(name="Plus")  # 3,000 included: 800 is 27% of it
    services.account_plan_set(account=project.account, plan=plus, actor=server_admin)
    period = period_of(project.account)
    assert (period.included, period.warned_80_at, period.warned_100_at) == (3000, None, None)

    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=1599)  # 2,399: under 80% of 3,000
    assert len(threshold_mail()) == 1
    with django_capture_on_commit_callbacks(execute=True):
        quota_reserve(project=project, units=1)  # 2,400: 80% of the new quota
    assert len(threshold_mail()) == 2
    assert "80%" in threshold_mail()[1].subject
