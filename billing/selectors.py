"""Billing reads. Every page reads counters (periods, per-project and daily usage), never messages,
and costs a fixed number of queries however much data there is."""

import datetime
import math
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from billing.models import (
    Account,
    AccountMembership,
    CreditPackRequest,
    DailyUsage,
    Plan,
    PlanChangeRequest,
    ProjectUsage,
    UsagePeriod,
)
from billing.services.quota import month_bounds

DAY = datetime.timedelta(days=1)


def accounts_for_user(*, user) -> QuerySet[Account]:
    """Accounts the user belongs to (owner or member)."""
    return Account.objects.filter(memberships__user=user).select_related("plan").distinct()


def plans_offered() -> QuerySet[Plan]:
    return Plan.objects.filter(is_active=True)


# --- The current period and its projection ---------------------------------------------------


@dataclass
class Projection:
    """Where the period is heading at the pace so far."""

    pace: float  # units a day so far
    projected: int  # units by the period's end at that pace
    included_runs_out: datetime.date | None  # inside the period, else None
    quota_runs_out: datetime.date | None  # included + credits; inside the period, else None
    overrun: int  # projected units beyond included + credits (0 when it fits)


def usage_projection(*, period: UsagePeriod, now: datetime.datetime) -> Projection:
    tz = zoneinfo.ZoneInfo(period.account.time_zone)
    start = datetime.datetime.combine(period.start, datetime.time(), tzinfo=tz)
    end = datetime.datetime.combine(period.end + DAY, datetime.time(), tzinfo=tz)
    total_days = (end - start) / DAY
    # At least one day, so a busy first hour does not predict a month of that pace.
    elapsed = min(max((now - start) / DAY, 1.0), total_days)
    pace = period.used / elapsed
    projected = max(period.used, math.ceil(pace * total_days))

    def runs_out(limit: int) -> datetime.date | None:
        if pace <= 0 or period.used >= limit:
            return None
        when = start + DAY * (limit / pace)
        return when.date() if when < end else None

    return Projection(
        pace=pace,
        projected=projected,
        included_runs_out=runs_out(period.included),
        quota_runs_out=runs_out(period.capacity),
        overrun=max(0, projected - period.capacity),
    )


def _virtual_period(
    *, account: Account, latest: UsagePeriod | None, today: datetime.date
) -> UsagePeriod:
    """The month that has begun but has no row yet (nothing reserved since it began): shown as
    empty, with the credits the last month leaves. Reads never write."""
    start, end = month_bounds(today)
    return UsagePeriod(
        account=account,
        start=start,
        end=end,
        included=account.plan.monthly_messages,
        credits=latest.credits_left if latest is not None else 0,
        used=0,
    )


def account_local_now(account: Account, now: datetime.datetime | None = None):
    return (now or timezone.now()).astimezone(zoneinfo.ZoneInfo(account.time_zone))


@dataclass
class AccountUsage:
    account: Account
    period: UsagePeriod  # unsaved when the month has no row yet
    is_current: bool
    projection: Projection | None  # current period only
    today: datetime.date

    @property
    def day_number(self) -> int:
        return min(max((self.today - self.period.start).days + 1, 1), self.period.days)


def account_usage(
    *, account: Account, period_id: int | None = None, now: datetime.datetime | None = None
) -> AccountUsage:
    """The account's current period (or a past one, by id) with its projection.

    A period asked for by id is shown as past unless it is the latest and its last day has not
    passed. So the latest row counts as past once its month is over: early in a month nothing
    may have been reserved yet, and last month is still the latest row while the current month
    (shown empty) has none. An id that is not one of the account's periods shows the current
    period."""
    local_now = account_local_now(account, now)
    today = local_now.date()
    latest = UsagePeriod.objects.filter(account=account).order_by("-start").first()
    if period_id is not None and latest is not None:
        if latest.pk == period_id:
            period = latest
        else:
            period = UsagePeriod.objects.filter(account=account, pk=period_id).first()
        if period is not None and (period.pk != latest.pk or period.end < today):
            period.account = account
            return AccountUsage(account, period, False, None, today)
    if latest is not None and latest.end >= today:
        period = latest
    else:
        period = _virtual_period(account=account, latest=latest, today=today)
    period.account = account
    return AccountUsage(
        account, period, True, usage_projection(period=period, now=local_now), today
    )


def daily_usage(*, period: UsagePeriod) -> list[tuple[datetime.date, int]]:
    """Units per day over the whole period (zero for quiet days)."""
    counts: dict[datetime.date, int] = {}
    if period.pk is not None:
        counts = dict(
            DailyUsage.objects.filter(
                account_id=period.account_id, day__gte=period.start, day__lte=period.end
            ).values_list("day", "units")
        )
    return [
        (period.start + DAY * i, counts.get(period.start + DAY * i, 0)) for i in range(period.days)
    ]


