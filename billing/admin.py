from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from billing import selectors, services
from billing.models import (
    PRICE_ERRORS,
    Account,
    AccountMembership,
    CreditPackRequest,
    DailyUsage,
    Plan,
    PlanChangeRequest,
    ProjectUsage,
    UsagePeriod,
)
from billing.services.accounts import assert_plan_fits


def _over_lines(over: list[dict]) -> list[str]:
    lines = []
    for row in over:
        parts = []
        if row["projects_over"]:
            parts.append(f"{row['active_projects']} active projects")
        if row["usage_over"]:
            parts.append(f"{row['used']:,} units used this month")
        lines.append(f"{row['account'].name}: {', '.join(parts)}")
    return lines


class PlanAdminForm(forms.ModelForm):
    confirm_over = forms.BooleanField(
        required=False,
        label="Save even though accounts already use more",
        help_text="Only needed when lowering a limit below what accounts on this plan use now. "
        "They keep their projects; new projects are refused until they are under the limit, and "
        "a smaller monthly quota applies from each account's next month.",
    )

    class Meta:
        model = Plan
        fields = [
            "name",
            "project_limit",
            "monthly_messages",
            "monthly_price",
            "pack_size",
            "pack_price",
            "is_active",
            "sort_order",
        ]
        error_messages = {"monthly_price": PRICE_ERRORS, "pack_price": PRICE_ERRORS}

    def clean(self):
        data = super().clean()
        self.accounts_over = []
        lowered = self.instance.pk is not None and (
            "project_limit" in self.changed_data or "monthly_messages" in self.changed_data
        )
        if lowered and not self.errors:
            self.accounts_over = selectors.plan_accounts_over(
                plan=self.instance,
                project_limit=data["project_limit"],
                monthly_messages=data["monthly_messages"],
            )
            if self.accounts_over and not data.get("confirm_over"):
                raise ValidationError(
                    [
                        f"{len(self.accounts_over)} account(s) on this plan already use more "
                        "than the new limits:",
                        *_over_lines(self.accounts_over),
                        "Nothing was saved. Tick “Save even though accounts already use more” "
                        "and save again to go ahead.",
                    ]
                )
        return data


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    form = PlanAdminForm
    list_display = [
        "name",
        "project_limit",
        "monthly_messages",
        "monthly_price",
        "pack_size",
        "pack_price",
        "is_active",
    ]
    list_editable = ["is_active"]

    def save_model(self, request, obj, form, change):
        services.plan_save(plan=obj, actor=request.user, changed=form.changed_data)
        over = getattr(form, "accounts_over", [])
        if over:
            messages.warning(
                request,
                "Saved. These accounts use more than the plan's new limits: "
                + "; ".join(_over_lines(over))
                + ".",
            )


class AccountMembershipInline(admin.TabularInline):
    model = AccountMembership
    extra = 0
    autocomplete_fields = ["user"]


class AccountAdminForm(forms.ModelForm):
    class Meta:
        model = Account
        fields = ["name", "plan", "time_zone"]

    def clean(self):
        data = super().clean()
        plan = data.get("plan")
        if self.instance.pk and plan and "plan" in self.changed_data:
            try:
                assert_plan_fits(account=self.instance, plan=plan)
            except ValidationError as exc:
                self.add_error("plan", exc.message_dict["to_plan"])
        return data


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    form = AccountAdminForm
    list_display = ["name", "plan", "time_zone", "created_at", "usage_link"]
    list_filter = ["plan"]
    search_fields = ["name"]
    inlines = [AccountMembershipInline]

    @admin.display(description="Usage")
    def usage_link(self, obj: Account) -> str:
        return format_html(
            '<a href="{}">usage page</a>', reverse("billing-account-detail", args=[obj.pk])
        )

    def save_model(self, request, obj, form, change):
        if change and "plan" in form.changed_data:
            # The plan change goes through the service: checked, audited, quota raised.
            new_plan = obj.plan
            obj.plan = Plan.objects.get(accounts__pk=obj.pk)
            obj.save()
            services.account_plan_set(account=obj, plan=new_plan, actor=request.user)
            obj.plan = new_plan
        else:
            obj.save()


@admin.register(AccountMembership)
class AccountMembershipAdmin(admin.ModelAdmin):
    list_display = ["account", "user", "role"]
    list_filter = ["role"]
    search_fields = ["account__name", "user__email"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Counters and decisions change only through the services (checked and audited)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(UsagePeriod)
class UsagePeriodAdmin(ReadOnlyAdmin):
    list_display = ["account", "start", "end", "used", "included", "credits", "closed_at"]
    list_filter = ["start"]
    search_fields = ["account__name"]


@admin.register(CreditPackRequest)
class CreditPackRequestAdmin(ReadOnlyAdmin):
    list_display = ["account", "packs", "units", "status", "requested_by", "requested_at"]
    list_filter = ["status"]
    search_fields = ["account__name"]


@admin.register(PlanChangeRequest)
class PlanChangeRequestAdmin(ReadOnlyAdmin):
    list_display = ["account", "from_plan", "to_plan", "status", "requested_by", "requested_at"]
    list_filter = ["status"]
    search_fields = ["account__name"]


@admin.register(ProjectUsage)
class ProjectUsageAdmin(admin.ModelAdmin):
    """Counters kept by the quota services; read-only here."""

    list_display = ["period", "project", "units"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(DailyUsage)
class DailyUsageAdmin(ProjectUsageAdmin):
    list_display = ["account", "day", "units"]
