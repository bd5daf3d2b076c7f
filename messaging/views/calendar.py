"""The forward calendar of a project and of one rule (messaging/forecast.py)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from messaging import charts, selectors
from messaging.models import MessageRule
from projects.access import project_get_for_user

SHOWN = 300  # rows listed; the counts and the chart cover them all


def _render(request, project, role, rule=None):
    cal = selectors.forward_calendar(project=project, rule=rule)
    return render(
        request,
        "messaging/calendar.html",
        {
            "project": project,
            "role": role,
            "rule": rule,
            "cal": cal,
            "entries": cal.entries[:SHOWN],
            "more": max(len(cal.entries) - SHOWN, 0),
            "chart": charts.forecast_chart(days=cal.days),
            "tab": "messages",
        },
    )


@login_required
def message_calendar(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    return _render(request, project, role)


@login_required
def rule_calendar(request, pk: int, rule_id: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    rule = get_object_or_404(MessageRule, pk=rule_id, project=project)
    return _render(request, project, role, rule)