def project_usage_for(*, account: Account, period: UsagePeriod) -> QuerySet:
    """Every project of the account with its units in the period (`units`), busiest first."""
    units = Subquery(
        ProjectUsage.objects.filter(project=OuterRef("pk"), period_id=period.pk).values("units")[
            :1
        ],
        output_field=IntegerField(),
    )
    qs = account.projects.all()
    if period.pk is None:
        qs = qs.annotate(units=Value(0, output_field=IntegerField()))
    else:
        qs = qs.annotate(units=Coalesce(units, 0))
    return qs.order_by("-units", "title")


def periods_for(*, account: Account) -> QuerySet[UsagePeriod]:
    return UsagePeriod.objects.filter(account=account).order_by("-start")


def credit_pack_requests_for(*, account: Account) -> QuerySet[CreditPackRequest]:
    return account.credit_pack_requests.select_related("requested_by", "decided_by")


def plan_change_requests_for(*, account: Account) -> QuerySet[PlanChangeRequest]:
    return account.plan_change_requests.select_related(
        "from_plan", "to_plan", "requested_by", "decided_by"
    )


# --- Lists of accounts ------------------------------------------------------------------------


@dataclass
class AccountRow:
    account: Account
    period: UsagePeriod
    active_projects: int
    projection: Projection
    role: str = ""

    @property
    def percent(self) -> int:
        return self.period.percent_of_included


def active_projects_subquery(account_ref: str = "pk") -> Coalesce:
    """Active (not archived) projects of the outer query's account, as a subquery (no GROUP BY)."""
    # The model behind account.projects, reached through the relation: billing never imports it.
    project_model = Account._meta.get_field("projects").related_model
    counts = (
        project_model.objects.filter(account=OuterRef(account_ref))
        .exclude(status="archived")
        .order_by()
        .values("account")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts[:1], output_field=IntegerField()), 0)


def _with_latest_period(qs: QuerySet[Account]) -> QuerySet[Account]:
    latest = UsagePeriod.objects.filter(account=OuterRef("pk")).order_by("-start")
    fields = ("pk", "start", "end", "included", "credits", "used")
    return qs.annotate(
        **{f"p_{f}": Subquery(latest.values(f)[:1]) for f in fields},
        active_projects=active_projects_subquery(),
    )


def _rows(accounts, now: datetime.datetime | None = None) -> list[AccountRow]:
    rows = []
    for account in accounts:
        local_now = account_local_now(account, now)
        latest = None
        if account.p_pk is not None:
            latest = UsagePeriod(
                pk=account.p_pk,
                account=account,
                start=account.p_start,
                end=account.p_end,
                included=account.p_included,
                credits=account.p_credits,
                used=account.p_used,
            )
        if latest is not None and latest.end >= local_now.date():
            period = latest
        else:
            period = _virtual_period(account=account, latest=latest, today=local_now.date())
        rows.append(
            AccountRow(
                account=account,
                period=period,
                active_projects=account.active_projects,
                projection=usage_projection(period=period, now=local_now),
                role=getattr(account, "my_role", "") or "",
            )
        )
    return rows


def account_rows_for_user(*, user) -> list[AccountRow]:
    """The user's accounts with this month's usage, for their accounts page."""
    role = Subquery(
        AccountMembership.objects.filter(account=OuterRef("pk"), user=user).values("role")[:1]
    )
    qs = Account.objects.filter(memberships__user=user).select_related("plan")
    return _rows(_with_latest_period(qs).annotate(my_role=role).order_by("name"))


