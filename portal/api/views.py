from rest_framework import generics

from portal import selectors
from portal.api.serializers import OnboardingRequestOutputSerializer, ProjectOutputSerializer
from projects.selectors import projects_for_user


class ProjectListApi(generics.ListAPIView):
    """Projects the caller may see (all of them for a server administrator)."""

    serializer_class = ProjectOutputSerializer

    def get_queryset(self):
        return projects_for_user(user=self.request.user).order_by("id")


class OnboardingRequestListApi(generics.ListAPIView):
    """The caller's own onboarding requests."""

    serializer_class = OnboardingRequestOutputSerializer

    def get_queryset(self):
        return selectors.onboarding_requests_for_user(user=self.request.user).order_by("id")
