"""A send's progress page, and cancelling what of it still waits."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing.services import quota_unit_label
from messaging import selectors
from messaging.models import Send
from messaging.services import outbox
from messaging.views.common import can_edit, sees_account
from projects.access import project_get_for_user
from projects.forms import error_text
from projects.models import Membership

Role = Membership.Role


@login_required
def send_detail(request, pk: int, send_id: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    send = get_object_or_404(
        Send.objects.select_related("rule", "created_by"), pk=send_id, project=project
    )
    progress = _progress_words(selectors.send_progress(send=send))
    if request.GET.get("format") == "json":
        return JsonResponse(progress)
    return render(
        request,
        "messaging/send_detail.html",
        {
            "project": project,
            "role": role,
            "send": send,
            "progress": progress,
            "can_edit": can_edit(role),
            "sees_account": sees_account(request.user, project),
            "tab": "messages",
        },
    )


@login_required
@require_POST
def send_cancel_waiting(request, pk: int, send_id: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    send = get_object_or_404(Send.objects.select_related("rule"), pk=send_id, project=project)
    try:
        cancelled, released = outbox.send_cancel_waiting(send=send, actor=request.user)
    except ValidationError as exc:
        flash.error(request, error_text(exc))
    else:
        flash.success(
            request,
            f"{cancelled} waiting text{'s' if cancelled != 1 else ''} cancelled. "
            + (
                f"{released} {quota_unit_label(released)} of quota released."
                if released
                else "They had not used any of the quota."
            ),
        )
    return redirect("send-detail", pk=project.pk, send_id=send.pk)


def _progress_words(progress: dict) -> dict:
    """The sentences the progress page shows (and the page's script updates while it polls)."""
    total = progress["total"]
    people = f"{total} participant{'s' if total != 1 else ''}"
    if not progress["done"]:
        headline = f"Sending to {people}"
    elif progress["held"]:
        headline = f"Done, except {progress['held']} held (over quota), of {people}"
    else:
        headline = f"Done: {people}"
    return {
        **progress,
        "headline": headline,
        "percent_label": f"{progress['done_count']} of {total} done ({progress['percent']}%)",
    }
