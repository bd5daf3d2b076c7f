from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError

from portal.models import ApiToken, AuditEvent, OnboardingComment, OnboardingRequest, User
from portal.services.accounts import user_set_server_admin


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
    actions = ["grant_server_admin", "revoke_server_admin"]

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


class OnboardingCommentInline(admin.TabularInline):
    model = OnboardingComment
    extra = 0
    readonly_fields = ["author", "body", "created_at"]
    can_delete = False


@admin.register(OnboardingRequest)
class OnboardingRequestAdmin(admin.ModelAdmin):
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
    readonly_fields = [
        "status",
        "decided_by",
        "decided_at",
        "project",
        "submitted_at",
        "created_at",
    ]
    inlines = [OnboardingCommentInline]


@admin.register(OnboardingComment)
class OnboardingCommentAdmin(admin.ModelAdmin):
    list_display = ["request", "author", "created_at"]
    search_fields = ["body", "author__email", "request__project_title"]
    readonly_fields = ["request", "author", "created_at"]

    def has_add_permission(self, request):
        # Comments are written on the request's page, where the other side is told by e-mail.
        return False


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
