from django.conf import settings
from django.db import models

from billing.models import validate_time_zone


class RedcapInstance(models.Model):
    """A REDCap server on the administrators' allowlist. Researchers never type a URL."""

    name = models.CharField(max_length=100, unique=True)
    api_url = models.URLField(help_text="The API endpoint, ending in /api/.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    """A REDCap project whose texting an administrator approved."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        SUSPENDED = "suspended", "Suspended by an administrator"
        ARCHIVED = "archived", "Archived"

    account = models.ForeignKey(
        "billing.Account", on_delete=models.PROTECT, related_name="projects"
    )
    redcap_instance = models.ForeignKey(
        RedcapInstance, on_delete=models.PROTECT, related_name="projects"
    )
    redcap_project_id = models.PositiveIntegerField("REDCap project id")
    title = models.CharField(max_length=200)
    pi_name = models.CharField("PI name", max_length=200)
    pi_email = models.EmailField("PI e-mail")
    irb_protocol = models.CharField("IRB protocol number", max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(
                fields=["redcap_instance", "redcap_project_id"],
                name="unique_redcap_project",
            )
        ]

    def __str__(self) -> str:
        return self.title


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        EDITOR = "editor", "Editor"
        VIEWER = "viewer", "Viewer"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="unique_project_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) on {self.project}"
