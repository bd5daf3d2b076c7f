import datetime

from django.conf import settings
from django.db import models
from django.db.models import Q


class MessageRule(models.Model):
    """What to text, to whom, and when: an invitation, reminder, follow-up or alert."""

    class Kind(models.TextChoices):
        INVITATION = "invitation", "Survey invitation"
        REMINDER = "reminder", "Reminder"
        FOLLOW_UP = "follow_up", "Follow-up"
        ALERT = "alert", "Alert"
        TEXT_SURVEY = "text_survey", "Text survey"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    class Recipients(models.TextChoices):
        ALL = "all", "All consented participants"
        FILTER = "filter", "Participants matching REDCap logic"
        RECORDS = "records", "Chosen records"

    class Schedule(models.TextChoices):
        ONCE = "once", "Once, at a date and time"
        RECURRING = "recurring", "Recurring"
        RELATIVE = "relative", "Relative to a REDCap date"
        MANUAL = "manual", "Only when sent by hand"

    class Trigger(models.TextChoices):
        """What makes the rule text (docs/sending.md, "Triggers"). The first four are the old
        schedules (`schedule` keeps their value); the last three react to REDCap."""

        ONCE = "once", "Once, at a date and time"
        RECURRING = "recurring", "Recurring"
        RELATIVE = "relative", "Relative to a REDCap date or date-time"
        MANUAL = "manual", "Only when sent by hand"
        LOGIC = "logic", "When REDCap logic becomes true"
        COMPLETION = "completion", "After a survey was completed"
        INVITATION = "invitation", "Every few days after the invitation, until complete"

    class OffsetUnit(models.TextChoices):
        DAYS = "days", "days"
        HOURS = "hours", "hours"
        MINUTES = "minutes", "minutes"

    class LogicRepeat(models.TextChoices):
        ONCE = "once", "Once per record"
        INSTANCE = "instance", "Once per repeat instance"
        EVERY = "every", "Every time it becomes true again"

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="message_rules"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    name = models.CharField(max_length=120)
    body = models.TextField()
    instrument = models.CharField(
        max_length=100, blank=True, help_text="Survey for [survey-link] and the stop condition."
    )
    event = models.CharField(max_length=100, blank=True)

    recipients = models.CharField(max_length=10, choices=Recipients.choices, default=Recipients.ALL)
    filter_logic = models.TextField(blank=True)
    record_ids = models.JSONField(default=list, blank=True)

    schedule = models.CharField(max_length=10, choices=Schedule.choices, default=Schedule.ONCE)
    send_time = models.TimeField(
        default=datetime.time(10, 0), help_text="Participant's local time of day."
    )
    once_date = models.DateField(null=True, blank=True)
    recur_days = models.JSONField(default=list, blank=True, help_text="Weekdays, 0 = Monday.")
    start_date = models.DateField(null=True, blank=True)
    until_date = models.DateField(null=True, blank=True)
    max_occurrences = models.PositiveIntegerField(null=True, blank=True)
    date_field = models.CharField(max_length=100, blank=True)
    offset_days = models.IntegerField(default=0)

    # Triggers (docs/sending.md, "Triggers"). `schedule` stays the old schedules' value (and
    # "manual" for the three REDCap-driven triggers, which the calendar dispatcher skips).
    trigger = models.CharField(max_length=12, choices=Trigger.choices, default=Trigger.ONCE)
    offset = models.IntegerField(
        default=0, help_text="Relative and follow-up triggers: how long after (negative: before)."
    )
    offset_unit = models.CharField(
        max_length=8, choices=OffsetUnit.choices, default=OffsetUnit.DAYS
    )
    trigger_logic = models.TextField(blank=True)
    logic_repeat = models.CharField(
        max_length=8, choices=LogicRepeat.choices, default=LogicRepeat.ONCE
    )
    anchor_rule = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reminders",
        help_text="Reminders: the invitation they follow.",
    )
    repeat_every_days = models.PositiveIntegerField(null=True, blank=True)
    repeat_count = models.PositiveIntegerField(null=True, blank=True)

    # Alerts to the study team (docs/sending.md, "Alerts to the study team"): instead of texting
    # the participant, the alert e-mails these members and addresses (and texts the members'
    # verified phones when `alert_sms`), with the record's values piped in.
    notify_team = models.BooleanField(
        default=False, help_text="Alert the study team instead of texting the participant."
    )
    alert_members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    alert_emails = models.JSONField(default=list, blank=True)
    alert_sms = models.BooleanField(
        default=False, help_text="Also text the members' own verified phones (counts as texts)."
    )

    stop_when_complete = models.BooleanField(
        default=False, help_text="Stop once the participant has completed the survey."
    )
    max_sends = models.PositiveIntegerField(
        null=True, blank=True, help_text="Stop after this many texts to a participant."
    )
    grace = models.DurationField(
        default=datetime.timedelta(hours=2),
        help_text="An occurrence missed by more than this (e.g. the sender was down) is skipped.",
    )

    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    materialized_through = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["project", "name"]
        indexes = [models.Index(fields=["status", "schedule"])]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        # The old schedules and their triggers are one choice: `schedule` (what older code and
        # rows set) wins for them; the REDCap-driven triggers are "manual" to the calendar.
        if self.trigger in SCHEDULE_TRIGGERS or not self.trigger:
            self.trigger = self.schedule
        if self.offset_unit == self.OffsetUnit.DAYS:
            self.offset = self.offset_days
        super().save(*args, **kwargs)

    def schedule_summary(self) -> str:
        at = self.send_time.strftime("%-I:%M %p").lower()
        n, unit = abs(self.offset), self.offset_unit
        unit_words = unit if n != 1 else unit[:-1]
        if self.trigger == self.Trigger.LOGIC:
            repeat = self.get_logic_repeat_display().lower()
            return f"When {self.trigger_logic} becomes true ({repeat})"
        if self.trigger == self.Trigger.COMPLETION:
            when = f" at {at}" if unit == self.OffsetUnit.DAYS else ""
            return f"{n} {unit_words} after {self.instrument} was completed{when}"
        if self.trigger == self.Trigger.INVITATION:
            every = self.repeat_every_days or 0
            survey = self.instrument or "the survey"
            return (
                f"Every {every} day{'s' if every != 1 else ''} after the invitation, up to "
                f"{self.repeat_count or 0} times, until {survey} is complete"
            )
        if self.trigger == self.Trigger.RELATIVE and unit != self.OffsetUnit.DAYS:
            side = "after" if self.offset >= 0 else "before"
            return f"{n} {unit_words} {side} [{self.date_field}]"
        if self.schedule == self.Schedule.ONCE:
            day = self.once_date.strftime("%b %-d, %Y") if self.once_date else "?"
            return f"Once, {day} at {at}"
        if self.schedule == self.Schedule.RECURRING:
            days = sorted(self.recur_days or range(7))
            names = "day" if len(days) == 7 else ", ".join(WEEKDAY_NAMES[d] for d in days)
            text = f"Every {names} at {at}"
            if self.until_date:
                text += f" until {self.until_date:%b %-d}"
            if self.max_occurrences:
                text += f", {self.max_occurrences} times at most"
            return text
        if self.schedule == self.Schedule.RELATIVE:
            n = abs(self.offset_days)
            side = "after" if self.offset_days >= 0 else "before"
            return f"{n} day{'s' if n != 1 else ''} {side} [{self.date_field}] at {at}"
        return "Only when sent by hand"


