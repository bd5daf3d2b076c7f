"""Mounted at /sandbox/redcap/ by portal/urls.py, only when settings.SANDBOX_ENABLED is on."""

from django.urls import path

from projects.sandbox import views

urlpatterns = [
    path("api/", views.api, name="sandbox-redcap-api"),
    path("surveys/", views.survey, name="sandbox-redcap-survey"),
]
