from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from billing.models import validate_time_zone
from portal.storage import private_storage

SERVER_ADMIN_GROUP = "Server administrators"


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str):
        # Addresses are stored in lower case; people sign in with whatever case they type.
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("email_verified", True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """Everyone signs in with an e-mail address. Everyone who signs up is a researcher."""

    username = None
    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    email_verified = models.BooleanField(default=False)
    time_zone = models.CharField(
        max_length=64,
        default="America/New_York",
        validators=[validate_time_zone],
        help_text="Times in the portal are shown in this time zone.",
    )

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.full_name or self.email

    def clean(self) -> None:
        super().clean()
        # One address, one account, whatever case it was typed in (the admin's forms too).
        self.email = (self.email or "").strip().lower()

    @property
    def is_server_admin(self) -> bool:
        if not self.is_active:
            return False
        if self.is_superuser:
            return True
        cached = getattr(self, "_is_server_admin", None)
        if cached is None:
            cached = self.groups.filter(name=SERVER_ADMIN_GROUP).exists()
            self._is_server_admin = cached
        return cached


class OnboardingRequest(models.Model):
    """A researcher's request to enable texting for one REDCap project."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        CHANGES_REQUESTED = "changes_requested", "Changes requested"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        WITHDRAWN = "withdrawn", "Withdrawn"

    OPEN_STATUSES = (Status.DRAFT, Status.SUBMITTED, Status.CHANGES_REQUESTED)
    EDITABLE_STATUSES = (Status.DRAFT, Status.CHANGES_REQUESTED)
    DECIDED_STATUSES = (Status.APPROVED, Status.REJECTED, Status.WITHDRAWN)

    class IrbStatus(models.TextChoices):
        APPROVED = "approved", "Approved by the IRB"
        PENDING = "pending", "Pending IRB approval"

    class MessageKind(models.TextChoices):
        INVITATION = "invitation", "Survey invitations"
        REMINDER = "reminder", "Reminders"
        FOLLOW_UP = "follow_up", "Follow-ups"
        ALERT = "alert", "Alerts"
        TWO_WAY = "two_way", "Two-way replies"

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="onboarding_requests"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)

    redcap_instance = models.ForeignKey(
        "projects.RedcapInstance", on_delete=models.PROTECT, related_name="onboarding_requests"
    )
    redcap_project_id = models.PositiveIntegerField(
        "REDCap project id", validators=[MinValueValidator(1)]
    )
    project_title = models.CharField(max_length=200)
    # A draft may be incomplete; submitting checks that everything below is filled in.
    pi_name = models.CharField("PI name", max_length=200, blank=True)
    pi_email = models.EmailField("PI e-mail", blank=True)
    irb_protocol = models.CharField("IRB protocol number", max_length=100, blank=True)
    irb_status = models.CharField(
        "Is texting approved by the IRB?", max_length=10, choices=IrbStatus.choices, blank=True
    )
    summary = models.TextField("Study summary", blank=True)
    expected_participants = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    expected_messages_per_month = models.PositiveIntegerField(
        "Expected outbound messages per month",
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
    )
    message_kinds = models.JSONField(default=list, blank=True)

    billing_account = models.ForeignKey(
        "billing.Account",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="onboarding_requests",
    )
    new_account_name = models.CharField(max_length=200, blank=True)
    new_account_plan = models.ForeignKey(
        "billing.Plan", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    new_account_time_zone = models.CharField(
        max_length=64, blank=True, validators=[validate_time_zone]
    )

    attest_no_phi = models.BooleanField(default=False)
    attest_consent = models.BooleanField(default=False)

    decision_note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    project = models.OneToOneField(
        "projects.Project",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="onboarding_request",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["redcap_instance", "redcap_project_id"],
                condition=Q(status__in=["draft", "submitted", "changes_requested"]),
                name="one_open_request_per_redcap_project",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["submitted", "changes_requested", "approved", "rejected"])
                | Q(billing_account__isnull=False)
                | Q(new_account_plan__isnull=False),
                name="submitted_request_names_an_account",
            ),
        ]
        indexes = [models.Index(fields=["status", "submitted_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.project_title}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE_STATUSES

    def get_message_kinds_display(self) -> list[str]:
        labels = dict(self.MessageKind.choices)
        return [labels.get(kind, kind) for kind in self.message_kinds]


class OnboardingAttachment(models.Model):
    """A file kept with a request (the IRB approval letter, a protocol page): a PDF, PNG or JPEG,
    checked by its content. Stored under PRIVATE_MEDIA_ROOT with a random name; handed out only
    to the requester and server administrators (portal/storage.py)."""

    class Kind(models.TextChoices):
        PDF = "pdf", "PDF"
        PNG = "png", "PNG image"
        JPEG = "jpeg", "JPEG image"

    request = models.ForeignKey(
        OnboardingRequest, on_delete=models.PROTECT, related_name="attachments"
    )
    file = models.FileField(upload_to="onboarding", storage=private_storage, max_length=200)
    name = models.CharField("file name", max_length=200, help_text="As it was uploaded.")
    kind = models.CharField(max_length=4, choices=Kind.choices)
    size = models.PositiveIntegerField(help_text="Bytes.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} on request #{self.request_id}"


class OnboardingComment(models.Model):
    request = models.ForeignKey(
        OnboardingRequest, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"Comment by {self.author} on request #{self.request_id}"


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit log is append-only.")

    def delete(self):
        raise PermissionError("The audit log is append-only.")


class AuditEvent(models.Model):
    """One line of the append-only audit log: who did what to which object, and when.

    Bodies of messages, phone numbers and secrets never go in here.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # PROTECT: a person who appears in the audit log is deactivated, never deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    project_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    account_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    message = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.object_type}#{self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The audit log is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit log is append-only.")


class ApiToken(models.Model):
    """A personal API token. Only a SHA-256 hash is stored; the key is shown once when made.

    A token may only read, or read and write; it may expire; a password change or reset revokes
    it (portal/receivers.py)."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_token"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    last4 = models.CharField(max_length=4)
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"API token …{self.last4} of {self.user}"