SORTS = {
    "name": lambda r: r.account.name.lower(),
    "plan": lambda r: (r.account.plan.sort_order, r.account.plan.name),
    "projects": lambda r: r.active_projects,
    "usage": lambda r: (r.period.used * 1000 // max(r.period.included, 1), r.period.used),
    "credits": lambda r: r.period.credits_left,
    "overrun": lambda r: (r.projection.overrun, r.projection.projected),
}


def account_rows_all(*, sort: str = "-usage", search: str = "") -> list[AccountRow]:
    """Every account, for the administrators (two queries in all, sorted in Python because
    usage % and the projection are computed)."""
    key = sort.lstrip("-")
    if key not in SORTS:
        sort, key = "-usage", "usage"
    qs = Account.objects.select_related("plan")
    if search.strip():
        qs = qs.filter(name__icontains=search.strip())
    rows = _rows(_with_latest_period(qs))
    rows.sort(key=SORTS[key], reverse=sort.startswith("-"))
    return rows


def plan_accounts_over(*, plan: Plan, project_limit: int, monthly_messages: int) -> list[dict]:
    """Accounts on `plan` that already use more than the given limits: their active projects, or
    this month's units. Shown to an administrator before a plan edit is saved."""
    if plan.pk is None:
        return []
    qs = _with_latest_period(Account.objects.filter(plan=plan).select_related("plan"))
    over = []
    for row in _rows(qs.order_by("name")):
        if row.active_projects > project_limit or row.period.used > monthly_messages:
            over.append(
                {
                    "account": row.account,
                    "active_projects": row.active_projects,
                    "used": row.period.used,
                    "projects_over": row.active_projects > project_limit,
                    "usage_over": row.period.used > monthly_messages,
                }
            )
    return over


# --- Review lists -----------------------------------------------------------------------------


def credit_pack_requests_pending() -> QuerySet[CreditPackRequest]:
    return (
        CreditPackRequest.objects.filter(status=CreditPackRequest.Status.REQUESTED)
        .select_related("account", "account__plan", "requested_by")
        .order_by("requested_at", "id")
    )


def plan_change_requests_pending() -> QuerySet[PlanChangeRequest]:
    return (
        PlanChangeRequest.objects.filter(status=PlanChangeRequest.Status.REQUESTED)
        .select_related("account", "from_plan", "to_plan", "requested_by")
        .annotate(active_projects=active_projects_subquery("account_id"))
        .order_by("requested_at", "id")
    )


def credit_pack_requests_decided(*, limit: int = 20) -> QuerySet[CreditPackRequest]:
    return (
        CreditPackRequest.objects.exclude(status=CreditPackRequest.Status.REQUESTED)
        .select_related("account", "requested_by", "decided_by")
        .order_by("-decided_at", "-id")[:limit]
    )


def pending_review_count() -> int:
    return credit_pack_requests_pending().count() + plan_change_requests_pending().count()


# --- The quota banner -------------------------------------------------------------------------


def quota_alerts_for_user(*, user) -> list[UsagePeriod]:
    """Open periods of the user's accounts at or past 80% of their included units."""
    # Any time zone's "today" is at most a day behind UTC's, so a month that ended more than a
    # day ago (and whose next period has not begun yet) no longer warns.
    recent = timezone.now().date() - DAY
    return list(
        UsagePeriod.objects.filter(
            account__memberships__user=user,
            closed_at__isnull=True,
            warned_80_at__isnull=False,
            end__gte=recent,
        )
        .select_related("account")
        .order_by("account__name")[:5]
    )


def account_ids_owned_among(*, user, account_ids: list[int]) -> set[int]:
    """Which of `account_ids` `user` owns (no query when there are none)."""
    if not account_ids:
        return set()
    return set(
        AccountMembership.objects.filter(
            user=user, role=AccountMembership.Role.OWNER, account_id__in=account_ids
        ).values_list("account_id", flat=True)
    )


def accounts_near_quota_count() -> int:
    recent = timezone.now().date() - DAY
    return UsagePeriod.objects.filter(
        closed_at__isnull=True, warned_80_at__isnull=False, end__gte=recent
    ).count()


# --- CSV for recharge -------------------------------------------------------------------------

CSV_HEADER = [
    "account",
    "account_id",
    "plan",
    "project",
    "project_id",
    "period",
    "period_start",
    "period_end",
    "units",
    "included_units",
    "credit_units",
]


def _split(total: int, weights: list[int]) -> list[int]:
    """Split `total` in proportion to `weights` in whole units that sum exactly (largest
    remainder)."""
    whole = sum(weights)
    if not total or not whole:
        return [0] * len(weights)
    exact = [total * w / whole for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def usage_csv_rows(
    *, accounts: QuerySet[Account] | None = None, month: datetime.date | None = None
) -> Iterator[list]:
    """One row per project and period: its units, and how many of them were included in the plan
    and how many were paid with credits. A period's credit units are shared among its projects in
    proportion to their units. One query, streamed."""
    qs = ProjectUsage.objects.filter(units__gt=0).select_related(
        "project", "period", "period__account", "period__account__plan"
    )
    if accounts is not None:
        qs = qs.filter(period__account__in=accounts)
    if month is not None:
        qs = qs.filter(period__start=month.replace(day=1))
    qs = qs.order_by(
        "period__account__name",
        "period__account_id",
        "period__start",
        "project__title",
        "project_id",
    )
    yield CSV_HEADER
    for _, group in groupby(qs.iterator(chunk_size=2000), key=lambda u: u.period_id):
        usages = list(group)
        period = usages[0].period
        credit_parts = _split(period.credits_used, [u.units for u in usages])
        for usage, credit_units in zip(usages, credit_parts, strict=True):
            account = period.account
            yield [
                account.name,
                account.pk,
                account.plan.name,
                usage.project.title,
                usage.project_id,
                f"{period.start:%Y-%m}",
                period.start.isoformat(),
                period.end.isoformat(),
                usage.units,
                usage.units - credit_units,
                credit_units,
            ]
