from django.contrib import admin
from django.db import models

from projects.models import Membership, Project, RedcapInstance


@admin.register(RedcapInstance)
class RedcapInstanceAdmin(admin.ModelAdmin):
    list_display = ["name", "api_url", "is_active"]
    # A REDCap API is reached over HTTPS; say so, rather than rely on Django's changing default.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


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


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["project", "user", "role"]
    list_filter = ["role"]
    search_fields = ["project__title", "user__email"]
