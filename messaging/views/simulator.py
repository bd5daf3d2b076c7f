"""The sandbox phone simulator: the texts the sandbox carried, and replies typed on its phones."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from messaging import selectors
from messaging.gateways import delivers_to_simulator
from messaging.services import inbound
from messaging.views.common import can_edit
from projects.access import project_get_for_user
from projects.forms import error_text
from projects.models import Membership, Participant
from projects.selectors import (
    project_provider_link,
)

Role = Membership.Role


def _simulator_or_404(project) -> None:
    if not delivers_to_simulator(project_provider_link(project=project)):
        raise Http404("This project does not use the sandbox phone simulator.")


@login_required
def phone_simulator(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    _simulator_or_404(project)
    return render(
        request,
        "messaging/simulator.html",
        {
            "project": project,
            "role": role,
            "phones": selectors.simulator_phones(project=project),
            "own_texts": selectors.simulator_own_texts(project=project, user=request.user),
            "can_edit": can_edit(role),
            "tab": "simulator",
        },
    )


@login_required
@require_POST
def phone_simulator_reply(request, pk: int, participant_id: int):
    """A reply typed on a sandbox phone: handled exactly as a provider's inbound webhook."""
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    _simulator_or_404(project)
    participant = get_object_or_404(Participant, pk=participant_id, project=project)
    try:
        reply = inbound.simulator_reply(
            participant=participant, body=request.POST.get("body", "")[:1600], actor=request.user
        )
    except ValidationError as exc:
        flash.error(request, error_text(exc))
    else:
        flash.success(
            request,
            f"Record {participant.record_id} replied."
            + (f" {reply.handled}" if reply.handled else ""),
        )
    return redirect(
        reverse("phone-simulator", args=[project.pk]) + f"#phone-{participant.record_id}"
    )
