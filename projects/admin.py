from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models

from projects import netguard
from projects.models import (
    ConsentEvent,
    DataEntryTrigger,
    FieldMapping,
    Membership,
    Participant,
    Project,
    ProjectInvitation,
    ProviderLink,
    RecordRefresh,
    RedcapInstance,
    RedcapLink,
    SyncRun,
)


class RedcapUrlField(forms.URLField):
    """Django's URL check answers "Enter a valid URL." to an address such as
    https://2130706433/; say instead why the portal refuses it (projects/netguard.py)."""

    def run_validators(self, value):
        try:
            netguard.check_redcap_url(value)
        except ValueError as exc:
            if "unusual form" in str(exc):
                raise ValidationError(str(exc), code="invalid") from None
        super().run_validators(value)


@admin.register(RedcapInstance)
class RedcapInstanceAdmin(admin.ModelAdmin):
    list_display = ["name", "api_url", "is_active"]
    # A REDCap API is reached over HTTPS; say so, rather than rely on Django's changing default.
    formfield_overrides = {
        models.URLField: {"assume_scheme": "https", "form_class": RedcapUrlField}
    }


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["title", "account", "redcap_instance", "redcap_project_id", "status"]
    list_filter = ["status", "redcap_instance"]
    search_fields = ["title", "pi_name", "irb_protocol"]
    inlines = [MembershipInline]
    # Pausing, archiving and suspending go through the project's Settings page, which checks the
    # account's project slots, asks for a reason and audits the change. The billing account is
    # read-only for the same reason: a move goes through the Settings page's "Move to this
    # account" (project_move_account: the target plan's project limit, audited), and projects
    # are created only by approving an onboarding request (which takes a slot the same way), so
    # there is no "add" here either. The sending hours and their bounds likewise: the Settings
    # page asks for the calling-hours confirmation and recomputes the waiting texts' times.
    readonly_fields = [
        "account",
        "status",
        "status_reason",
        "status_changed_at",
        "status_changed_by",
        "send_window_start",
        "send_window_end",
        "send_days",
        "send_bounds_start",
        "send_bounds_end",
        "send_bounds_days",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting a project would take its participants, outbox and replies with it.
        return False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role"]
    search_fields = ["project__title", "user__email"]


@admin.register(ProjectInvitation)
class ProjectInvitationAdmin(admin.ModelAdmin):
    """Invitations are sent from the project's Team page (with their e-mail); here they can be
    seen and withdrawn."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    list_display = ["project", "email", "role", "invited_by", "created_at"]


class NoSecretsAdmin(admin.ModelAdmin):
    """Credentials, participants and syncs are set in the portal (where they are checked and
    audited); here they are read-only, and nobody deletes them (a participant's row carries the
    outbox's no-duplicate guarantee; unlinking is the project owner's, audited)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RedcapLink)
class RedcapLinkAdmin(NoSecretsAdmin):
    list_display = ["project", "masked_token", "redcap_version", "linked_by", "linked_at"]
    fields = [
        "project",
        "masked_token",
        "redcap_version",
        "redcap_project_title",
        "is_longitudinal",
        "linked_by",
        "linked_at",
        "last_checked_at",
        "last_error",
    ]
    readonly_fields = fields

    @admin.display(description="Token")
    def masked_token(self, obj):
        return f"••••{obj.token_last4}"


@admin.register(ProviderLink)
class ProviderLinkAdmin(NoSecretsAdmin):
    list_display = ["project", "provider", "rate_per_second", "is_paused", "linked_at"]
    list_filter = ["provider", "is_paused"]
    fields = [
        "project",
        "provider",
        "display",
        "rate_per_second",
        "is_paused",
        "paused_reason",
        "linked_by",
        "linked_at",
        "last_checked_at",
        "last_error",
        "provider_answers_keywords",
        "poll_cursor",
        "polled_at",
        "poll_next_at",
        "poll_failures",
        "poll_error",
    ]
    readonly_fields = fields


@admin.register(ConsentEvent)
class ConsentEventAdmin(NoSecretsAdmin):
    """The consent timeline's lines: read-only (append-only, written by the services)."""

    list_display = ["at", "project", "participant", "kind", "source", "actor"]
    list_filter = ["kind", "source"]
    fields = ["project", "participant", "kind", "source", "detail", "actor", "at"]
    readonly_fields = fields


@admin.register(FieldMapping)
class FieldMappingAdmin(NoSecretsAdmin):
    """Mapped on the project's Fields page, where each field is checked against REDCap."""

    list_display = ["project", "phone_field", "consent_field", "time_zone_field", "event"]


@admin.register(Participant)
class ParticipantAdmin(NoSecretsAdmin):
    list_display = [
        "record_id",
        "project",
        "masked_phone",
        "consented",
        "withdrawn",
        "issue",
        "in_redcap",
    ]
    list_filter = ["issue", "consented", "withdrawn", "in_redcap"]
    search_fields = ["record_id", "project__title"]
    fields = [
        "project",
        "record_id",
        "masked_phone",
        "consented",
        "time_zone",
        "first_name",
        "withdrawn",
        "dates",
        "issue",
        "issue_detail",
        "in_redcap",
        "number_invalid",
        "synced_at",
    ]
    readonly_fields = fields


@admin.register(SyncRun)
class SyncRunAdmin(NoSecretsAdmin):
    list_display = [
        "project",
        "status",
        "created_at",
        "total",
        "processed",
        "skipped_count",
        "error",
    ]
    list_filter = ["status"]


@admin.register(DataEntryTrigger)
class DataEntryTriggerAdmin(NoSecretsAdmin):
    """Created, replaced and removed by the project's owners on its REDCap page (audited); the
    secret in its address is never shown here."""

    list_display = ["project", "created_at", "last_post_at", "last_read_at", "last_error_at"]
    fields = [
        "project",
        "created_by",
        "created_at",
        "rotated_at",
        "last_post_at",
        "last_read_at",
        "last_error",
        "last_error_at",
    ]
    readonly_fields = fields


@admin.register(RecordRefresh)
class RecordRefreshAdmin(NoSecretsAdmin):
    """Records REDCap said were saved, waiting for their read (docs/redcap.md, "Coalescing")."""

    list_display = ["record_id", "project", "status", "due_at", "posts", "attempts"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in RecordRefresh._meta.fields]
