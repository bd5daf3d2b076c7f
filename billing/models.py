import datetime
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a time zone name such as America/Chicago.")


# Prices are data the institution sets (or leaves empty); never negative.
NOT_NEGATIVE = MinValueValidator(0, message="A price cannot be negative. Enter 0 or more.")
PRICE_ERRORS = {"invalid": "Enter the price as a number, such as 250 or 49.50, without a sign."}


class Plan(models.Model):
    """A tier of service. Data, not code: administrators edit it in the admin."""

    name = models.CharField(max_length=50, unique=True)
    project_limit = models.PositiveIntegerField(help_text="Active projects an account may have.")
    monthly_messages = models.PositiveIntegerField(
        help_text="Outbound messages included per month."
    )
    pack_size = models.PositiveIntegerField(
        default=1000, help_text="Outbound messages in one credit pack."
    )
    monthly_price = models.DecimalField(
        "price a month",
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[NOT_NEGATIVE],
        error_messages=PRICE_ERRORS,
        help_text="Optional; set by the institution. Shown on the plan and change-plan pages.",
    )
    pack_price = models.DecimalField(
        "price of a credit pack",
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[NOT_NEGATIVE],
        error_messages=PRICE_ERRORS,
        help_text="Optional; set by the institution. Shown on the credit-pack page.",
    )
    is_active = models.BooleanField(default=True, help_text="Offered to new accounts.")
    sort_order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.project_limit} projects, {self.monthly_messages:,}/month)"


class Account(models.Model):
    """A billing account: it has a plan, owners and members, and counts usage in its time zone."""

    name = models.CharField(max_length=200)
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="accounts")
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AccountMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="unique_account_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) in {self.account}"


class UsagePeriod(models.Model):
    """One calendar month of an account's usage, in the account's time zone.

    The quota lives on this one row so that a reservation is one conditional UPDATE
    (`used + units <= included + credits`). `included` is a snapshot of the plan's monthly
    messages; `credits` is the account's credit balance brought into this period (what was left
    when the previous period closed) plus every credit pack approved during it. Credits are spent
    only after the included messages: of `used`, the part above `included` came from credits.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="periods")
    start = models.DateField(help_text="First day, in the account's time zone.")
    end = models.DateField(help_text="Last day (inclusive), in the account's time zone.")
    included = models.PositiveIntegerField(help_text="The plan's monthly units, when it began.")
    credits = models.PositiveIntegerField(default=0, help_text="Credit units available to it.")
    used = models.PositiveIntegerField(default=0)
    warned_80_at = models.DateTimeField(null=True, blank=True)
    warned_100_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the next period starts; a closed period takes no more reservations.
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-start"]
        constraints = [
            models.UniqueConstraint(fields=["account", "start"], name="one_period_per_start"),
            models.CheckConstraint(
                condition=models.Q(used__lte=models.F("included") + models.F("credits")),
                name="period_used_within_quota",
            ),
            models.CheckConstraint(
                condition=models.Q(end__gte=models.F("start")), name="period_ends_after_start"
            ),
        ]
        indexes = [models.Index(fields=["closed_at", "warned_80_at"])]

    def __str__(self) -> str:
        return f"{self.account} · {self.start:%B %Y}"

    @property
    def capacity(self) -> int:
        return self.included + self.credits

    @property
    def included_used(self) -> int:
        return min(self.used, self.included)

    @property
    def credits_used(self) -> int:
        return min(self.credits, max(0, self.used - self.included))

    @property
    def credits_left(self) -> int:
        return self.credits - self.credits_used

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.used)

    @property
    def percent_of_included(self) -> int:
        if self.included == 0:
            return 100 if self.used else 0
        return round(self.used * 100 / self.included)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def next_start(self) -> datetime.date:
        return self.end + datetime.timedelta(days=1)


class ProjectUsage(models.Model):
    """Units a project used in one of its account's periods (a counter, never a count)."""

    project = models.ForeignKey("projects.Project", on_delete=models.PROTECT, related_name="usage")
    period = models.ForeignKey(UsagePeriod, on_delete=models.CASCADE, related_name="project_usage")
    units = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "period"], name="one_usage_per_project_period"
            )
        ]
        indexes = [models.Index(fields=["period", "units"])]

    def __str__(self) -> str:
        return f"{self.project_id} in {self.period}: {self.units}"


class DailyUsage(models.Model):
    """Units an account used on one day (its own time zone), for the daily chart."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    units = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        constraints = [
            models.UniqueConstraint(fields=["account", "day"], name="one_usage_per_account_day")
        ]

    def __str__(self) -> str:
        return f"{self.account} on {self.day}: {self.units}"


class RequestStatus(models.TextChoices):
    REQUESTED = "requested", "Waiting for review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class CreditPackRequest(models.Model):
    """An owner asks for N credit packs; an administrator approves (credits added) or rejects."""

    Status = RequestStatus

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="credit_pack_requests"
    )
    packs = models.PositiveIntegerField()
    pack_size = models.PositiveIntegerField(help_text="The plan's pack size when requested.")
    units = models.PositiveIntegerField()
    note = models.TextField(blank=True, help_text="Why the account needs them (optional).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(packs__gte=1), name="credit_pack_at_least_one"
            )
        ]
        indexes = [models.Index(fields=["status", "requested_at"])]

    def __str__(self) -> str:
        return f"{self.packs} pack{'s' if self.packs != 1 else ''} for {self.account}"


class PlanChangeRequest(models.Model):
    """An owner asks to move the account to another plan; an administrator decides."""

    Status = RequestStatus

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="plan_change_requests"
    )
    from_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    to_plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    note = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=models.Q(status="requested"),
                name="one_open_plan_change_per_account",
            )
        ]
        indexes = [models.Index(fields=["status", "requested_at"])]

    def __str__(self) -> str:
        return f"{self.account}: {self.from_plan.name} → {self.to_plan.name}"
