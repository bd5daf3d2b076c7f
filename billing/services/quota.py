"""The quota: usage periods, reservations, releases and credits.

How credits and the quota fit in one row: an account's usage for the month is one `UsagePeriod`
row holding `used`, `included` (the plan's monthly units when the month began) and `credits` (the
credit balance brought forward from the previous month plus every pack approved during this one).
A reservation is therefore one conditional UPDATE of that row,

    UPDATE billing_usageperiod SET used = used + :units
     WHERE id = :period AND closed_at IS NULL AND used <= included + credits - :units

which the database applies atomically: on PostgreSQL the row lock makes a second writer re-check
the condition against the first one's result; on SQLite (IMMEDIATE transactions) writers take
turns. There is no read-modify-write, so concurrent workers can never overshoot, and a CHECK
constraint (`used <= included + credits`) backs it up. Credits are spent after the included
units: of `used`, whatever is above `included` came from credits. When a month ends, the next
period brings forward what is left (`credits - max(0, used - included)`), so credits never expire.
"""

import calendar
import datetime
import logging
import zoneinfo
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Model, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from billing import emails
from billing.models import Account, DailyUsage, ProjectUsage, UsagePeriod
from billing.signals import credits_added, period_started

logger = logging.getLogger(__name__)

QUOTA_UNITS = ("message", "segment")
THRESHOLDS = ((100, "warned_100_at"), (80, "warned_80_at"))
_ATTEMPTS = 3  # a period can close under us at most once per month; three tries is plenty


def quota_units_for(*, messages: int, segments: int) -> int:
    """Units a send costs against the quota, as the QUOTA_UNIT setting counts them."""
    return segments if settings.QUOTA_UNIT == "segment" else messages


def quota_unit_label(count: int = 2) -> str:
    """What the quota counts, in words: "messages" or "segments" (as QUOTA_UNIT says), singular
    for a count of one ("1 message"). Every page and e-mail says it through this."""
    word = "segment" if settings.QUOTA_UNIT == "segment" else "message"
    return word if count == 1 else f"{word}s"


def account_local_date(*, account: Account, now: datetime.datetime | None = None) -> datetime.date:
    """Today's date in the account's time zone (usage periods are its calendar months)."""
    now = now or timezone.now()
    return now.astimezone(zoneinfo.ZoneInfo(account.time_zone)).date()


