"""The project's SMS provider link page: link, test, resume, remove."""

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from messaging import selectors
from messaging.forms import ProviderLinkForm
from messaging.services import inbound, outbox, provider_links
from projects.access import project_get_for_user
from projects.forms import error_text, form_apply_errors
from projects.models import Membership
from projects.selectors import (
    project_field_mapping,
    project_provider_link,
)

Role = Membership.Role


@sensitive_post_parameters("api_key", "auth_token")
@login_required
def provider_link(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    link = project_provider_link(project=project)
    form = ProviderLinkForm(
        request.POST or None,
        initial={
            "provider": link.provider if link else "mosio",
            "rate_per_second": link.rate_per_second if link else 1,
        },
    )
    if request.method == "POST":
        project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
        if form.is_valid():
            try:
                link = provider_links.provider_link_save(
                    project=project,
                    provider=form.cleaned_data["provider"],
                    config=form.config(),
                    rate_per_second=form.cleaned_data["rate_per_second"],
                    actor=request.user,
                )
            except ValidationError as exc:
                form_apply_errors(form, exc)
            else:
                next_step = (
                    ""
                    if project_field_mapping(project=project) is not None
                    else " Next, map the REDCap fields."
                )
                flash.success(
                    request, f"{link.get_provider_display()} linked and checked.{next_step}"
                )
                return redirect("project-provider", pk=project.pk)
    return render(
        request,
        "messaging/provider_link.html",
        {
            "project": project,
            "role": role,
            "form": form,
            "link": link,
            "tab": "setup",
            "inbound_url": selectors.inbound_webhook_url(link=link) if role == "owner" else None,
            "channels": selectors.reply_channels(link=link),
            "answers_keywords": inbound.provider_answers_keywords(link, link.provider)
            if link
            else False,
            "poll_seconds": settings.MOSIO_POLL_SECONDS,
        },
    )


@login_required
@require_POST
def provider_link_action(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    link = project_provider_link(project=project)
    if link is None:
        raise Http404
    action = request.POST.get("action")
    try:
        if action == "test":
            description = provider_links.provider_link_test(link=link, actor=request.user)
            flash.success(request, f"Connected: {description.rstrip('.')}.")
        elif action == "resume":
            provider_links.provider_link_resume(link=link, actor=request.user)
            outbox.kick_sender()
            flash.success(request, "Sending resumed.")
        elif action == "keywords":
            answers = request.POST.get("answers") == "1"
            provider_links.provider_link_keywords_set(
                link=link, answers=answers, actor=request.user
            )
            flash.success(
                request,
                f"{link.get_provider_display()} answers HELP itself."
                if answers
                else "StudyText answers HELP with the project's HELP text.",
            )
        elif action == "remove":
            provider_links.provider_link_remove(project=project, actor=request.user)
            flash.success(
                request, "Provider credentials removed. Texts wait until new ones are linked."
            )
        else:
            raise Http404
    except ValidationError as exc:
        flash.error(request, "The provider check failed: " + error_text(exc))
    return redirect("project-provider", pk=project.pk)
