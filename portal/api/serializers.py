"""What the API answers (output serializers) and takes (strict input serializers). Writes never
happen here: views hand validated input to the same services the web pages call."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.models import Account, CreditPackRequest, Plan, UsagePeriod
from messaging.models import Attempt, Message, MessageRule, Reply, Send
from portal.api import fields
from portal.api.base import MAX_ID, StrictSerializer
from portal.models import OnboardingComment, OnboardingRequest
from projects.models import Participant, Project, RedcapInstance


def masked_phone(last4: str) -> str:
    """A number as the portal shows it: the last 4 digits only."""
    return f"•••-•••-{last4}" if last4 else ""


# --- Small shared shapes --------------------------------------------------------------------
class RefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class ParticipantRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    record_id = serializers.CharField()


class PlanOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["id", "name", "project_limit", "monthly_messages", "pack_size"]


class PeriodOutputSerializer(serializers.ModelSerializer):
    """One month of an account's usage, in quota units (messages, or segments if the site
    counts segments)."""

    id = serializers.IntegerField(allow_null=True, help_text="Null for a month with no use yet.")
    available = serializers.IntegerField(help_text="Units left: included + credits - used.")
    percent_of_included = serializers.IntegerField()

    class Meta:
        model = UsagePeriod
        fields = [
            "id",
            "start",
            "end",
            "included",
            "credits",
            "used",
            "available",
            "percent_of_included",
            "closed_at",
        ]


# --- Projects -------------------------------------------------------------------------------
class ProjectOutputSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.name", help_text="The billing account.")
    account_id = serializers.IntegerField()
    redcap_instance = serializers.CharField(source="redcap_instance.name")

    class Meta:
        model = Project
        fields = [
            "id",
            "title",
            "status",
            "redcap_instance",
            "redcap_project_id",
            "account",
            "account_id",
            "pi_name",
            "irb_protocol",
            "time_zone",
            "created_at",
        ]


class RedcapLinkStatusSerializer(serializers.Serializer):
    linked = serializers.BooleanField()
    last_checked_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)


class ProviderLinkStatusSerializer(serializers.Serializer):
    linked = serializers.BooleanField()
    provider = serializers.CharField(allow_blank=True, help_text="mosio, twilio or sandbox.")
    paused = serializers.BooleanField(help_text="Texts wait (e.g. the credentials were refused).")
    paused_reason = serializers.CharField(allow_blank=True)
    rate_per_second = serializers.FloatField(allow_null=True)
    last_checked_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)


class LinksSerializer(serializers.Serializer):
    redcap = RedcapLinkStatusSerializer()
    provider = ProviderLinkStatusSerializer()


class SendingHoursSerializer(serializers.Serializer):
    start = fields.LocalTime(help_text="Participant's local time.")
    end = fields.LocalTime()
    days = serializers.ListField(child=serializers.IntegerField(), help_text="0 = Monday.")


class ProjectUsageSerializer(PeriodOutputSerializer):
    project_units = serializers.IntegerField(help_text="Units this project used this month.")

    class Meta(PeriodOutputSerializer.Meta):
        fields = [*PeriodOutputSerializer.Meta.fields, "project_units"]


class SetupSerializer(serializers.Serializer):
    redcap = serializers.BooleanField()
    provider = serializers.BooleanField()
    mapping = serializers.BooleanField()
    synced = serializers.BooleanField()


class ProjectDetailOutputSerializer(ProjectOutputSerializer):
    role = serializers.CharField(help_text="Your role: owner, editor or viewer.")
    sending_hours = serializers.SerializerMethodField()
    links = LinksSerializer()
    setup = SetupSerializer()
    plan = PlanOutputSerializer(source="account.plan")
    usage = ProjectUsageSerializer(
        source="month_usage", help_text="The billing account's current month."
    )

    class Meta(ProjectOutputSerializer.Meta):
        fields = [
            *ProjectOutputSerializer.Meta.fields,
            "status_reason",
            "role",
            "sending_hours",
            "links",
            "setup",
            "plan",
            "usage",
        ]

    @extend_schema_field(SendingHoursSerializer)
    def get_sending_hours(self, project: Project) -> dict:
        return SendingHoursSerializer(
            {
                "start": project.send_window_start,
                "end": project.send_window_end,
                "days": list(project.send_days or []),
            }
        ).data


# --- Participants ---------------------------------------------------------------------------
PARTICIPANT_STATUSES = [
    ("ready", "Ready: texts may go out"),
    ("not_usable", "Not usable: no valid number, no consent or an unknown time zone"),
    ("withdrawn", "Withdrawn from the study"),
    ("opted_out", "Opted out (STOP, the provider, study staff or REDCap)"),
    ("gone", "No longer in REDCap"),
]


def participant_status(p: Participant) -> str:
    if not p.in_redcap:
        return "gone"
    if p.withdrawn:
        return "withdrawn"
    if p.redcap_opted_out or getattr(p, "suppressed", False):
        return "opted_out"
    if p.issue or p.number_invalid or not p.consented:
        return "not_usable"
    return "ready"


class ParticipantOutputSerializer(serializers.ModelSerializer):
    phone = serializers.SerializerMethodField(help_text="Masked: only the last 4 digits show.")
    status = serializers.SerializerMethodField()
    opted_out_in_redcap = serializers.BooleanField(source="redcap_opted_out")
    suppressed = serializers.BooleanField(
        help_text="The number is on the project's opt-out list (STOP, provider or staff)."
    )

    class Meta:
        model = Participant
        fields = [
            "id",
            "record_id",
            "phone",
            "phone_last4",
            "status",
            "issue",
            "issue_detail",
            "consented",
            "withdrawn",
            "opted_out_in_redcap",
            "suppressed",
            "number_invalid",
            "in_redcap",
            "time_zone",
            "synced_at",
        ]

    def get_phone(self, participant: Participant) -> str:
        return masked_phone(participant.phone_last4)

    @extend_schema_field(serializers.ChoiceField(choices=PARTICIPANT_STATUSES))
    def get_status(self, participant: Participant) -> str:
        return participant_status(participant)


class ConsentEventSerializer(serializers.Serializer):
    at = serializers.DateTimeField(source="created_at")
    event = serializers.SerializerMethodField(
        help_text="opted_out, opted_in, or what was written to REDCap."
    )
    by_staff = serializers.SerializerMethodField(
        help_text="True when a team member did it (false: the participant or the provider)."
    )
    detail = serializers.CharField(source="message")

    def get_event(self, event) -> str:
        return event.action.removeprefix("participant.")

    def get_by_staff(self, event) -> bool:
        return event.actor_id is not None


class ParticipantDetailOutputSerializer(ParticipantOutputSerializer):
    consent_timeline = ConsentEventSerializer(many=True, source="consent_events")

    class Meta(ParticipantOutputSerializer.Meta):
        fields = [*ParticipantOutputSerializer.Meta.fields, "consent_timeline"]


class OptOutInputSerializer(StrictSerializer):
    reason = fields.Text(
        max_length=200,
        allow_blank=True,
        help_text="Why, for the audit log (for example: asked by phone on March 4).",
    )


class OptOutOutputSerializer(serializers.Serializer):
    participant = ParticipantOutputSerializer()
    source = serializers.CharField(help_text="keyword, provider or staff.")
    reason = serializers.CharField(source="detail")
    opted_out_at = serializers.DateTimeField(source="created_at")
    opted_in_at = serializers.DateTimeField(source="revoked_at", allow_null=True)


class AdhocInputSerializer(StrictSerializer):
    body = fields.Text(
        max_length=1600,
        allow_blank=True,
        help_text="The text. It may pipe [first_name] and mapped dates; survey links belong in "
        "a survey invitation.",
    )


# --- Message rules --------------------------------------------------------------------------
RULE_OUTPUT_FIELDS = [
    "id",
    "name",
    "kind",
    "status",
    "body",
    "instrument",
    "event",
    "recipients",
    "filter_logic",
    "record_ids",
    "schedule",
    "schedule_summary",
    "send_time",
    "once_date",
    "recur_days",
    "start_date",
    "until_date",
    "max_occurrences",
    "date_field",
    "offset_days",
    "stop_when_complete",
    "max_sends",
    "trigger",
    "offset",
    "offset_unit",
    "trigger_logic",
    "logic_repeat",
    "anchor_rule",
    "repeat_every_days",
    "repeat_count",
    "notify_team",
    "alert_members",
    "alert_emails",
    "alert_sms",
    "created_at",
    "updated_at",
]


class RuleOutputSerializer(serializers.ModelSerializer):
    send_time = fields.LocalTime(help_text="Participant's local time of day.")
    record_ids = serializers.ListField(child=serializers.CharField())
    recur_days = serializers.ListField(child=serializers.IntegerField(), help_text="0 = Monday.")
    schedule_summary = serializers.CharField(help_text="The schedule in words.")
    anchor_rule = serializers.IntegerField(
        source="anchor_rule_id",
        allow_null=True,
        help_text="Reminders every few days after an invitation: the invitation rule's id.",
    )
    alert_members = serializers.SerializerMethodField(
        help_text="Alerts to the team: the ids of the project members who receive it."
    )
    alert_emails = serializers.ListField(
        child=serializers.CharField(), help_text="Alerts to the team: other addresses e-mailed."
    )

    class Meta:
        model = MessageRule
        fields = RULE_OUTPUT_FIELDS

    def get_alert_members(self, rule: MessageRule) -> list[int]:
        return sorted(user.pk for user in rule.alert_members.all())


class RuleListOutputSerializer(RuleOutputSerializer):
    """A rule with its texts counted by outcome."""

    sent_count = serializers.IntegerField()
    pending_count = serializers.IntegerField(help_text="Queued, held or sending.")
    held_count = serializers.IntegerField(help_text="Held: the account's quota is used up.")
    failed_count = serializers.IntegerField()
    unconfirmed_count = serializers.IntegerField()

    class Meta(RuleOutputSerializer.Meta):
        fields = [
            *RULE_OUTPUT_FIELDS,
            "sent_count",
            "pending_count",
            "held_count",
            "failed_count",
            "unconfirmed_count",
        ]


class RuleInputSerializer(StrictSerializer):
    """The fields of a message rule. Every field is optional here: the rules service checks the
    whole rule (as the web form does) and names each field it refuses."""

    kind = fields.Choice(choices=MessageRule.Kind.choices, required=False)
    name = fields.Text(max_length=120, allow_blank=True, required=False)
    body = fields.Text(max_length=5000, allow_blank=True, required=False)
    instrument = fields.Text(max_length=100, allow_blank=True, required=False)
    event = fields.Text(max_length=100, allow_blank=True, required=False)
    recipients = fields.Choice(choices=MessageRule.Recipients.choices, required=False)
    filter_logic = fields.Text(max_length=5000, allow_blank=True, required=False)
    record_ids = serializers.ListField(
        child=fields.Text(max_length=100), max_length=5000, required=False
    )
    schedule = fields.Choice(choices=MessageRule.Schedule.choices, required=False)
    send_time = fields.LocalTime(required=False, help_text="Participant's local time, HH:MM.")
    once_date = fields.Date(allow_null=True, required=False)
    recur_days = serializers.ListField(
        child=fields.Integer(min_value=0, max_value=6),
        max_length=7,
        required=False,
        help_text="Weekdays, 0 = Monday; empty: every day.",
    )
    start_date = fields.Date(allow_null=True, required=False)
    until_date = fields.Date(allow_null=True, required=False)
    max_occurrences = fields.Integer(
        min_value=1, max_value=100_000, allow_null=True, required=False
    )
    date_field = fields.Text(max_length=100, allow_blank=True, required=False)
    offset_days = fields.Integer(
        min_value=-3650,
        max_value=3650,
        required=False,
        error_messages={
            "min_value": "Use an offset of at most 3,650 days.",
            "max_value": "Use an offset of at most 3,650 days.",
        },
    )
    stop_when_complete = fields.Boolean(required=False)
    max_sends = fields.Integer(
        min_value=1,
        max_value=10_000,
        allow_null=True,
        required=False,
        error_messages={"min_value": "Use a number of texts of at least 1."},
    )
    # Triggers and alerts to the team (docs/sending.md, "Triggers"; "Alerts to the study team").
    trigger = fields.Choice(
        choices=MessageRule.Trigger.choices,
        required=False,
        help_text="What sends the text. Without it, `schedule` names the trigger (the first four).",
    )
    offset = fields.Integer(
        min_value=-100_000,
        max_value=100_000,
        required=False,
        help_text="Relative and follow-up triggers: how long after (negative: before), in "
        "`offset_unit`.",
    )
    offset_unit = fields.Choice(choices=MessageRule.OffsetUnit.choices, required=False)
    trigger_logic = fields.Text(
        max_length=5000,
        allow_blank=True,
        required=False,
        help_text="Trigger `logic`: the REDCap logic whose becoming true sends the text.",
    )
    logic_repeat = fields.Choice(choices=MessageRule.LogicRepeat.choices, required=False)
    anchor_rule = fields.Integer(
        min_value=1,
        max_value=MAX_ID,
        allow_null=True,
        required=False,
        help_text="Trigger `invitation`: the id of the survey invitation the reminders follow.",
    )
    repeat_every_days = fields.Integer(min_value=1, max_value=365, allow_null=True, required=False)
    repeat_count = fields.Integer(min_value=1, max_value=50, allow_null=True, required=False)
    notify_team = fields.Boolean(
        required=False, help_text="Alert the study team instead of texting the participant."
    )
    alert_members = serializers.ListField(
        child=fields.Integer(min_value=1, max_value=MAX_ID),
        max_length=500,
        required=False,
        help_text="The user ids of the project members the alert e-mails.",
    )
    alert_emails = serializers.ListField(
        child=fields.Text(max_length=254), max_length=50, required=False
    )
    alert_sms = fields.Boolean(
        required=False, help_text="Also text the members' own verified phones (counts as texts)."
    )


# --- Messages, sends, replies ---------------------------------------------------------------
class AttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "started_at",
            "finished_at",
            "outcome",
            "provider_message_id",
            "error_code",
            "error",
        ]


class MessageOutputSerializer(serializers.ModelSerializer):
    participant = serializers.SerializerMethodField()
    rule = serializers.SerializerMethodField()
    send_id = serializers.IntegerField(allow_null=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "participant",
            "rule",
            "send_id",
            "kind",
            "status",
            "due_at",
            "not_before",
            "sent_at",
            "delivered_at",
            "segments",
            "encoding",
            "units",
            "attempts",
            "error_code",
            "error",
            "created_at",
        ]

    @extend_schema_field(ParticipantRefSerializer(allow_null=True))
    def get_participant(self, message: Message) -> dict | None:
        p = message.participant if message.participant_id else None
        return {"id": p.pk, "record_id": p.record_id} if p is not None else None

    @extend_schema_field(RefSerializer(allow_null=True))
    def get_rule(self, message: Message) -> dict | None:
        r = message.rule if message.rule_id else None
        return {"id": r.pk, "name": r.name} if r is not None else None


class DeliverySerializer(serializers.Serializer):
    """What the provider's delivery receipts said (they move the status forward only)."""

    status = serializers.CharField()
    provider = serializers.CharField(allow_blank=True)
    provider_message_id = serializers.CharField(allow_blank=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    delivered_at = serializers.DateTimeField(allow_null=True)
    error_code = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)


