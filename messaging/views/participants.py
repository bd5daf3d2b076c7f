"""A participant's page: their texts and replies, and an ad-hoc text."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from messaging import selectors
from messaging.forms import AdhocForm
from messaging.models import Message, OptOut
from messaging.services import inbox, optouts, outbox
from messaging.views.common import can_edit, sending_hours
from projects.access import project_get_for_user
from projects.forms import error_text, form_apply_errors
from projects.models import Membership, Participant

Role = Membership.Role


@login_required
def participant_detail(request, pk: int, participant_id: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    participant = get_object_or_404(Participant, pk=participant_id, project=project)
    form = AdhocForm(request.POST or None)
    if request.method == "POST":
        project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
        if form.is_valid():
            try:
                outbox.adhoc_send(
                    participant=participant, body=form.cleaned_data["body"], actor=request.user
                )
            except ValidationError as exc:
                form_apply_errors(form, exc)
            else:
                inbox.participant_replies_answered(participant=participant, actor=request.user)
                flash.success(
                    request,
                    f"Text queued for record {participant.record_id}: it goes out within the "
                    f"project's sending hours ({sending_hours(project)}, participant's time).",
                )
                return redirect("participant-detail", pk=project.pk, participant_id=participant.pk)
    return render(
        request,
        "messaging/participant_detail.html",
        {
            "project": project,
            "role": role,
            "participant": participant,
            "can_edit": can_edit(role),
            "texts": selectors.participant_thread(participant=participant),
            "surveys": selectors.participant_conversations(participant=participant),
            "cancellable": (Message.Status.QUEUED, Message.Status.HELD),
            "delivered_statuses": (Message.Status.SENT, Message.Status.DELIVERED),
            "sending_hours": sending_hours(project),
            "form": form,
            "textable": outbox.textable_participants(project=project)
            .filter(pk=participant.pk)
            .exists(),
            "timeline": selectors.consent_timeline(participant=participant),
            "opted_out": OptOut.objects.filter(
                project=project,
                phone_fingerprint=participant.phone_fingerprint,
                revoked_at__isnull=True,
            )
            .exclude(phone_fingerprint="")
            .first(),
            "tab": "participants",
        },
    )


@login_required
@require_POST
def participant_consent(request, pk: int, participant_id: int):
    """Study staff opt a participant out, or back in, with a reason (messaging/services/
    optouts.py: only an opt-out staff set can staff lift; a STOP only the participant's START)."""
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    participant = get_object_or_404(Participant, pk=participant_id, project=project)
    reason = request.POST.get("reason", "")
    try:
        if request.POST.get("action") == "opt_in":
            optouts.participant_opt_in(participant=participant, actor=request.user, reason=reason)
            flash.success(request, f"Record {participant.record_id} may be texted again.")
        else:
            optouts.participant_opt_out(participant=participant, actor=request.user, reason=reason)
            flash.success(
                request,
                f"Record {participant.record_id} is opted out; their waiting texts are cancelled.",
            )
    except ValidationError as exc:
        flash.error(request, error_text(exc))
    return redirect("participant-detail", pk=project.pk, participant_id=participant.pk)
