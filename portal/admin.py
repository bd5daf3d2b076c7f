from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError

from portal.models import (
    SERVER_ADMIN_GROUP,
    ApiToken,
    AuditEvent,
    OnboardingAttachment,
    OnboardingComment,
    OnboardingRequest,
    User,
)
from portal.services.accounts import server_admin_role_changed_by, user_set_server_admin


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "email_verified", "is_active", "is_staff", "last_login"]
    list_filter = ["is_active", "is_staff", "email_verified", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["full_name", "time_zone", "email_verified"]}),
        ("Role", {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    # Admin-site access follows the "Server administrators" group (and superuser); a box of its
    # own would let the two drift apart.
    readonly_fields = ["is_staff"]
    actions = ["grant_server_admin", "revoke_server_admin"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None or obj.pk != request.user.pk or "groups" not in form.base_fields:
            return form

        class OwnUserForm(form):
            def clean_groups(self):
                groups = self.cleaned_data["groups"]
                stays = any(g.name == SERVER_ADMIN_GROUP for g in groups)
                if obj.is_server_admin and not obj.is_superuser and not stays:
                    raise ValidationError("You cannot remove your own administrator role.")
                return groups

        return OwnUserForm

    def save_model(self, request, obj, form, change):
        if "groups" in form.cleaned_data:
            in_group = any(g.name == SERVER_ADMIN_GROUP for g in form.cleaned_data["groups"])
            obj.is_staff = in_group or obj.is_superuser
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        # The group change is audited (with who made it) by portal.receivers.
        with server_admin_role_changed_by(request.user):
            super().save_related(request, form, formsets, change)

    def _set_role(self, request, queryset, grant: bool) -> None:
        for user in queryset:
            try:
                user_set_server_admin(user=user, actor=request.user, grant=grant)
            except ValidationError as exc:
                self.message_user(request, f"{user}: {' '.join(exc.messages)}", messages.ERROR)

    @admin.action(description="Grant the server-administrator role")
    def grant_server_admin(self, request, queryset):
        self._set_role(request, queryset, grant=True)

    @admin.action(description="Remove the server-administrator role")
    def revoke_server_admin(self, request, queryset):
        self._set_role(request, queryset, grant=False)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """The "Server administrators" group is the role itself: renaming or deleting it would take the
    role from everyone at once, unaudited. Membership changes go through the user pages."""

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.name == SERVER_ADMIN_GROUP:
            return ["name"]
        return super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.name == SERVER_ADMIN_GROUP:
            return False
        return super().has_delete_permission(request, obj)

    def save_related(self, request, form, formsets, change):
        with server_admin_role_changed_by(request.user):
            super().save_related(request, form, formsets, change)


class ReadOnlyAdminMixin:
    """View only: rows written through the services (which validate, audit and tell the other
    side by e-mail) are not added, edited field by field or deleted behind their back."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OnboardingCommentInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = OnboardingComment
    extra = 0
    fields = ["author", "body", "created_at"]
    readonly_fields = fields


@admin.register(OnboardingRequest)
class OnboardingRequestAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Requests change on the request's page only (edit, submit, decide, withdraw), where every
    step is checked and audited."""

    list_display = [
        "id",
        "project_title",
        "requester",
        "redcap_instance",
        "redcap_project_id",
        "status",
        "submitted_at",
    ]
    list_filter = ["status", "redcap_instance", "irb_status"]
    search_fields = ["project_title", "pi_name", "irb_protocol", "requester__email"]
    inlines = [OnboardingCommentInline]


@admin.register(OnboardingComment)
class OnboardingCommentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Comments are written on the request's page, where the other side is told by e-mail, and
    stay as written."""

    list_display = ["request", "author", "created_at"]
    search_fields = ["body", "author__email", "request__project_title"]


@admin.register(OnboardingAttachment)
class OnboardingAttachmentAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Files are attached and opened on the request's page (who may open them is checked there);
    here they are listed only."""

    list_display = ["name", "kind", "size", "request", "uploaded_by", "uploaded_at"]
    fields = ["name", "kind", "size", "request", "uploaded_by", "uploaded_at"]
    search_fields = ["name", "request__project_title"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only."""

    list_display = ["created_at", "actor", "action", "object_type", "object_repr", "message"]
    list_filter = ["action", "object_type"]
    search_fields = ["action", "object_repr", "message", "actor__email"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Shows only the last 4 characters; the key itself is never stored."""

    list_display = ["user", "masked", "created_at", "last_used_at"]
    fields = ["user", "masked", "created_at", "last_used_at"]
    readonly_fields = fields

    @admin.display(description="Key")
    def masked(self, obj):
        return f"…{obj.last4}"

    def has_add_permission(self, request):
        return False