class MessageDetailOutputSerializer(MessageOutputSerializer):
    body = serializers.SerializerMethodField(
        help_text="The text as sent (an ad-hoc text: as written). Blank after the retention "
        "period, or before a scheduled text is released."
    )
    attempt_log = AttemptOutputSerializer(many=True, help_text="Every provider call.")
    delivery = DeliverySerializer(source="*")

    class Meta(MessageOutputSerializer.Meta):
        fields = [*MessageOutputSerializer.Meta.fields, "body", "attempt_log", "delivery"]

    def get_body(self, message: Message) -> str:
        return message.body or message.adhoc_body


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    queued = serializers.IntegerField(help_text="Waiting to go out, or being sent.")
    held = serializers.IntegerField(help_text="Held: over quota; they go when credits arrive.")
    sent = serializers.IntegerField(help_text="Sent or delivered.")
    delivered = serializers.IntegerField()
    failed = serializers.IntegerField()
    unknown = serializers.IntegerField(help_text="Unconfirmed: being reconciled.")
    skipped = serializers.IntegerField(help_text="Skipped or cancelled.")
    done_count = serializers.IntegerField()
    percent = serializers.IntegerField()
    done = serializers.BooleanField(help_text="Nothing is queued or sending any more.")


class SendOutputSerializer(serializers.ModelSerializer):
    rule = serializers.SerializerMethodField()
    progress = ProgressSerializer()

    class Meta:
        model = Send
        fields = ["id", "rule", "created_at", "total", "progress"]

    @extend_schema_field(RefSerializer(allow_null=True))
    def get_rule(self, send: Send) -> dict | None:
        return {"id": send.rule.pk, "name": send.rule.name} if send.rule_id else None


class SendStartedSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The send's id: follow it at `progress`.")
    total = serializers.IntegerField(help_text="Texts queued.")
    progress = serializers.CharField(help_text="The address of the send's progress.")


class ReplyOutputSerializer(serializers.ModelSerializer):
    participant = ParticipantRefSerializer()
    phone = serializers.SerializerMethodField(help_text="Masked: only the last 4 digits show.")

    class Meta:
        model = Reply
        fields = [
            "id",
            "participant",
            "phone",
            "phone_last4",
            "body",
            "keyword",
            "handled",
            "provider",
            "received_at",
        ]

    def get_phone(self, reply: Reply) -> str:
        return masked_phone(reply.phone_last4)


# --- The team's inbox (docs/compliance.md, "The inbox") -------------------------------------
class AnsweredMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule = RefSerializer(allow_null=True, help_text="The rule that sent it (null: ad hoc).")
    kind = serializers.CharField()
    sent_at = serializers.DateTimeField(allow_null=True)


class InboxReplyOutputSerializer(serializers.ModelSerializer):
    participant = ParticipantRefSerializer(
        allow_null=True,
        help_text="Null: a number that matches no participant (shown to owners only).",
    )
    phone = serializers.SerializerMethodField(help_text="Masked: only the last 4 digits show.")
    answers = AnsweredMessageSerializer(
        allow_null=True, help_text="The text this reply answers (the last one sent before it)."
    )
    unread = serializers.SerializerMethodField()
    flag_open = serializers.SerializerMethodField(help_text="Flagged and not yet reviewed.")

    class Meta:
        model = Reply
        fields = [
            "id",
            "participant",
            "phone",
            "phone_last4",
            "body",
            "keyword",
            "handled",
            "flag",
            "unread",
            "flag_open",
            "read_at",
            "reviewed_at",
            "review_note",
            "via",
            "answers",
            "received_at",
        ]

    def get_phone(self, reply: Reply) -> str:
        return masked_phone(reply.phone_last4)

    def get_unread(self, reply: Reply) -> bool:
        return reply.read_at is None

    def get_flag_open(self, reply: Reply) -> bool:
        return bool(reply.flag) and reply.reviewed_at is None


