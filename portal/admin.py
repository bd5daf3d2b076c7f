from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Q
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_q.models import Failure, OrmQ, Schedule, Success

from portal.models import (
    SERVER_ADMIN_GROUP,
    ApiToken,
    AuditEvent,
    OnboardingAttachment,
    OnboardingComment,
    OnboardingRequest,
    User,
)
from portal.services.accounts import user_set_server_admin


class ServerAdminFilter(admin.SimpleListFilter):
    title = "server administrator"
    parameter_name = "server_admin"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        admins = Q(groups__name=SERVER_ADMIN_GROUP) | Q(is_superuser=True)
        if self.value() == "yes":
            return queryset.filter(admins).distinct()
        if self.value() == "no":
            return queryset.exclude(admins)
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """People. The role is granted and revoked only by the two audited actions on the list:
    the form shows it and never edits it (no superuser box, no groups, no permissions)."""

    ordering = ["email"]
    list_display = ["email", "full_name", "email_verified", "is_active", "role", "last_login"]
    list_filter = ["is_active", "email_verified", ServerAdminFilter]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["full_name", "time_zone", "email_verified", "is_active"]}),
        ("Role", {"fields": ["role", "second_factor"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    readonly_fields = ["role", "second_factor", "last_login", "date_joined"]
    actions = ["grant_server_admin", "revoke_server_admin"]

    @admin.display(description="Role")
    def role(self, obj: User) -> str:
        if obj.is_superuser:
            return "Superuser"
        return "Server administrator" if obj.is_server_admin else "Researcher"

    @admin.display(description="Second factor")
    def second_factor(self, obj: User) -> str:
        from portal.services.two_factor import has_second_factor

        return "Set up" if has_second_factor(obj) else "Not set up"

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None and obj.pk == request.user.pk and "is_active" in form.base_fields:

            class OwnUserForm(form):
                def clean_is_active(self):
                    if not self.cleaned_data["is_active"]:
                        raise ValidationError("You cannot deactivate your own account.")
                    return True

            return OwnUserForm
        return form

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
    """View only. "Server administrators" is the role itself; membership changes go through
    the audited actions on the user list, and permissions are not used (portal/backends.py)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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
    """Shows only the last 4 characters; the key itself is never stored. Deleting revokes."""

    list_display = ["user", "masked", "scope", "expires_at", "created_at", "last_used_at"]
    fields = ["user", "masked", "scope", "expires_at", "created_at", "last_used_at"]
    readonly_fields = fields

    @admin.display(description="Key")
    def masked(self, obj):
        return f"…{obj.last4}"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        from portal.services.profile import api_token_revoke

        api_token_revoke(user=obj.user, actor=request.user)

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            self.delete_model(request, token)


class DeviceAdmin(admin.ModelAdmin):
    """Second-factor devices: who has one, never its secret. Deleting one resets that person's
    second factor (a lost phone); it is audited, and an administrator must enrol again."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    search_fields = ["user__email"]
    fields = ["user", "name", "confirmed", "created_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        from portal.services.two_factor import two_factor_device_reset

        two_factor_device_reset(device=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for device in queryset.select_related("user"):
            self.delete_model(request, device)


for _model in (TOTPDevice, StaticDevice):
    admin.site.unregister(_model)
    admin.site.register(_model, DeviceAdmin)


class TaskQueueAdmin(admin.ModelAdmin):
    """django-q2's schedules, tasks and queue, read only, for everyone: each names a Python
    function the workers run with their secrets, so adding, changing or re-running one from a
    web page would be code execution. `migrate` registers the schedules (messaging.tasks)."""

    actions = None

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScheduleAdmin(TaskQueueAdmin):
    list_display = ["name", "func", "schedule_type", "minutes", "next_run", "repeats"]


class TaskAdmin(TaskQueueAdmin):
    list_display = ["name", "func", "started", "stopped", "success"]
    search_fields = ["name", "func"]


class QueueAdmin(TaskQueueAdmin):
    list_display = ["id", "key", "lock"]
    exclude = ["payload"]  # pickled task: its arguments


for _model, _admin in (
    (Schedule, ScheduleAdmin),
    (Success, TaskAdmin),
    (Failure, TaskAdmin),
    (OrmQ, QueueAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
