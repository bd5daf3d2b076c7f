from django.contrib import admin

from billing.models import Account, AccountMembership, Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "project_limit",
        "monthly_messages",
        "pack_size",
        "pack_price",
        "is_active",
    ]
    list_editable = ["is_active"]


class AccountMembershipInline(admin.TabularInline):
    model = AccountMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "plan", "time_zone", "created_at"]
    list_filter = ["plan"]
    search_fields = ["name"]
    inlines = [AccountMembershipInline]


@admin.register(AccountMembership)
class AccountMembershipAdmin(admin.ModelAdmin):
    list_display = ["account", "user", "role"]
    list_filter = ["role"]
    search_fields = ["account__name", "user__email"]