class ReviewInputSerializer(StrictSerializer):
    note = fields.Text(
        max_length=200,
        allow_blank=True,
        required=False,
        help_text="Optional: what the team decided (kept in the audit log).",
    )


# --- Text-survey results (docs/redcap.md, "Text surveys") -----------------------------------
class ChoiceCountSerializer(serializers.Serializer):
    label = serializers.CharField()
    count = serializers.IntegerField()


class QuestionResultSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The REDCap field.")
    label = serializers.CharField()
    answered = serializers.IntegerField()
    skipped = serializers.IntegerField()
    counts = ChoiceCountSerializer(
        many=True, help_text="For questions with choices: how many chose each (else empty)."
    )


class SurveyResultsOutputSerializer(serializers.Serializer):
    rule = RefSerializer()
    started = serializers.IntegerField(help_text="Conversations started.")
    completed = serializers.IntegerField()
    by_state = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Conversations by state: waiting, open, completed, expired, stopped, ended.",
    )
    completion_rate = serializers.IntegerField(
        allow_null=True, help_text="Percent of those started (null before any started)."
    )
    median_minutes = serializers.FloatField(
        allow_null=True, help_text="Median time to complete, in minutes (null before any)."
    )
    median_time = serializers.CharField(help_text="The same in words (empty before any).")
    questions = QuestionResultSerializer(many=True)