SCHEDULE_TRIGGERS = {"once", "recurring", "relative", "manual"}
WEEKDAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class Send(models.Model):
    """A batch sent by hand ("send now") — the unit a progress bar follows."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="sends")
    rule = models.ForeignKey(
        MessageRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="sends"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    total = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Send #{self.pk} of {self.rule or 'an ad-hoc text'}"


class Message(models.Model):
    """One outbound text: the outbox row that exists before any provider call.

    `dedup_key` (rule, participant, occurrence) is unique, so a re-run dispatcher or a duplicated
    task cannot create a twin. Status only moves forward (see `FORWARD`).
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        HELD = "held", "Held: over quota"
        SENDING = "sending", "Sending"
        UNKNOWN = "unknown", "Unconfirmed"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        UNDELIVERED = "undelivered", "Not delivered"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        CANCELLED = "cancelled", "Cancelled"

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="messages"
    )
    # Every text to a participant names them. A test ("Send a test to my phone") goes to a staff
    # member's own verified phone instead (`to_user`): it never enters the queue, and nothing it
    # meets (a failure, a receipt) touches a participant (see messaging/services/test_texts.py).
    participant = models.ForeignKey(
        "projects.Participant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="A test text to this staff member's own phone.",
    )
    rule = models.ForeignKey(
        MessageRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    send = models.ForeignKey(
        Send, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    occurrence = models.CharField(max_length=255)
    dedup_key = models.CharField(max_length=300, unique=True)
    kind = models.CharField(max_length=20, default="adhoc")
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    due_at = models.DateTimeField()
    not_before = models.DateTimeField(
        help_text="Not released before this time (quiet hours, retry backoff)."
    )
    adhoc_body = models.TextField(blank=True, help_text="The text of an ad-hoc message.")
    body = models.TextField(
        blank=True, help_text="The text as sent (kept for the retention period)."
    )
    segments = models.PositiveSmallIntegerField(default=0)
    encoding = models.CharField(max_length=8, blank=True)
    units = models.PositiveSmallIntegerField(default=0, help_text="Quota units reserved.")
    reserved_at = models.DateTimeField(
        null=True, blank=True, help_text="When the units were reserved."
    )
    provider = models.CharField(max_length=20, blank=True)
    provider_message_id = models.CharField(max_length=64, blank=True, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-due_at", "-id"]
        # The pages' plans (checked by tests/messaging/test_query_plans.py): each list is read
        # in due_at order straight off an index (keyset pages), and each count of texts by
        # status is answered from the index alone, whatever the number of texts.
        indexes = [
            # the sender's ready texts; with rule, the rules list's open texts, off the index alone
            models.Index(fields=["status", "not_before", "rule"], name="message_status_ready"),
            # counts by status (the overview's, the dashboard's, the rules list's open texts)
            models.Index(fields=["project", "status", "due_at"], name="message_project_status"),
            # the log, its date filters and keyset pages; the overview's 30-day counts
            models.Index(fields=["project", "due_at", "status"], name="message_project_due"),
            # the overview's texts-per-day chart
            models.Index(fields=["project", "sent_at", "status"], name="message_project_sent"),
            # a rule's texts and the rules list's counts; a send's texts and its progress
            models.Index(fields=["rule", "due_at", "status"], name="message_rule_due"),
            models.Index(fields=["send", "due_at", "status"], name="message_send_due"),
            models.Index(fields=["participant", "rule", "status"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(participant__isnull=False) | Q(to_user__isnull=False),
                name="message_to_a_participant_or_a_tester",
            )
        ]

    def __str__(self) -> str:
        if self.to_user_id:
            return f"Test message #{self.pk} to user {self.to_user_id} ({self.status})"
        return f"Message #{self.pk} to record {self.participant_id} ({self.status})"

    @property
    def status_label(self) -> str:
        """The status as the pages show it: a Mosio text stays "sent" because Mosio reports no
        delivery (docs/mosio.md M12), and the label says so rather than imply it might."""
        if self.status == self.Status.SENT and self.provider == "mosio":
            return "Sent (Mosio does not report delivery)"
        return self.get_status_display()

    @property
    def is_test(self) -> bool:
        return self.to_user_id is not None

    @property
    def to_phone(self) -> str:
        """The number it goes to: the participant's, or for a test the staff member's own ("" once
        they removed it: the sweep then finds nothing to reconcile, rather than stop)."""
        if self.to_user_id:
            phone = StaffPhone.objects.filter(user_id=self.to_user_id).first()
            return phone.phone if phone else ""
        return self.participant.phone


# Which statuses a message may move to from each status: forward only.
FORWARD: dict[str, set[str]] = {
    Message.Status.QUEUED: {"held", "sending", "skipped", "cancelled", "failed"},
    Message.Status.HELD: {"queued", "skipped", "cancelled"},
    Message.Status.SENDING: {"queued", "unknown", "sent", "failed", "cancelled"},
    # unknown -> queued: the provider confirmed it never received the text (sent again, once).
    Message.Status.UNKNOWN: {"queued", "sent", "delivered", "undelivered", "failed"},
    Message.Status.SENT: {"delivered", "undelivered", "failed"},
    Message.Status.DELIVERED: set(),
    Message.Status.UNDELIVERED: set(),
    Message.Status.FAILED: set(),
    Message.Status.SKIPPED: set(),
    Message.Status.CANCELLED: set(),
}
FINAL_STATUSES = {s for s, nxt in FORWARD.items() if not nxt}


class Attempt(models.Model):
    """Every provider call, written before the call and completed after it."""

    class Outcome(models.TextChoices):
        STARTED = "started", "Started"
        ACCEPTED = "accepted", "Accepted by the provider"
        RETRY = "retry", "Not reached; will retry"
        AMBIGUOUS = "ambiguous", "Outcome unknown"
        FAILED = "failed", "Refused"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.STARTED)
    provider_message_id = models.CharField(max_length=64, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["started_at"]

    def __str__(self) -> str:
        return f"Attempt on message #{self.message_id}: {self.outcome}"


class OptOut(models.Model):
    """The suppression list: a number that texted STOP (or that a provider says unsubscribed).

    Keyed by the phone's keyed fingerprint, per project, so it survives a provider switch and a
    participant re-created by a sync.
    """

    class Source(models.TextChoices):
        KEYWORD = "keyword", "Texted a stop word"
        PROVIDER = "provider", "Provider reported unsubscribed"
        STAFF = "staff", "Set by study staff"

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="opt_outs"
    )
    phone_fingerprint = models.CharField(max_length=64)
    participant = models.ForeignKey(
        "projects.Participant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="opt_outs",
    )
    source = models.CharField(max_length=10, choices=Source.choices)
    detail = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "phone_fingerprint"],
                condition=Q(revoked_at__isnull=True),
                name="one_active_opt_out_per_number",
            )
        ]

    def __str__(self) -> str:
        return f"Opt-out in {self.project_id} ({self.get_source_display()})"


