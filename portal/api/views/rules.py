from django.db.models import prefetch_related_objects
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers

from messaging import selectors as messaging_selectors
from messaging import services as messaging_services
from messaging.models import MessageRule
from portal.api import fields
from portal.api.base import EDITOR, ApiView, NoInput
from portal.api.serializers import (
    RuleInputSerializer,
    RuleListOutputSerializer,
    RuleOutputSerializer,
    SendStartedSerializer,
)
from portal.api.views.common import ListApi, answer, example

RULE = {
    "id": 7,
    "name": "Weekly check-in",
    "kind": "invitation",
    "status": "active",
    "body": "Hi [first_name], this week's survey: [survey-link]",
    "instrument": "weekly_survey",
    "event": "",
    "recipients": "all",
    "filter_logic": "",
    "record_ids": [],
    "schedule": "recurring",
    "schedule_summary": "Every Mon at 10:00 am until Jun 30",
    "send_time": "10:00",
    "once_date": None,
    "recur_days": [0],
    "start_date": "2026-03-02",
    "until_date": "2026-06-30",
    "max_occurrences": None,
    "date_field": "",
    "offset_days": 0,
    "stop_when_complete": False,
    "max_sends": None,
    "trigger": "recurring",
    "offset": 0,
    "offset_unit": "days",
    "trigger_logic": "",
    "logic_repeat": "once",
    "anchor_rule": None,
    "repeat_every_days": None,
    "repeat_count": None,
    "notify_team": False,
    "alert_members": [],
    "alert_emails": [],
    "alert_sms": False,
    "created_at": "2026-02-27T15:00:00-06:00",
    "updated_at": "2026-03-01T09:12:00-06:00",
}
RULE_COUNTS = {
    **RULE,
    "sent_count": 118,
    "pending_count": 4,
    "held_count": 0,
    "failed_count": 2,
    "unconfirmed_count": 0,
}
NEW_RULE = {
    "kind": "reminder",
    "name": "Visit reminder",
    "body": "Hi [first_name], a reminder: your study visit is on [enrollment_date].",
    "schedule": "relative",
    "date_field": "enrollment_date",
    "offset_days": -1,
    "send_time": "10:00",
}
REFUSED_AS_THE_FORM_DOES = (
    "Validated exactly as the web form is (by the same service, REDCap consulted for surveys "
    "and filter logic); each refused field is named with the form's message, and nothing is "
    "saved."
)


def rule_data(project, data: dict) -> dict:
    """The validated body as `rules.rule_save` takes it: ids turned into the rule and the users
    they name (the service then checks them as the form's choices are checked)."""
    from django.contrib.auth import get_user_model

    data = dict(data)
    errors = {}
    if data.get("anchor_rule") is not None:
        anchor = MessageRule.objects.filter(pk=data["anchor_rule"], project=project).first()
        if anchor is None:
            errors["anchor_rule"] = ["Choose a survey invitation of this project."]
        data["anchor_rule"] = anchor
    if "alert_members" in data:
        ids = set(data["alert_members"])
        users = list(get_user_model().objects.filter(pk__in=ids))
        if len(users) != len(ids):
            errors["alert_members"] = ["Only members of this project can receive its alerts."]
        data["alert_members"] = users
    if errors:
        raise exceptions.ValidationError(errors)
    return data


class RuleQuery(serializers.Serializer):
    status = fields.Choice(
        choices=[("current", "Draft, active or paused (the default)"), ("archived", "Archived")],
        required=False,
        help_text="`current` (the default) or `archived`.",
    )


