import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a time zone name such as America/Chicago.")


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
    pack_price = models.DecimalField(
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Optional; set by the institution.",
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
