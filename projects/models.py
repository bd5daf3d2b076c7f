import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from billing.models import validate_time_zone
from projects.redcap import RedcapConfigError, validate_api_url


def default_send_days() -> list[int]:
    # Monday (0) to Saturday (5): the default in docs/compliance.md ("Our default sending hours");
    # Sunday is off in some states.
    return [0, 1, 2, 3, 4, 5]


class RedcapInstance(models.Model):
    """A REDCap server on the administrators' allowlist. Researchers never type a URL."""

    name = models.CharField(max_length=100, unique=True)
    api_url = models.URLField(help_text="The API endpoint, ending in /api/.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """An API URL ending in /api/ on a server the token may travel to: public https on port
        443 (projects/netguard.py; the exceptions are settings)."""
        super().clean()
        if not self.api_url:
            return  # blank, or not a URL at all: the field itself says so
        try:
            validate_api_url(self.api_url)
        except RedcapConfigError as exc:
            raise ValidationError({"api_url": str(exc)}) from exc


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
    status_reason = models.TextField(
        blank=True, help_text="Why it is paused, suspended or archived (shown to the team)."
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    time_zone = models.CharField(
        max_length=64,
        default="America/New_York",
        validators=[validate_time_zone],
        help_text="Used for participants whose record has no time zone.",
    )
    # Sending hours: texts go out only inside this window, in the participant's local time
    # (docs/compliance.md). Owners may narrow them inside the bounds the administrators set.
    send_window_start = models.TimeField(default=datetime.time(9, 0))
    send_window_end = models.TimeField(default=datetime.time(20, 0))
    send_days = models.JSONField(
        default=default_send_days, help_text="Weekdays texts may go out (0 = Monday)."
    )
    send_bounds_start = models.TimeField(
        default=datetime.time(9, 0), help_text="Set by administrators: the earliest owners may set."
    )
    send_bounds_end = models.TimeField(
        default=datetime.time(20, 0), help_text="Set by administrators: the latest owners may set."
    )
    send_bounds_days = models.JSONField(
        default=default_send_days, help_text="Set by administrators: the days owners may choose."
    )
    help_reply = models.CharField(
        max_length=320,
        blank=True,
        help_text="Answer to HELP. Leave empty for the standard one with the PI's contact.",
    )
    # Bodies of texts and replies are blanked after this many days (messaging.services.outbox.
    # retention_purge); the owner picks within the administrators' bounds
    # (docs/compliance.md, "Retention"). None: the site's default.
    retention_days = models.PositiveIntegerField(
        "Keep message texts for (days)", null=True, blank=True
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
    # E-mail notices about replies (the Members page): a flagged text at once; a daily digest of
    # unread replies. The e-mail holds a link only, never a reply's text.
    notify_flags = models.BooleanField("E-mail me flagged texts at once", default=False)
    notify_digest = models.BooleanField("E-mail me a daily digest of unread replies", default=False)
    digest_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "user"], name="unique_project_member")
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) on {self.project}"


class RedcapLink(models.Model):
    """The project's REDCap API token, encrypted; shown only as its last 4 characters."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="redcap_link")
    token_encrypted = models.TextField()
    token_last4 = models.CharField(max_length=4)
    token_fingerprint = models.CharField(max_length=64, db_index=True)
    redcap_version = models.CharField(max_length=32, blank=True)
    redcap_project_title = models.CharField(max_length=300, blank=True)
    is_longitudinal = models.BooleanField(default=False)
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    linked_at = models.DateTimeField(auto_now_add=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The dispatcher could not reach REDCap for this project's rules since then (shown to the
    # team); it tries again at `retry_at`, backing off. Cleared when REDCap answers.
    failing_since = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"REDCap token ••••{self.token_last4} for {self.project}"

    @property
    def token(self) -> str:
        from projects.crypto import decrypt

        return decrypt(self.token_encrypted)


class ProviderLink(models.Model):
    """The project's SMS provider credentials (Mosio, Twilio or the sandbox), encrypted.

    `config` holds the provider's settings (API key, account SID, auth token, sender); `display`
    holds what may be shown (masked secrets, the sender). `fingerprint` identifies the Mosio key or
    the Twilio sender, so one cannot serve two projects.
    """

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="provider_link")
    # A gateway's slug ("mosio", "twilio", "sandbox"). The choices are the messaging app's gateway
    # registry, installed when it is ready (messaging.apps): this app never imports messaging.
    provider = models.CharField(max_length=20, choices=[])
    config_encrypted = models.TextField()
    display = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, unique=True)
    rate_per_second = models.DecimalField(
        "Send rate (segments per second)",
        max_digits=6,
        decimal_places=2,
        default=1,
        help_text="1 for a US long code, 3 for toll-free, 100 or more for a short code.",
    )
    webhook_secret = models.CharField(max_length=64, unique=True)
    is_paused = models.BooleanField(default=False)
    paused_reason = models.TextField(blank=True)
    linked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    linked_at = models.DateTimeField(auto_now_add=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # Texts could not reach the provider since then (connection refused, 429): they are retried
    # for SENDER_RETRY_MINUTES (docs/sending.md); the owners are told once when one gives up.
    unreachable_since = models.DateTimeField(null=True, blank=True)
    owners_told_at = models.DateTimeField(null=True, blank=True)
    # Whether the provider answers STOP/HELP itself (docs/mosio.md, M25): then StudyText sends
    # no HELP text of its own. None: the provider's default (on for Mosio and Twilio, off for the
    # sandbox; messaging.services.inbound.provider_answers_keywords).
    provider_answers_keywords = models.BooleanField(
        "The provider answers STOP/HELP itself", null=True, blank=True
    )
    # Polling the provider's history for replies (Mosio; docs/mosio.md "Polling"): the cursor is
    # the newest history time seen; after an error the next poll waits (backoff).
    poll_cursor = models.DateTimeField(null=True, blank=True)
    polled_at = models.DateTimeField(null=True, blank=True)
    poll_next_at = models.DateTimeField(null=True, blank=True)
    poll_failures = models.PositiveIntegerField(default=0)
    poll_error = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return f"{self.get_provider_display()} for {self.project}"

    @property
    def config(self) -> dict[str, str]:
        from projects.crypto import decrypt_json

        return decrypt_json(self.config_encrypted)


class FieldMapping(models.Model):
    """Which REDCap fields hold what the portal needs. Only these fields are ever stored."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="field_mapping")
    phone_field = models.CharField(max_length=100)
    consent_field = models.CharField("SMS-consent field", max_length=100)
    consent_value = models.CharField(
        max_length=100, default="1", help_text="The coded value that means “consented”."
    )
    time_zone_field = models.CharField(max_length=100, blank=True)
    first_name_field = models.CharField(max_length=100, blank=True)
    optout_field = models.CharField(
        "Opt-out field",
        max_length=100,
        blank=True,
        help_text="Records marked opted out here are never texted; STOP is written back to it.",
    )
    optout_value = models.CharField(
        max_length=100,
        default="1",
        help_text="The coded value that means “opted out” (a checkbox: the option's code).",
    )
    withdrawn_logic = models.TextField(
        blank=True, help_text="REDCap logic that is true for withdrawn participants."
    )
    date_fields = models.JSONField(
        default=list, blank=True, help_text="Date fields that messages may be scheduled from."
    )
    event = models.CharField(
        max_length=100,
        blank=True,
        help_text="Longitudinal projects: the event holding these fields.",
    )
    phone_region = models.CharField(
        max_length=2, default="US", help_text="Region for numbers written without +country code."
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Field mapping of {self.project}"

    @property
    def redcap_fields(self) -> list[str]:
        """The REDCap fields a sync exports: the mapped ones and nothing else."""
        fields = [
            self.phone_field,
            self.consent_field,
            self.time_zone_field,
            self.first_name_field,
            self.optout_field,
            *self.date_fields,
        ]
        return list(dict.fromkeys(f for f in fields if f))


class Participant(models.Model):
    """A REDCap record the portal may text, holding only the mapped fields.

    The phone number is encrypted; its keyed fingerprint finds a participant from an inbound text.
    """

    class Issue(models.TextChoices):
        NONE = "", "Ready"
        NO_PHONE = "no_phone", "No phone number"
        INVALID_PHONE = "invalid_phone", "Phone number is not valid"
        NO_CONSENT = "no_consent", "No consent to texts"
        UNKNOWN_TIME_ZONE = "unknown_time_zone", "Unknown time zone"

    class OptoutWrite(models.TextChoices):
        NONE = "", "Nothing to write"
        OPT_OUT = "out", "Opt-out to write to REDCap"
        OPT_IN = "in", "Opt-in to write to REDCap"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="participants")
    record_id = models.CharField(max_length=100)
    phone_encrypted = models.TextField(blank=True)
    phone_fingerprint = models.CharField(max_length=64, blank=True, db_index=True)
    phone_last4 = models.CharField(max_length=4, blank=True)
    consented = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=64, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    withdrawn = models.BooleanField(default=False)
    redcap_opted_out = models.BooleanField(
        "opted out in REDCap",
        default=False,
        help_text="The mapped opt-out field in REDCap says so: never texted.",
    )
    optout_write_pending = models.CharField(
        max_length=3,
        choices=OptoutWrite.choices,
        blank=True,
        default="",
        help_text="An opt-out (or opt-in) waits to be written to REDCap; the 15-minute sync "
        "retries it.",
    )
    dates = models.JSONField(default=dict, blank=True)
    issue = models.CharField(max_length=20, choices=Issue.choices, blank=True, default="")
    issue_detail = models.CharField(max_length=200, blank=True)
    in_redcap = models.BooleanField(
        default=True, help_text="False once the record is gone from REDCap (kept, not deleted)."
    )
    number_invalid = models.BooleanField(
        default=False, help_text="The SMS provider reported this number cannot receive texts."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "record_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "record_id"], name="unique_participant_record"
            )
        ]
        indexes = [
            models.Index(fields=["project", "issue", "in_redcap"]),
            models.Index(
                fields=["project"],
                condition=~models.Q(optout_write_pending=""),
                name="participant_optout_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"Record {self.record_id}"

    @property
    def phone(self) -> str:
        from projects.crypto import decrypt

        return decrypt(self.phone_encrypted) if self.phone_encrypted else ""

    @property
    def masked_phone(self) -> str:
        return f"•••-•••-{self.phone_last4}" if self.phone_last4 else "—"

    @property
    def is_textable(self) -> bool:
        return (
            self.issue == ""
            and self.in_redcap
            and self.consented
            and not self.withdrawn
            and not self.redcap_opted_out
            and not self.number_invalid
        )


class SyncRun(models.Model):
    """One participant sync: its progress while it runs, and what it found."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Failed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sync_runs")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    skipped_count = models.PositiveIntegerField(default=0)
    gone_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        get_latest_by = "created_at"

    def __str__(self) -> str:
        return f"Sync of {self.project} at {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        return int(100 * self.processed / self.total) if self.total else 0

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class ProjectInvitation(models.Model):
    """An owner's invitation to someone without an account yet; accepted when they sign up."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "email"], name="unique_project_invitation")
        ]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.project}"


class DataEntryTrigger(models.Model):
    """The project's REDCap Data Entry Trigger address (docs/redcap.md, "The Data Entry
    Trigger"). REDCap posts to it each time someone saves a record; the secret in its path is all
    that sets it apart, so a post is only a hint: StudyText re-reads the record before acting."""

    project = models.OneToOneField(
        Project, on_delete=models.CASCADE, related_name="data_entry_trigger"
    )
    secret = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)
    last_post_at = models.DateTimeField(null=True, blank=True)
    last_read_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Data Entry Trigger of {self.project}"


class RecordRefresh(models.Model):
    """A record REDCap said was saved, waiting to be read again from REDCap.

    One row per project and record: saves that follow within DET_QUIET_SECONDS fold into it, so
    a burst of saves costs one read (docs/redcap.md, "Coalescing"). `saves` holds what the posts
    said was saved (instrument, event, repeat instance: hints, never trusted) since the read in
    progress began; `reading_saves` what that read answers."""

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting for the saves to settle"
        READING = "reading", "Being read from REDCap"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    record_id = models.CharField(max_length=100)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    due_at = models.DateTimeField()
    first_post_at = models.DateTimeField(null=True, blank=True)
    last_post_at = models.DateTimeField()
    posts = models.PositiveIntegerField(default=1)
    saves = models.JSONField(default=list, blank=True)
    reading_saves = models.JSONField(default=list, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "record_id"], name="unique_record_refresh")
        ]
        indexes = [models.Index(fields=["status", "due_at"])]

    def __str__(self) -> str:
        return f"Re-read of record {self.record_id} of {self.project_id}"


class ConsentEvent(models.Model):
    """One line of a participant's consent timeline (the participant page): every opt-in and
    opt-out, and consent read from REDCap, with where it came from. Append-only; written by the
    services that change consent (messaging's opt-outs and keywords, the sync and the DET's
    re-read). Keyed by the phone's fingerprint too, so a STOP from a number that matched no
    participant yet still shows once the participant arrives. Never a phone number or a body."""

    class Kind(models.TextChoices):
        OPTED_OUT = "opted_out", "Opted out"
        OPTED_IN = "opted_in", "Opted back in"
        CONSENTED = "consented", "Consent to texts"
        CONSENT_WITHDRAWN = "no_consent", "No consent to texts"

    class Source(models.TextChoices):
        KEYWORD = "keyword", "Texted a keyword"
        STAFF = "staff", "Study staff"
        PROVIDER = "provider", "The provider (error 21610: unsubscribed)"
        REDCAP_CONSENT = "redcap_consent", "REDCap consent field"
        REDCAP_OPTOUT = "redcap_optout", "REDCap opt-out field"
        SYNC = "sync", "First read from REDCap (sync)"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    participant = models.ForeignKey(
        Participant, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    phone_fingerprint = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    detail = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["participant", "at"], name="consent_participant_at"),
            models.Index(fields=["project", "phone_fingerprint"], name="consent_project_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_source_display()}) in {self.project_id}"