class StaffPhone(models.Model):
    """A staff member's own mobile number, for "Send a test to my phone". It is verified by a
    code texted through a project's provider before any test goes to it; stored encrypted, like
    participants' numbers, and shown by its last four digits only."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_phone"
    )
    phone_encrypted = models.TextField()
    phone_last4 = models.CharField(max_length=4)
    verified_at = models.DateTimeField(null=True, blank=True)
    # The code last texted (a keyed fingerprint, never the code), when, and wrong tries since.
    code_fingerprint = models.CharField(max_length=64, blank=True)
    code_sent_at = models.DateTimeField(null=True, blank=True)
    code_attempts = models.PositiveSmallIntegerField(default=0)

    def __str__(self) -> str:
        return f"Phone …{self.phone_last4} of user {self.user_id}"

    @property
    def phone(self) -> str:
        from projects.crypto import decrypt

        return decrypt(self.phone_encrypted)

    @property
    def masked_phone(self) -> str:
        return f"•••-•••-{self.phone_last4}"


class EarlyReceipt(models.Model):
    """A delivery receipt that came before its text was recorded as sent (the sender records
    accepted texts a moment later, together): kept, and applied by the sweep once the text
    carries the provider's id; dropped after an hour (a text StudyText did not send).
    docs/sending.md, "Recording"."""

    link = models.ForeignKey("projects.ProviderLink", on_delete=models.CASCADE, related_name="+")
    provider_message_id = models.CharField(max_length=64)
    provider_status = models.CharField(max_length=16)
    reason = models.CharField(max_length=32, blank=True)
    code = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["received_at"], name="earlyreceipt_received")]

    def __str__(self) -> str:
        return f"Early receipt {self.provider_status} for {self.provider_message_id}"


class SenderLease(models.Model):
    """Only one sender loop runs at a time (it keeps every link's pace); a dead loop's expires."""

    name = models.CharField(max_length=32, unique=True)
    owner = models.CharField(max_length=64, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Lease {self.name} held by {self.owner or 'nobody'}"


class Reply(models.Model):
    """A text a participant sent us (an inbound SMS), from a provider webhook or the simulator.

    The number is kept only as its keyed fingerprint and last four digits. The body is kept for
    the retention period, like Message.body (outbox.retention_purge). A number that matches no
    participant of the link's project is stored with participant=None: the project's owners see
    it in the inbox by its last 4 digits, administrators in the Django admin; its STOP still goes
    on the suppression list.
    """

    class Keyword(models.TextChoices):
        NONE = "", "Conversation"
        STOP = "stop", "STOP"
        START = "start", "START"
        HELP = "help", "HELP"

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="replies"
    )
    participant = models.ForeignKey(
        "projects.Participant",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replies",
    )
    # The link it arrived through: message ids are unique per provider account, so a reply is
    # deduplicated within its link only (one project cannot pre-claim another's ids).
    provider_link = models.ForeignKey(
        "projects.ProviderLink",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replies",
    )
    provider = models.CharField(max_length=20)
    provider_message_id = models.CharField(max_length=64, blank=True)
    phone_fingerprint = models.CharField(max_length=64, blank=True)
    phone_last4 = models.CharField(max_length=4, blank=True)
    body = models.TextField(blank=True)
    keyword = models.CharField(max_length=8, choices=Keyword.choices, blank=True, default="")
    handled = models.CharField(max_length=200, blank=True, help_text="What StudyText did.")
    received_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Via(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        POLL = "poll", "Poll"
        SIMULATOR = "simulator", "Phone simulator"

    class Flag(models.TextChoices):
        NONE = "", "None"
        POSSIBLE_OPT_OUT = "possible_opt_out", "Possible opt-out, please review"
        UNKNOWN_NUMBER = "unknown_number", "From a number that matches no participant"

    via = models.CharField(max_length=10, choices=Via.choices, default=Via.WEBHOOK)
    # The content key (link, phone fingerprint, body hash, time bucket; inbound.content_key):
    # set when a reply is deduplicated by content (docs/mosio.md, M26), blank otherwise.
    dedup_key = models.CharField(max_length=64, blank=True, default="")
    # The outbound text this reply answers: the participant's last text sent before it.
    answers = models.ForeignKey(
        "messaging.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The team's inbox (docs/compliance.md, "The inbox"): unread until someone marks it read;
    # a flag stays open until an editor reviews it.
    flag = models.CharField(max_length=20, choices=Flag.choices, blank=True, default="")
    read_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    review_note = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "replies"
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["project", "received_at"], name="reply_project_received"),
            models.Index(
                fields=["project", "-received_at"],
                condition=Q(read_at__isnull=True) | (~Q(flag="") & Q(reviewed_at__isnull=True)),
                name="reply_inbox",
            ),
        ]
        constraints = [
            # Idempotency: a provider that retries a webhook does not store the reply twice.
            models.UniqueConstraint(
                fields=["provider_link", "provider", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="one_reply_per_link_message",
            ),
            # The same text through the webhook and the poll (no shared id): stored once.
            models.UniqueConstraint(
                fields=["provider_link", "dedup_key"],
                condition=~Q(dedup_key=""),
                name="one_reply_per_link_content",
            ),
        ]

    def __str__(self) -> str:
        return f"Reply {self.pk} in {self.project_id} ({self.keyword or 'conversation'})"


class TextSurvey(models.Model):
    """A rule of kind "text survey": its REDCap instrument (the rule's ``instrument`` and
    ``event``) asked one question per text. The rule's ``body`` is the intro text. The data
    dictionary read at save is kept (``metadata``), so a conversation never waits for it; the
    fields asked and refused, and the worst-case cost, are what the form showed
    (docs/redcap.md, "Text surveys")."""

    class Start(models.TextChoices):
        AT_ONCE = "at_once", "At once, with the first question"
        WORD = "word", "When the participant replies with the start word"

    rule = models.OneToOneField(MessageRule, on_delete=models.CASCADE, related_name="text_survey")
    closing_text = models.TextField(blank=True)
    invalid_text = models.CharField(max_length=320, blank=True)
    start = models.CharField(max_length=10, choices=Start.choices, default=Start.AT_ONCE)
    start_word = models.CharField(max_length=20, blank=True, default="YES")
    time_limit = models.DurationField(default=datetime.timedelta(hours=24))
    reminder_before = models.DurationField(null=True, blank=True)
    reminder_text = models.CharField(max_length=320, blank=True)
    expiry_text = models.CharField(max_length=320, blank=True)
    max_invalid = models.PositiveSmallIntegerField(default=2)
    metadata = models.JSONField(default=list, blank=True)
    repeating = models.BooleanField(default=False)
    events = models.JSONField(null=True, blank=True)
    label = models.CharField(max_length=200, blank=True)
    askable = models.JSONField(default=list, blank=True)
    refused = models.JSONField(default=list, blank=True)
    cost_texts = models.PositiveIntegerField(default=0)
    cost_segments = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Text survey of rule {self.rule_id}"


class Conversation(models.Model):
    """One participant taking one text survey: the question asked now, the answers so far
    (written to REDCap as they come), and how it ended. Answers are stored as the import
    columns REDCap receives (``answers``: field -> {"value", "codes", "skipped"}; never the
    reply's raw text, which retention blanks with the reply)."""

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting for the start word"
        OPEN = "open", "Answering"
        COMPLETED = "completed", "Completed"
        EXPIRED = "expired", "Expired"
        STOPPED = "stopped", "Stopped (opted out)"
        ENDED = "ended", "Ended: too many invalid answers"

    OPEN_STATES = ("waiting", "open")

    rule = models.ForeignKey(MessageRule, on_delete=models.CASCADE, related_name="conversations")
    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="conversations"
    )
    participant = models.ForeignKey(
        "projects.Participant", on_delete=models.CASCADE, related_name="conversations"
    )
    start_message = models.OneToOneField(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="conversation"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    current_field = models.CharField(max_length=100, blank=True)
    answers = models.JSONField(default=dict, blank=True)
    record_values = models.JSONField(default=dict, blank=True)
    invalid_count = models.PositiveSmallIntegerField(default=0)
    texts = models.PositiveSmallIntegerField(default=0, help_text="Texts queued so far.")
    repeat_instance = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    reminded_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True, help_text="For the team.")
    # Write-back: the fields not yet in REDCap (and whether the completion is owed).
    unwritten = models.JSONField(default=list, blank=True)
    complete_unwritten = models.BooleanField(default=False)
    write_error = models.CharField(max_length=300, blank=True)
    write_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["participant", "state"], name="conversation_participant"),
            models.Index(fields=["state", "expires_at"], name="conversation_due"),
            models.Index(fields=["rule", "state"], name="conversation_rule"),
        ]
        constraints = [
            # One conversation at a time per participant.
            models.UniqueConstraint(
                fields=["participant"],
                condition=Q(state__in=["waiting", "open"]),
                name="one_open_conversation_per_participant",
            )
        ]

    def __str__(self) -> str:
        return f"Conversation #{self.pk} of rule {self.rule_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES


class TriggerState(models.Model):
    """Whether a rule's REDCap logic was true for a record (or one repeat instance of it) when
    last evaluated: a "becomes true" trigger fires on the change from false to true only
    (docs/sending.md, "Triggers"). `fired` counts the times it fired for that key."""

    rule = models.ForeignKey(MessageRule, on_delete=models.CASCADE, related_name="trigger_states")
    participant = models.ForeignKey(
        "projects.Participant", on_delete=models.CASCADE, related_name="+"
    )
    instance = models.CharField(max_length=255, blank=True, default="")
    is_true = models.BooleanField(default=False)
    fired = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "participant", "instance"], name="one_trigger_state_per_key"
            )
        ]

    def __str__(self) -> str:
        return f"Trigger state of rule {self.rule_id} for participant {self.participant_id}"


class TeamAlert(models.Model):
    """One alert to the study team about one record: written once per trigger occurrence (its
    dedup key, like a Message's), then e-mailed (and texted) by a task. The rendered text is not
    kept here: it holds the record's values."""

    project = models.ForeignKey(
        "projects.Project", on_delete=models.CASCADE, related_name="team_alerts"
    )
    rule = models.ForeignKey(MessageRule, on_delete=models.CASCADE, related_name="team_alerts")
    participant = models.ForeignKey(
        "projects.Participant", on_delete=models.CASCADE, related_name="+"
    )
    occurrence = models.CharField(max_length=255)
    dedup_key = models.CharField(max_length=300, unique=True)
    due_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    emails = models.PositiveSmallIntegerField(default=0, help_text="E-mails sent.")
    texts = models.PositiveSmallIntegerField(default=0, help_text="Texts to staff phones.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Team alert #{self.pk} of rule {self.rule_id}"