# --- Billing accounts -----------------------------------------------------------------------
class AccountOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="account.pk")
    name = serializers.CharField(source="account.name")
    role = serializers.CharField(help_text="owner or member.")
    time_zone = serializers.CharField(source="account.time_zone")
    plan = PlanOutputSerializer(source="account.plan")
    active_projects = serializers.IntegerField()
    usage = PeriodOutputSerializer(source="period", help_text="This month.")


class ProjectionSerializer(serializers.Serializer):
    pace = serializers.FloatField(help_text="Units a day so far.")
    projected = serializers.IntegerField(help_text="Units by the month's end at that pace.")
    included_runs_out = serializers.DateField(allow_null=True)
    quota_runs_out = serializers.DateField(allow_null=True)
    overrun = serializers.IntegerField(help_text="Projected units beyond included + credits.")


class DayUnitsSerializer(serializers.Serializer):
    day = serializers.DateField()
    units = serializers.IntegerField()


class ProjectUnitsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    units = serializers.IntegerField()


class AccountUsageOutputSerializer(serializers.Serializer):
    account = RefSerializer()
    unit = serializers.ChoiceField(choices=["message", "segment"])
    period = PeriodOutputSerializer()
    projection = ProjectionSerializer(allow_null=True)
    days = DayUnitsSerializer(many=True)
    projects = ProjectUnitsSerializer(many=True)


