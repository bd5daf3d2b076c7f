"""Text-survey results through the API: the results page's selector (messaging.selectors
.survey_results; docs/redcap.md, "Text surveys")."""

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions

from messaging import selectors as messaging_selectors
from messaging.models import MessageRule
from portal.api.base import ApiView
from portal.api.serializers import SurveyResultsOutputSerializer
from portal.api.views.common import answer, example

RESULTS = {
    "rule": {"id": 9, "name": "Weekly check-in by text"},
    "started": 40,
    "completed": 31,
    "by_state": {"waiting": 1, "open": 2, "completed": 31, "expired": 5, "stopped": 1, "ended": 0},
    "completion_rate": 78,
    "median_minutes": 6.5,
    "median_time": "6 min",
    "questions": [
        {
            "field": "tc_walked",
            "label": "Did you go for a walk this week?",
            "answered": 36,
            "skipped": 0,
            "counts": [{"label": "Yes", "count": 22}, {"label": "No", "count": 14}],
        },
        {
            "field": "tc_mood_why",
            "label": "What made it so?",
            "answered": 9,
            "skipped": 3,
            "counts": [],
        },
    ],
}


class SurveyResultsApi(ApiView):
    serializer_class = SurveyResultsOutputSerializer

    @extend_schema(
        tags=["text surveys"],
        summary="A text survey's results",
        description="As on the rule's results page: conversations started and how they ended, "
        "the completion rate (percent of those started), the median time to complete, and the "
        "answers per question (counts per choice for questions with choices). The id is the "
        "text-survey rule's.",
        examples=[example("A weekly check-in", RESULTS)],
    )
    def get(self, request, project_id: int, survey_id: int):
        project = self.get_project()
        rule = MessageRule.objects.filter(pk=survey_id, project=project).first()
        if rule is None:
            raise exceptions.NotFound("No message rule with this id in the project.")
        if rule.kind != MessageRule.Kind.TEXT_SURVEY:
            raise exceptions.NotFound(
                f"“{rule.name}” is a {rule.get_kind_display().lower()}, not a text survey: "
                "only text surveys have results."
            )
        results = messaging_selectors.survey_results(rule=rule)
        return answer(
            SurveyResultsOutputSerializer,
            {
                "rule": {"id": rule.pk, "name": rule.name},
                "started": results.started,
                "completed": results.completed,
                "by_state": results.by_state,
                "completion_rate": results.completion_rate,
                "median_minutes": (
                    round(results.median_seconds / 60, 1)
                    if results.median_seconds is not None
                    else None
                ),
                "median_time": results.median_time,
                "questions": [
                    {
                        "field": q.field,
                        "label": q.label,
                        "answered": q.answered,
                        "skipped": q.skipped,
                        "counts": [{"label": c[0], "count": c[1]} for c in q.counts],
                    }
                    for q in results.questions
                ],
            },
        )