def month_bounds(day: datetime.date) -> tuple[datetime.date, datetime.date]:
    """First and last day of the month containing `day`."""
    first = day.replace(day=1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def usage_period_current(*, account: Account, now: datetime.datetime | None = None) -> UsagePeriod:
    """The account's period for now, started (and the previous one closed) if the month is new.

    The latest period stays current until its last day has passed in the account's time zone,
    so a time-zone change never sends usage back into a closed month.
    """
    today = account_local_date(account=account, now=now)
    period = UsagePeriod.objects.filter(account_id=account.pk).order_by("-start").first()
    if period is not None and period.end >= today:
        return period
    return _usage_period_start(account=account, today=today)


def _usage_period_start(*, account: Account, today: datetime.date) -> UsagePeriod:
    with transaction.atomic():
        # Lock the account row (only it: `of`, not the plan every account shares) before the
        # period (every path that locks both does so in this order), then look again: another
        # worker may have started the month while we waited.
        account = (
            Account.objects.select_for_update(of=("self",), no_key=True)
            .select_related("plan")
            .get(pk=account.pk)
        )
        latest = UsagePeriod.objects.filter(account=account).order_by("-start").first()
        if latest is not None and latest.end >= today:
            # Another worker started it while we waited for the account. Do not lock the
            # period: reservations hold it while they wait on nothing else, and holding the
            # account while waiting for them is how a deadlock would start.
            return latest
        if latest is not None:  # closing it: read its credits under its row lock
            latest = UsagePeriod.objects.select_for_update(no_key=True).get(pk=latest.pk)
        now = timezone.now()
        carried = latest.credits_left if latest is not None else 0
        # Closing makes any reservation still aimed at the old month miss and look again.
        UsagePeriod.objects.filter(account=account, closed_at__isnull=True).update(closed_at=now)
        start, end = month_bounds(today)
        period = UsagePeriod.objects.create(
            account=account,
            start=start,
            end=end,
            included=account.plan.monthly_messages,
            credits=carried,
        )
        transaction.on_commit(
            partial(period_started.send, sender=UsagePeriod, account=account, period=period),
            robust=True,
        )
    logger.info("Usage period %s started for account %s", period.start, account.pk)
    return period


def usage_periods_start_due(*, now: datetime.datetime | None = None) -> int:
    """Start the new month's period of every account whose month has turned. Returns how many."""
    latest_end = Subquery(
        UsagePeriod.objects.filter(account=OuterRef("pk")).order_by("-start").values("end")[:1]
    )
    started = 0
    # A list, not an iterator: SQLite cannot write while a cursor over the same data is open.
    accounts = list(Account.objects.annotate(latest_end=latest_end).only("pk", "time_zone"))
    for account in accounts:
        today = account_local_date(account=account, now=now)
        if account.latest_end is None or account.latest_end < today:
            _usage_period_start(account=account, today=today)
            started += 1
    return started


def _account_of(project) -> Account:
    # project.account is usually already loaded (select_related); otherwise one query.
    return project.account


def _bump(model: type[Model], keys: dict, units: int) -> None:
    """Add `units` to a counter row, creating it the first time (an upsert without SQL dialects)."""
    if model.objects.filter(**keys).update(units=F("units") + units):
        return
    try:
        with transaction.atomic():
            model.objects.create(**keys, units=units)
    except IntegrityError:  # another worker created it first; add to theirs
        model.objects.filter(**keys).update(units=F("units") + units)


def _lower(model: type[Model], keys: dict, units: int) -> None:
    model.objects.filter(**keys).update(units=Greatest(F("units") - units, 0))


def quota_reserve(*, project, units: int) -> bool:
    """Reserve `units` for `project` against its account's current period.

    One conditional UPDATE on the period row; True when reserved, False when the account is over
    quota (the caller holds the message; nothing was written). Also counts the units for the
    project and the day, and notes the 80% / 100% thresholds (at most one e-mail each per
    period, sent after commit; a reservation that jumps past both at once sends only the 100%
    e-mail and marks 80% as passed, see `_note_thresholds`). Call it inside the transaction that
    claims the message. O(1): no counting.
    """
    if units < 0:
        raise ValueError("Cannot reserve a negative number of units.")
    if units == 0:
        return True
    account = _account_of(project)
    now = timezone.now()
    with transaction.atomic():
        for _ in range(_ATTEMPTS):
            period = usage_period_current(account=account, now=now)
            reserved = UsagePeriod.objects.filter(
                Q(used__lte=F("included") + F("credits") - units),
                pk=period.pk,
                closed_at__isnull=True,
            ).update(used=F("used") + units)
            if reserved:
                break
            if not UsagePeriod.objects.filter(pk=period.pk, closed_at__isnull=False).exists():
                return False  # over quota
            now = timezone.now()  # the month turned while we were at it: try the new one
        else:  # pragma: no cover - would need three month turns in one call
            raise RuntimeError("Could not find an open usage period.")
        day = min(max(account_local_date(account=account, now=now), period.start), period.end)
        _bump(ProjectUsage, {"project_id": project.pk, "period_id": period.pk}, units)
        _bump(DailyUsage, {"account_id": account.pk, "day": day}, units)
        _note_thresholds(period_id=period.pk)
    return True


def quota_reserve_many(*, units_by_project: dict) -> set[int]:
    """Reserve for several projects in one go: per account, ONE conditional UPDATE of its period
    for the sum of its projects' units, then the project and day counters, the thresholds noted
    once. Returns the ids of the projects reserved: all of an account's, or none of them (an
    account without room for the sum reserves nothing here; the caller goes project by project
    with quota_reserve, which also handles a month turning meanwhile). Call it inside the
    transaction that claims the messages.

    The sender claims the next turns of many links at once (docs/sending.md, "Many links"):
    this keeps the quota's queries per claim to a few per account, not per project.
    """
    by_account: dict[int, list] = {}
    for project, units in units_by_project.items():
        if units < 0:
            raise ValueError("Cannot reserve a negative number of units.")
        by_account.setdefault(project.account_id, []).append((project, units))
    reserved: set[int] = set()
    now = timezone.now()
    with transaction.atomic():
        # In account order: two senders reserving for the same accounts never deadlock.
        for _, items in sorted(by_account.items()):
            total = sum(units for _, units in items)
            if total == 0:
                reserved.update(project.pk for project, _ in items)
                continue
            account = _account_of(items[0][0])
            period = usage_period_current(account=account, now=now)
            if not UsagePeriod.objects.filter(
                Q(used__lte=F("included") + F("credits") - total),
                pk=period.pk,
                closed_at__isnull=True,
            ).update(used=F("used") + total):
                continue  # over quota for the sum, or the month turned: one by one
            day = min(max(account_local_date(account=account, now=now), period.start), period.end)
            by_units: dict[int, list[int]] = {}
            for project, units in items:
                if units:
                    by_units.setdefault(units, []).append(project.pk)
            for units, project_ids in by_units.items():
                counters = ProjectUsage.objects.filter(
                    period_id=period.pk, project_id__in=project_ids
                )
                if counters.update(units=F("units") + units) < len(project_ids):
                    # Some project's first text this month: create the missing counters (a
                    # worker creating one meanwhile wins), then count for those.
                    present = set(counters.values_list("project_id", flat=True))
                    missing = set(project_ids) - present
                    ProjectUsage.objects.bulk_create(
                        [ProjectUsage(project_id=pk, period_id=period.pk) for pk in missing],
                        ignore_conflicts=True,
                    )
                    ProjectUsage.objects.filter(period_id=period.pk, project_id__in=missing).update(
                        units=F("units") + units
                    )
            _bump(DailyUsage, {"account_id": account.pk, "day": day}, total)
            _note_thresholds(period_id=period.pk)
            reserved.update(project.pk for project, _ in items)
    return reserved


def _note_thresholds(*, period_id: int) -> None:
    """Mark each threshold (80%, 100% of the included units) reached, once per period, and
    e-mail the owners and administrators about it after commit.

    A conditional UPDATE claims a threshold, so when several workers cross it together exactly
    one of them e-mails. A reservation that jumps past both 80% and 100% at once sends only the
    100% e-mail (it says all the 80% one would), and the same UPDATE marks 80% as passed too: no
    80% e-mail follows later in the period (even if a release takes usage back under 100%), and
    the quota banner, which shows from 80%, shows.
    """
    row = UsagePeriod.objects.values("used", "included", "warned_80_at", "warned_100_at").get(
        pk=period_id
    )
    if row["included"] == 0 or row["warned_100_at"] is not None:
        return
    now = timezone.now()
    for percent, field in THRESHOLDS:
        if row[field] is not None or row["used"] * 100 < row["included"] * percent:
            continue
        marks = {field: now}
        if percent == 100:  # 80% is passed too, whether or not it was marked already
            marks["warned_80_at"] = Coalesce(F("warned_80_at"), Value(now))
        claimed = UsagePeriod.objects.filter(pk=period_id, **{f"{field}__isnull": True}).update(
            **marks
        )
        if claimed:
            transaction.on_commit(
                partial(emails.quota_threshold_reached, period_id=period_id, percent=percent),
                robust=True,
            )
        return


def open_periods_raise_included(*, periods, included: int) -> None:
    """A larger monthly quota reaches the open ones of `periods` at once (a plan upgrade, a plan
    edit): their included units go up to `included` where smaller, and a threshold the new quota
    puts back out of reach may warn again when usage reaches it this month."""
    periods = periods.filter(closed_at=None)
    periods.filter(included__lt=included).update(included=included)
    for percent, field in THRESHOLDS:
        periods.filter(**{f"{field}__isnull": False}).alias(
            used_pct=F("used") * 100, limit_pct=F("included") * percent
        ).filter(used_pct__lt=F("limit_pct")).update(**{field: None})


def quota_release(*, project, units: int, reserved_at: datetime.datetime | None = None) -> None:
    """Give back `units` reserved for `project` (the message was cancelled, or failed before the
    provider accepted it). `reserved_at` names the moment of the reservation, so a release after
    the month turned goes back to the month that was charged; default: now.

    Released credits return to the balance: if the month is already closed, what it had drawn
    from credits is added to the current month's credits (and `credits_added` is sent).
    """
    if units < 0:
        raise ValueError("Cannot release a negative number of units.")
    if units == 0:
        return
    account = _account_of(project)
    when = reserved_at or timezone.now()
    day = account_local_date(account=account, now=when)
    with transaction.atomic():
        period = (
            UsagePeriod.objects.filter(account_id=account.pk, start__lte=day)
            .order_by("-start")
            .first()
        )
        if period is None:
            logger.warning("Nothing to release for project %s: no usage period", project.pk)
            return
        released = UsagePeriod.objects.filter(pk=period.pk, closed_at__isnull=True).update(
            used=Greatest(F("used") - units, 0)
        )
        if not released:
            _release_into_closed_period(account=account, period_id=period.pk, units=units)
        day = min(max(day, period.start), period.end)
        _lower(ProjectUsage, {"project_id": project.pk, "period_id": period.pk}, units)
        _lower(DailyUsage, {"account_id": account.pk, "day": day}, units)


def _release_into_closed_period(*, account: Account, period_id: int, units: int) -> None:
    period = UsagePeriod.objects.select_for_update(no_key=True).get(pk=period_id)
    drawn_before = period.credits_used
    period.used = max(0, period.used - units)
    period.save(update_fields=["used"])
    refund = drawn_before - period.credits_used
    if refund:
        credits_add(account=account, units=refund)


def credits_add(*, account: Account, units: int) -> UsagePeriod:
    """Add credit units to the account's balance (on its current period) and announce it."""
    if units <= 0:
        raise ValueError("Credits to add must be a positive number of units.")
    with transaction.atomic():
        for _ in range(_ATTEMPTS):
            period = usage_period_current(account=account)
            if UsagePeriod.objects.filter(pk=period.pk, closed_at__isnull=True).update(
                credits=F("credits") + units
            ):
                break
        else:  # pragma: no cover
            raise RuntimeError("Could not find an open usage period.")
        transaction.on_commit(
            partial(credits_added.send, sender=Account, account=account, units=units),
            robust=True,
        )
    period.refresh_from_db()
    return period