class RuleListApi(ListApi):
    serializer_class = RuleListOutputSerializer
    query_serializer_class = RuleQuery

    def get_queryset(self):
        rules = messaging_selectors.rules_for_project(
            project=self.get_project(), archived=self.query.get("status") == "archived"
        )
        prefetch_related_objects(rules, "alert_members")  # one query, however many rules
        return rules

    @extend_schema(
        tags=["message rules"],
        summary="List a project's message rules",
        description="Each rule with its texts counted by outcome (sent, waiting, held over "
        "quota, failed, unconfirmed).",
        parameters=[RuleQuery],
        examples=[example("A rule", RULE_COUNTS)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["message rules"],
        summary="Create a message rule (a draft)",
        description="Creates the rule as a draft; activate it to start sending. Editors and "
        "owners. " + REFUSED_AS_THE_FORM_DOES,
        request=RuleInputSerializer,
        responses={201: RuleOutputSerializer},
        examples=[
            example("A reminder the day before a visit", NEW_RULE, request=True),
            example(
                "Created",
                {
                    **RULE,
                    **NEW_RULE,
                    "id": 8,
                    "status": "draft",
                    "send_time": "10:00",
                    "recipients": "all",
                    "instrument": "",
                    "recur_days": [],
                    "start_date": None,
                    "until_date": None,
                    "schedule_summary": "1 day before [enrollment_date] at 10:00 am",
                },
                status=201,
            ),
        ],
    )
    def post(self, request, project_id: int):
        project = self.get_project(min_role=EDITOR)
        data = rule_data(project, self.body(RuleInputSerializer))
        rule = messaging_services.rule_save(project=project, actor=request.user, data=data)
        return answer(RuleOutputSerializer, rule, status=201)


class RuleApi(ApiView):
    serializer_class = RuleOutputSerializer

    def get_rule(self, project) -> MessageRule:
        return get_object_or_404(MessageRule, pk=self.kwargs["rule_id"], project=project)


class RuleDetailApi(RuleApi):
    @extend_schema(
        tags=["message rules"],
        summary="A message rule",
        description="Its text, recipients and schedule (with the schedule in words).",
        examples=[example("A rule", RULE)],
    )
    def get(self, request, project_id: int, rule_id: int):
        return answer(RuleOutputSerializer, self.get_rule(self.get_project()))

    @extend_schema(
        tags=["message rules"],
        summary="Change a message rule",
        description="Changes the fields given; an active rule stays active. An archived rule "
        "cannot be changed. Editors and owners. " + REFUSED_AS_THE_FORM_DOES,
        request=RuleInputSerializer,
        examples=[
            example(
                "New text", {"body": "Hi [first_name], the survey: [survey-link]"}, request=True
            ),
            example("Changed", {**RULE, "body": "Hi [first_name], the survey: [survey-link]"}),
        ],
    )
    def patch(self, request, project_id: int, rule_id: int):
        project = self.get_project(min_role=EDITOR)
        rule = self.get_rule(project)
        data = rule_data(project, self.body(RuleInputSerializer, partial=True))
        rule = messaging_services.rule_save(
            project=project, actor=request.user, data=data, rule=rule
        )
        return answer(RuleOutputSerializer, rule)


def _status_action(status: str, summary: str, description: str):
    class RuleStatusApi(RuleApi):
        @extend_schema(
            tags=["message rules"],
            summary=summary,
            description=description + " Editors and owners. No body.",
            request=None,
            examples=[example(summary, {**RULE, "status": status})],
        )
        def post(self, request, project_id: int, rule_id: int):
            project = self.get_project(min_role=EDITOR)
            rule = self.get_rule(project)
            self.body(NoInput)
            rule = messaging_services.rule_set_status(rule=rule, status=status, actor=request.user)
            return answer(RuleOutputSerializer, rule)

    RuleStatusApi.__name__ = RuleStatusApi.__qualname__ = f"Rule{status.title()}Api"
    return RuleStatusApi


RuleActivateApi = _status_action(
    MessageRule.Status.ACTIVE,
    "Activate a message rule",
    "Checks the rule again (as the form does), then sends on its schedule from now on: "
    "activating never sends the past.",
)
RulePauseApi = _status_action(
    MessageRule.Status.PAUSED,
    "Pause a message rule",
    "Stops the rule's texts at once, even those already waiting to go out.",
)
RuleArchiveApi = _status_action(
    MessageRule.Status.ARCHIVED,
    "Archive a message rule",
    "Stops the rule for good and cancels its waiting texts; it can no longer be changed.",
)


class SendNowInput(NoInput):
    audience = serializers.ChoiceField(
        choices=[
            ("new", "only the current recipients who have not received it"),
            ("everyone", "every current recipient again (a deliberate second send)"),
        ],
        default="new",
        help_text="Who gets the text. `new` (the default): the current recipients who have not "
        "received it and have no copy waiting, as the web page's Send now offers first. "
        "`everyone`: every current recipient with no copy waiting, a second copy for those who "
        "received it. Nobody ever gets two copies at once.",
    )


class RuleSendNowApi(RuleApi):
    serializer_class = SendStartedSerializer

    @extend_schema(
        tags=["message rules"],
        summary="Send a rule's text now",
        description="Queues the rule's text now, as the web page's Send now does: by default "
        "only for the current recipients who have not received it (`audience`: `everyone` "
        "sends it again to all); sending hours, consent, opt-outs and the quota still apply at "
        "release. Answers 202 with the send's id and the address of its progress. Editors and "
        "owners. The body may be empty.",
        request=SendNowInput,
        responses={202: SendStartedSerializer},
        examples=[
            example("Only those who have not received it", {"audience": "new"}, request=True),
            example(
                "Started",
                {"id": 55, "total": 140, "progress": "/api/projects/12/sends/55/"},
                status=202,
            ),
        ],
    )
    def post(self, request, project_id: int, rule_id: int):
        project = self.get_project(min_role=EDITOR)
        rule = self.get_rule(project)
        data = self.body(SendNowInput)
        send = messaging_services.send_now(rule=rule, actor=request.user, audience=data["audience"])
        progress = reverse("api-send-detail", args=[project.pk, send.pk])
        return answer(
            SendStartedSerializer,
            {"id": send.pk, "total": send.total, "progress": progress},
            status=202,
        )
