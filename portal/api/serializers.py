from rest_framework import serializers

from portal.models import OnboardingRequest
from projects.models import Project


class ProjectOutputSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.name")
    redcap_instance = serializers.CharField(source="redcap_instance.name")

    class Meta:
        model = Project
        fields = [
            "id",
            "title",
            "status",
            "redcap_instance",
            "redcap_project_id",
            "account",
            "pi_name",
            "irb_protocol",
            "time_zone",
            "created_at",
        ]


class OnboardingRequestOutputSerializer(serializers.ModelSerializer):
    redcap_instance = serializers.CharField(source="redcap_instance.name")

    class Meta:
        model = OnboardingRequest
        fields = [
            "id",
            "status",
            "redcap_instance",
            "redcap_project_id",
            "project_title",
            "irb_status",
            "submitted_at",
            "decided_at",
            "decision_note",
            "project",
        ]