class CreditPackRequestOutputSerializer(serializers.ModelSerializer):
    requested_by = serializers.CharField(source="requested_by.email")

    class Meta:
        model = CreditPackRequest
        fields = [
            "id",
            "packs",
            "pack_size",
            "units",
            "note",
            "status",
            "requested_by",
            "requested_at",
            "decided_at",
            "decision_note",
        ]


class CreditPackRequestInputSerializer(StrictSerializer):
    packs = fields.Integer(min_value=1, max_value=100, help_text="How many packs (1 to 100).")
    note = fields.Text(max_length=2000, allow_blank=True, required=False)


# --- Onboarding requests --------------------------------------------------------------------
class OnboardingRequestOutputSerializer(serializers.ModelSerializer):
    redcap_instance = serializers.CharField(source="redcap_instance.name")
    redcap_instance_id = serializers.IntegerField()
    billing_account_id = serializers.IntegerField(allow_null=True)
    new_account_plan_id = serializers.IntegerField(allow_null=True)
    message_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=OnboardingRequest.MessageKind.choices)
    )

    class Meta:
        model = OnboardingRequest
        fields = [
            "id",
            "status",
            "redcap_instance",
            "redcap_instance_id",
            "redcap_project_id",
            "project_title",
            "pi_name",
            "pi_email",
            "irb_protocol",
            "irb_status",
            "summary",
            "expected_participants",
            "expected_messages_per_month",
            "message_kinds",
            "billing_account_id",
            "new_account_name",
            "new_account_plan_id",
            "new_account_time_zone",
            "attest_no_phi",
            "attest_consent",
            "created_at",
            "submitted_at",
            "decided_at",
            "decision_note",
            "project",
        ]


