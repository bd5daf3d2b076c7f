from django.contrib import admin

from messaging.models import (
    Attempt,
    Message,
    MessageRule,
    OptOut,
    Reply,
    Send,
    SenderLease,
    StaffPhone,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Texts are created and moved by the services (and audited); the admin only reads them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MessageRule)
class MessageRuleAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "schedule", "status", "updated_at"]
    list_filter = ["kind", "schedule", "status"]
    search_fields = ["name", "project__title"]
    readonly_fields = ["materialized_through", "created_by", "created_at", "updated_at"]


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


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["pk", "project", "participant", "kind", "status", "due_at", "sent_at"]
    list_filter = ["status", "kind", "provider"]
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


@admin.register(Reply)
class ReplyAdmin(ReadOnlyAdmin):
    """Texts participants sent. A reply from a number that matches no participant (participant
    empty) is shown to server administrators here and nowhere else."""

    list_display = ["received_at", "project", "participant", "phone_last4", "keyword", "handled"]
    list_filter = ["keyword", "provider", ("participant", admin.EmptyFieldListFilter)]
    exclude = ["phone_fingerprint"]
