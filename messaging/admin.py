from django.contrib import admin

from messaging.gateways import GATEWAYS
from messaging.models import (
    Attempt,
    Conversation,
    EarlyReceipt,
    Message,
    MessageRule,
    OptOut,
    Reply,
    Send,
    SenderLease,
    StaffPhone,
    TeamAlert,
    TextSurvey,
    TriggerState,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Texts are created and moved by the services (and audited); the admin only reads them.
    Nobody deletes them here: the outbox rows and their attempts are the no-duplicate guarantee,
    replies and opt-outs the record of what participants asked (portal/admin_permissions.py)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(MessageRule)
class MessageRuleAdmin(ReadOnlyAdmin):
    """Rules are edited on the project's Messages pages, where they are checked and audited."""

    list_display = ["name", "project", "kind", "schedule", "status", "updated_at"]
    list_filter = ["kind", "schedule", "status"]
    search_fields = ["name", "project__title"]
    exclude = ["body"]


@admin.register(Send)
class SendAdmin(ReadOnlyAdmin):
    list_display = ["pk", "project", "rule", "total", "created_by", "created_at"]


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ["started_at", "finished_at", "outcome", "provider_message_id", "error_code", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class FixedChoicesFilter(admin.SimpleListFilter):
    """A filter whose choices are known in advance: Django's default for a field without
    choices lists them with a SELECT DISTINCT over the whole table, on every page view."""

    choices_list: list[tuple[str, str]] = []

    def lookups(self, request, model_admin):
        return self.choices_list

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.parameter_name: value}) if value else queryset


class KindFilter(FixedChoicesFilter):
    title = parameter_name = "kind"
    choices_list = [
        *MessageRule.Kind.choices,
        ("adhoc", "Ad hoc"),
        ("help", "HELP reply"),
        ("survey", "Text survey question"),
        ("survey_notice", "Text survey reminder or expiry"),
    ]


class ProviderFilter(FixedChoicesFilter):
    title = parameter_name = "provider"
    choices_list = [(slug, slug) for slug in GATEWAYS]


class LargeListAdmin(ReadOnlyAdmin):
    """The lists of texts and replies hold millions of rows: ordered by the primary key (no
    sort), filtered by fixed choices (no DISTINCT scan), counted once, and their projects and
    participants fetched for the page's rows only (a join would let the planner start from the
    projects and sort every row)."""

    list_select_related = ()  # not False: Django would then join every foreign key shown
    ordering = ["-pk"]
    show_full_result_count = False

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("project", "participant")


@admin.register(Message)
class MessageAdmin(LargeListAdmin):
    list_display = ["pk", "project", "participant", "kind", "status", "due_at", "sent_at"]
    list_filter = ["status", KindFilter, ProviderFilter]
    search_fields = ["participant__record_id", "provider_message_id", "project__title"]
    exclude = ["body", "adhoc_body"]  # message text stays in the portal's own views
    inlines = [AttemptInline]


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyAdmin):
    list_display = ["message", "started_at", "outcome", "error_code"]
    list_filter = ["outcome"]


@admin.register(OptOut)
class OptOutAdmin(ReadOnlyAdmin):
    list_display = ["project", "participant", "source", "created_at", "revoked_at"]
    list_filter = ["source"]
    exclude = ["phone_fingerprint"]


@admin.register(StaffPhone)
class StaffPhoneAdmin(ReadOnlyAdmin):
    """Staff members' own phones for test texts: added and confirmed by them (a texted code),
    shown by their last four digits only."""

    list_display = ["user", "phone_last4", "verified_at"]
    fields = ["user", "phone_last4", "verified_at", "code_sent_at", "code_attempts"]
    search_fields = ["user__email"]


@admin.register(SenderLease)
class SenderLeaseAdmin(ReadOnlyAdmin):
    list_display = ["name", "owner", "expires_at"]


@admin.register(EarlyReceipt)
class EarlyReceiptAdmin(ReadOnlyAdmin):
    """Delivery receipts kept until their texts are recorded (the sweep applies them)."""

    list_display = ["received_at", "link", "provider_status", "code"]


@admin.register(Reply)
class ReplyAdmin(LargeListAdmin):
    """Texts participants sent. A reply from a number that matches no participant (participant
    empty) is shown to server administrators here and nowhere else."""

    list_display = ["received_at", "project", "participant", "phone_last4", "keyword", "handled"]
    list_filter = ["keyword", ProviderFilter, ("participant", admin.EmptyFieldListFilter)]
    exclude = ["phone_fingerprint"]


@admin.register(TextSurvey)
class TextSurveyAdmin(ReadOnlyAdmin):
    """A text survey's settings; edited on the rule's form, where they are checked."""

    list_display = ["rule", "start", "time_limit", "max_invalid", "cost_texts"]
    exclude = ["metadata"]


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    """Text-survey conversations; their answers are never shown in the lists."""

    list_display = ["pk", "project", "rule", "participant", "state", "started_at", "finished_at"]
    list_filter = ["state"]
    exclude = ["answers", "record_values"]


@admin.register(TeamAlert)
class TeamAlertAdmin(ReadOnlyAdmin):
    """Alerts to a study team: when and how many e-mails and texts; never the text itself."""

    list_display = ["created_at", "project", "rule", "participant", "sent_at", "emails", "texts"]
    list_select_related = ["project", "rule", "participant"]


@admin.register(TriggerState)
class TriggerStateAdmin(ReadOnlyAdmin):
    """Whether a rule's "logic becomes true" trigger was true for a record at the last look."""

    list_display = ["rule", "participant", "instance", "is_true", "fired", "changed_at"]
    list_select_related = ["rule", "participant"]
