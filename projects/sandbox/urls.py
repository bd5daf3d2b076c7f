"""Mounted at /sandbox/redcap/ by portal/urls.py, only when settings.SANDBOX_ENABLED is on."""

from django.urls import path

from projects.sandbox import entry_views, views

urlpatterns = [
    path("api/", views.api, name="sandbox-redcap-api"),
    path("surveys/", views.survey, name="sandbox-redcap-survey"),
    path("projects/<int:pid>/", entry_views.project_home, name="sandbox-redcap-project"),
    path("projects/<int:pid>/entry/", entry_views.data_entry, name="sandbox-redcap-entry"),
]
