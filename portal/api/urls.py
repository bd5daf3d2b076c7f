from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from portal.api import views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("projects/", views.ProjectListApi.as_view(), name="api-project-list"),
    path(
        "onboarding-requests/",
        views.OnboardingRequestListApi.as_view(),
        name="api-onboarding-request-list",
    ),
]
