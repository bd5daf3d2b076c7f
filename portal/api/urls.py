"""The REST API's addresses. Everything about one project is under `projects/<id>/`, each kind of
object in its own folder, so later parts slot in beside the others: the team's inbox
(`projects/<id>/inbox/`) and text-survey results (`projects/<id>/surveys/<rule id>/results/`)."""

from django.urls import path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView

from portal.api.errors import json_not_found
from portal.api.views import (
    billing,
    inbox,
    messages,
    onboarding,
    participants,
    projects,
    rules,
    site,
    surveys,
)


class IdConverter:
    """An object id: up to 18 digits (a larger number names nothing and answers 404 rather
    than overflowing the database's 64-bit column)."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(value)


register_converter(IdConverter, "id")

project = "projects/<id:project_id>/"
urlpatterns = [
    path("", site.RootApi.as_view(), name="api-root"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", site.SwaggerUiView.as_view(), name="api-docs"),
    path("redoc/", site.RedocView.as_view(), name="api-redoc"),
    path("health/", site.HealthApi.as_view(), name="api-health"),
    # Projects and what belongs to one.
    path("projects/", projects.ProjectListApi.as_view(), name="api-project-list"),
    path(project, projects.ProjectDetailApi.as_view(), name="api-project-detail"),
    path(
        project + "participants/",
        participants.ParticipantListApi.as_view(),
        name="api-participant-list",
    ),
    path(
        project + "participants/<id:participant_id>/",
        participants.ParticipantDetailApi.as_view(),
        name="api-participant-detail",
    ),
    path(
        project + "participants/<id:participant_id>/opt-out/",
        participants.ParticipantOptOutApi.as_view(),
        name="api-participant-opt-out",
    ),
    path(
        project + "participants/<id:participant_id>/opt-in/",
        participants.ParticipantOptInApi.as_view(),
        name="api-participant-opt-in",
    ),
    path(
        project + "participants/<id:participant_id>/texts/",
        participants.ParticipantTextApi.as_view(),
        name="api-participant-text",
    ),
    path(project + "rules/", rules.RuleListApi.as_view(), name="api-rule-list"),
    path(project + "rules/<id:rule_id>/", rules.RuleDetailApi.as_view(), name="api-rule-detail"),
    path(
        project + "rules/<id:rule_id>/activate/",
        rules.RuleActivateApi.as_view(),
        name="api-rule-activate",
    ),
    path(
        project + "rules/<id:rule_id>/pause/", rules.RulePauseApi.as_view(), name="api-rule-pause"
    ),
    path(
        project + "rules/<id:rule_id>/archive/",
        rules.RuleArchiveApi.as_view(),
        name="api-rule-archive",
    ),
    path(
        project + "rules/<id:rule_id>/send-now/",
        rules.RuleSendNowApi.as_view(),
        name="api-rule-send-now",
    ),
    path(project + "sends/<id:send_id>/", messages.SendDetailApi.as_view(), name="api-send-detail"),
    path(project + "messages/", messages.MessageListApi.as_view(), name="api-message-list"),
    path(
        project + "messages/<id:message_id>/",
        messages.MessageDetailApi.as_view(),
        name="api-message-detail",
    ),
    path(project + "replies/", messages.ReplyListApi.as_view(), name="api-reply-list"),
    path(project + "inbox/", inbox.InboxListApi.as_view(), name="api-inbox-list"),
    path(
        project + "inbox/<id:reply_id>/read/",
        inbox.InboxReadApi.as_view(),
        name="api-inbox-read",
    ),
    path(
        project + "inbox/<id:reply_id>/review/",
        inbox.InboxReviewApi.as_view(),
        name="api-inbox-review",
    ),
    path(
        project + "surveys/<id:survey_id>/results/",
        surveys.SurveyResultsApi.as_view(),
        name="api-survey-results",
    ),
    # Billing accounts.
    path("accounts/", billing.AccountListApi.as_view(), name="api-account-list"),
    path(
        "accounts/<id:account_id>/usage/",
        billing.AccountUsageApi.as_view(),
        name="api-account-usage",
    ),
    path(
        "accounts/<id:account_id>/periods/",
        billing.PeriodListApi.as_view(),
        name="api-account-periods",
    ),
    path(
        "accounts/<id:account_id>/credit-pack-requests/",
        billing.CreditPackRequestListApi.as_view(),
        name="api-credit-pack-request-list",
    ),
    # The caller's own onboarding requests.
    path(
        "onboarding-requests/",
        onboarding.OnboardingRequestListApi.as_view(),
        name="api-onboarding-request-list",
    ),
    path(
        "onboarding-requests/<id:request_id>/",
        onboarding.OnboardingRequestDetailApi.as_view(),
        name="api-onboarding-request-detail",
    ),
    path(
        "onboarding-requests/<id:request_id>/submit/",
        onboarding.OnboardingRequestSubmitApi.as_view(),
        name="api-onboarding-request-submit",
    ),
    path(
        "onboarding-requests/<id:request_id>/withdraw/",
        onboarding.OnboardingRequestWithdrawApi.as_view(),
        name="api-onboarding-request-withdraw",
    ),
    path(
        "onboarding-requests/<id:request_id>/comments/",
        onboarding.OnboardingCommentListApi.as_view(),
        name="api-onboarding-comment-list",
    ),
    # Anything else under /api/: a JSON 404, not the site's HTML page.
    re_path(r"^[\s\S]*$", json_not_found, name="api-not-found"),
]