class OnboardingRequestInputSerializer(StrictSerializer):
    """A request's fields, as on the web form. A draft may be incomplete; submitting checks
    that everything is filled in and names what is missing."""

    redcap_instance_id = fields.ObjectId(
        source="redcap_instance",
        queryset=RedcapInstance.objects.all(),
        error_messages={"does_not_exist": "That REDCap server is not on the administrators' list."},
    )
    redcap_project_id = fields.Integer(
        min_value=1,
        error_messages={
            "min_value": "The REDCap project id is a whole number greater than zero, such as 1234."
        },
    )
    project_title = fields.Text(max_length=200)
    pi_name = fields.Text(max_length=200, allow_blank=True, required=False)
    pi_email = fields.Email(max_length=254, allow_blank=True, required=False)
    irb_protocol = fields.Text(max_length=100, allow_blank=True, required=False)
    irb_status = fields.Choice(
        choices=OnboardingRequest.IrbStatus.choices, allow_blank=True, required=False
    )
    summary = fields.Text(max_length=5000, allow_blank=True, required=False)
    expected_participants = fields.Integer(min_value=1, allow_null=True, required=False)
    expected_messages_per_month = fields.Integer(min_value=1, allow_null=True, required=False)
    message_kinds = serializers.ListField(
        child=fields.Choice(choices=OnboardingRequest.MessageKind.choices),
        max_length=len(OnboardingRequest.MessageKind.choices),
        required=False,
    )
    billing_account_id = fields.ObjectId(
        source="billing_account",
        queryset=Account.objects.none(),
        allow_null=True,
        required=False,
        error_messages={
            "does_not_exist": "You can only bill a project to an account you belong to."
        },
    )
    new_account_name = fields.Text(max_length=200, allow_blank=True, required=False)
    new_account_plan_id = fields.ObjectId(
        source="new_account_plan",
        queryset=Plan.objects.none(),
        allow_null=True,
        required=False,
        error_messages={"does_not_exist": "Choose one of the plans offered."},
    )
    new_account_time_zone = fields.Text(
        max_length=64, allow_blank=True, required=False, help_text="Such as America/Chicago."
    )
    attest_no_phi = fields.Boolean(
        required=False, help_text="Message text will contain no protected health information."
    )
    attest_consent = fields.Boolean(
        required=False, help_text="Participants' consent to receive texts is collected."
    )

    def __init__(self, *args, **kwargs):
        from billing.selectors import accounts_for_user, plans_offered

        super().__init__(*args, **kwargs)
        request = self.context.get("request")
        user = getattr(request, "user", None)
        self.fields["billing_account_id"].queryset = (
            accounts_for_user(user=user)
            if user is not None and user.is_authenticated
            else Account.objects.none()
        )
        self.fields["new_account_plan_id"].queryset = plans_offered()


class OnboardingRequestCreateSerializer(OnboardingRequestInputSerializer):
    submit = fields.Boolean(
        required=False, default=False, help_text="Submit at once instead of saving a draft."
    )


class OnboardingCommentOutputSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = OnboardingComment
        fields = ["id", "author", "body", "created_at"]

    def get_author(self, comment: OnboardingComment) -> str:
        return str(comment.author)


class OnboardingCommentInputSerializer(StrictSerializer):
    body = fields.Text(max_length=5000, allow_blank=True)


# --- The API's own pages --------------------------------------------------------------------
class HealthCheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    detail = serializers.CharField()


class HealthOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok", "failing"])
    problems = serializers.ListField(child=serializers.CharField())
    database = HealthCheckSerializer()
    broker = HealthCheckSerializer()
    oldest_waiting_task_seconds = serializers.FloatField(allow_null=True)
    dispatcher_last_ran_seconds = serializers.FloatField(allow_null=True)
    sender_lease_renewed_seconds = serializers.FloatField(allow_null=True)
    oldest_ready_text_seconds = serializers.FloatField(
        allow_null=True, help_text="How long the longest-waiting text ready to go has waited."
    )
    checked_at = serializers.DateTimeField()


class RootOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    documentation = serializers.DictField(child=serializers.CharField())
    endpoints = serializers.DictField(child=serializers.CharField())
