"""The project's inbox: unread replies and flagged texts, newest first; read, review, opt out,
answer (messaging/services/inbox.py)."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from messaging import selectors
from messaging.forms import AdhocForm
from messaging.models import Reply
from messaging.services import inbox, outbox
from messaging.views.common import can_edit, sending_hours
from projects.access import project_get_for_user
from projects.forms import error_text, form_apply_errors
from projects.models import Membership

Role = Membership.Role


def _context(project, role) -> dict:
    return {
        "project": project,
        "role": role,
        "can_edit": can_edit(role),
        "inbox": selectors.inbox_page(project=project, role=role),
        "surveys": selectors.inbox_conversations(project=project),
        "tab": "inbox",
    }


@login_required
def inbox_list(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    return render(request, "messaging/inbox.html", _context(project, role))


@login_required
def inbox_fragment(request, pk: int):
    """The list alone, for the page's polling script (static/js/studytext.js)."""
    project, role = project_get_for_user(user=request.user, pk=pk)
    return render(request, "messaging/_inbox_rows.html", _context(project, role))


def _reply(request, pk: int, reply_id: int, *, min_role=Role.EDITOR):
    project, role = project_get_for_user(user=request.user, pk=pk, min_role=min_role)
    reply = get_object_or_404(
        Reply.objects.select_related("participant", "project"), pk=reply_id, project=project
    )
    if reply.participant_id is None and role != Role.OWNER:
        raise Http404("No such reply.")
    return project, role, reply


@login_required
@require_POST
def inbox_action(request, pk: int, reply_id: int):
    project, _, reply = _reply(request, pk, reply_id)
    action = request.POST.get("action")
    try:
        if action == "read":
            inbox.reply_mark_read(reply=reply, actor=request.user)
        elif action == "review":
            inbox.reply_review(reply=reply, actor=request.user, note=request.POST.get("note", ""))
            flash.success(request, "Marked reviewed.")
        elif action == "opt_out":
            inbox.reply_opt_out(
                reply=reply, actor=request.user, reason=request.POST.get("reason", "")
            )
            flash.success(
                request,
                f"Record {reply.participant.record_id} is opted out; their waiting texts are "
                "cancelled.",
            )
        else:
            raise Http404
    except ValidationError as exc:
        flash.error(request, error_text(exc))
    return redirect("inbox", pk=project.pk)


@login_required
@require_POST
def inbox_read_all(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    count = inbox.replies_mark_all_read(project=project, actor=request.user)
    flash.success(request, f"{count} repl{'y' if count == 1 else 'ies'} marked read.")
    return redirect("inbox", pk=project.pk)


@login_required
def inbox_answer(request, pk: int, reply_id: int):
    """Answer a reply: the text to the participant with its live preview (segments, cost)."""
    project, role, reply = _reply(request, pk, reply_id, min_role=Role.VIEWER)
    form = AdhocForm(request.POST or None)
    if request.method == "POST":
        project, role, reply = _reply(request, pk, reply_id)
        if form.is_valid():
            try:
                inbox.reply_answer(reply=reply, body=form.cleaned_data["body"], actor=request.user)
            except ValidationError as exc:
                form_apply_errors(form, exc)
            else:
                flash.success(
                    request,
                    f"Answer queued for record {reply.participant.record_id}: it goes out within "
                    f"the project's sending hours ({sending_hours(project)}, participant's time).",
                )
                return redirect("inbox", pk=project.pk)
    textable = (
        reply.participant is not None
        and outbox.textable_participants(project=project).filter(pk=reply.participant_id).exists()
    )
    return render(
        request,
        "messaging/inbox_answer.html",
        {
            "project": project,
            "role": role,
            "can_edit": can_edit(role),
            "reply": reply,
            "participant": reply.participant,
            "form": form,
            "textable": textable,
            "sending_hours": sending_hours(project),
            "tab": "inbox",
        },
    )
