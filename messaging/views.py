import csv

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from billing.selectors import account_usage
from messaging import piping, selectors
from messaging.forms import AdhocForm, ProviderLinkForm, RuleForm
from messaging.models import Message, MessageRule, Send
from messaging.services import outbox, provider_links, rules
from messaging.signals import audit
from projects.access import project_get_for_user
from projects.models import FieldMapping, Membership, Participant, ProviderLink
from projects.redcap import RedcapError
from projects.services.links import (
    provider_link_remove,
    provider_link_resume,
    redcap_client_for,
)

Role = Membership.Role


def _errors(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _form_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errs in exc.message_dict.items():
            form.add_error(name if name in form.fields else None, errs)
    else:
        form.add_error(None, exc.messages)


def _instruments(project) -> tuple[list[tuple[str, str]], str]:
    try:
        rows = redcap_client_for(project).instruments()
    except (RedcapError, ValidationError) as exc:
        message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
        return [], message
    return [(r["instrument_name"], r["instrument_label"]) for r in rows], ""


# --- Rules --------------------------------------------------------------------------------
@login_required
def rule_list(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    return render(
        request,
        "messaging/rule_list.html",
        {
            "project": project,
            "role": role,
            "rules": selectors.rules_for_project(project=project),
            "recent_sends": Send.objects.filter(project=project).select_related("rule")[:5],
            "has_provider": ProviderLink.objects.filter(project=project).exists(),
            "tab": "messages",
        },
    )


def _rule_form(request, project, role, rule=None):
    mapping = FieldMapping.objects.filter(project=project).first()
    instruments, redcap_error = _instruments(project)
    form = RuleForm(
        request.POST or None,
        instance=rule,
        instruments=instruments,
        date_fields=list(mapping.date_fields) if mapping else [],
        initial=None if rule else {"start_date": rules.default_start(project)},
    )
    if request.method == "POST":
        project, role = project_get_for_user(user=request.user, pk=project.pk, min_role=Role.EDITOR)
        if form.is_valid():
            try:
                saved = rules.rule_save(
                    project=project, actor=request.user, data=form.service_data(), rule=rule
                )
                if "activate" in request.POST and saved.status != MessageRule.Status.ACTIVE:
                    saved = rules.rule_set_status(
                        rule=saved, status=MessageRule.Status.ACTIVE, actor=request.user
                    )
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                flash.success(
                    request, f"“{saved.name}” saved ({saved.get_status_display().lower()})."
                )
                return redirect("rule-detail", pk=project.pk, rule_id=saved.pk)
    participants = outbox.textable_participants(project=project).order_by("record_id")[:200]
    return render(
        request,
        "messaging/rule_form.html",
        {
            "project": project,
            "role": role,
            "form": form,
            "rule": rule,
            "redcap_error": redcap_error,
            "preview_participants": participants,
            "piping_names": sorted(piping.allowed_tokens(mapping)),
            "tab": "messages",
        },
    )


@login_required
def rule_create(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    return _rule_form(request, project, role)


@login_required
def rule_edit(request, pk: int, rule_id: int):
    project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    rule = get_object_or_404(MessageRule, pk=rule_id, project=project)
    return _rule_form(request, project, role, rule)


@login_required
def rule_detail(request, pk: int, rule_id: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    rule = get_object_or_404(MessageRule, pk=rule_id, project=project)
    recent = selectors.messages_for_project(project=project, rule_id=rule.pk)[:20]
    return render(
        request,
        "messaging/rule_detail.html",
        {
            "project": project,
            "role": role,
            "rule": rule,
            "recent": recent,
            "sends": rule.sends.all()[:10],
            "tab": "messages",
        },
    )


@login_required
@require_POST
def rule_status(request, pk: int, rule_id: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    rule = get_object_or_404(MessageRule, pk=rule_id, project=project)
    try:
        rules.rule_set_status(rule=rule, status=request.POST.get("status", ""), actor=request.user)
    except ValidationError as exc:
        flash.error(request, _errors(exc))
    else:
        flash.success(request, "Saved.")
    return redirect("rule-detail", pk=project.pk, rule_id=rule.pk)


@login_required
@require_POST
def rule_send_now(request, pk: int, rule_id: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    rule = get_object_or_404(MessageRule, pk=rule_id, project=project)
    try:
        send = outbox.send_now(rule=rule, actor=request.user)
    except ValidationError as exc:
        flash.error(request, _errors(exc))
        return redirect("rule-detail", pk=project.pk, rule_id=rule.pk)
    return redirect("send-detail", pk=project.pk, send_id=send.pk)


@login_required
@require_POST
def rule_preview(request, pk: int):
    """Live preview: the text for a chosen participant, its encoding, segments and cost."""
    project, _ = project_get_for_user(user=request.user, pk=pk)
    mapping = FieldMapping.objects.filter(project=project).first()
    body = request.POST.get("body", "")
    participant = None
    pid = request.POST.get("participant", "")
    if pid.isdigit():
        participant = Participant.objects.filter(project=project, pk=int(pid)).first()
    values = (
        piping.participant_values(participant, mapping)
        if participant
        else {t: f"[{t}]" for t in piping.allowed_tokens(mapping)}
    )
    context = piping.PipingContext(
        values=values, survey_link=rules.SAMPLE_LINK, survey_queue_link=rules.SAMPLE_LINK
    )
    result = rules.body_preview(body=body, context=context)
    result["unknown"] = piping.unknown_tokens(body, mapping)
    recipients = outbox.textable_participants(project=project)
    if request.POST.get("recipients") == MessageRule.Recipients.RECORDS:
        ids = [r for r in request.POST.get("record_ids", "").replace(",", " ").split() if r]
        recipients = recipients.filter(record_id__in=ids)
    count = recipients.count()
    units_each = result["segments"] if rules_unit_is_segment() else 1
    usage = account_usage(account=project.account).period
    remaining = max(usage.included + usage.credits - usage.used, 0) if usage else 0
    result.update(
        {
            "recipients": count,
            "recipients_note": "before the REDCap filter"
            if request.POST.get("recipients") == MessageRule.Recipients.FILTER
            else "",
            "cost": count * units_each,
            "unit": "segment" if rules_unit_is_segment() else "message",
            "remaining": remaining,
        }
    )
    return JsonResponse(result)


def rules_unit_is_segment() -> bool:
    from django.conf import settings

    return settings.QUOTA_UNIT == "segment"


# --- Sends, the log, participants -------------------------------------------------------
@login_required
def send_detail(request, pk: int, send_id: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    send = get_object_or_404(
        Send.objects.select_related("rule", "created_by"), pk=send_id, project=project
    )
    progress = selectors.send_progress(send=send)
    if request.GET.get("format") == "json":
        return JsonResponse(progress)
    return render(
        request,
        "messaging/send_detail.html",
        {"project": project, "role": role, "send": send, "progress": progress, "tab": "messages"},
    )


def _log_filters(request) -> dict:
    rule = request.GET.get("rule", "")
    return {
        "status": request.GET.get("status", ""),
        "rule_id": int(rule) if rule.isdigit() else None,
        "record": request.GET.get("record", ""),
        "since": parse_date(request.GET.get("since", "") or "")
        if request.GET.get("since")
        else None,
        "until": parse_date(request.GET.get("until", "") or "")
        if request.GET.get("until")
        else None,
    }


@login_required
def message_log(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    filters = _log_filters(request)
    page = Paginator(selectors.messages_for_project(project=project, **filters), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "messaging/log.html",
        {
            "project": project,
            "role": role,
            "page": page,
            "filters": request.GET,
            "statuses": Message.Status.choices,
            "rules": MessageRule.objects.filter(project=project).only("pk", "name"),
            "tab": "log",
        },
    )


class _Echo:
    def write(self, value):
        return value


@login_required
def message_log_csv(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk)
    qs = selectors.messages_for_project(project=project, **_log_filters(request))
    audit.send(
        sender=Message,
        actor=request.user,
        action="message_log.exported",
        obj=project,
        message="Message log exported as CSV.",
        data={k: v for k, v in request.GET.items()},
    )
    tz = timezone.get_current_timezone()
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(
            [
                "message_id",
                "record_id",
                "phone",
                "message",
                "kind",
                "status",
                "due",
                "sent",
                "delivered",
                "segments",
                "units",
                "error",
            ]
        )
        for m in qs.iterator(chunk_size=1000):
            yield writer.writerow(
                [
                    m.pk,
                    m.participant.record_id,
                    m.participant.masked_phone,
                    m.rule.name if m.rule else "ad hoc",
                    m.kind,
                    m.status,
                    m.due_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    m.sent_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if m.sent_at else "",
                    m.delivered_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
                    if m.delivered_at
                    else "",
                    m.segments,
                    m.units,
                    m.error,
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="messages-project-{project.pk}.csv"'
    return response


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
                _form_errors(form, exc)
            else:
                flash.success(
                    request, "Text queued; it goes out within the participant's quiet hours."
                )
                return redirect("participant-detail", pk=project.pk, participant_id=participant.pk)
    return render(
        request,
        "messaging/participant_detail.html",
        {
            "project": project,
            "role": role,
            "participant": participant,
            "texts": selectors.participant_messages(participant=participant)[:100],
            "form": form,
            "textable": outbox.textable_participants(project=project)
            .filter(pk=participant.pk)
            .exists(),
            "tab": "participants",
        },
    )


@login_required
@require_POST
def message_cancel(request, pk: int, message_id: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    message = get_object_or_404(Message, pk=message_id, project=project)
    try:
        outbox.message_cancel(message=message, actor=request.user)
    except ValidationError as exc:
        flash.error(request, _errors(exc))
    else:
        flash.success(request, "Text cancelled.")
    return redirect("message-log", pk=project.pk)


# --- The provider link ------------------------------------------------------------------
@sensitive_post_parameters("api_key", "auth_token")
@login_required
def provider_link(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    link = ProviderLink.objects.filter(project=project).first()
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
                _form_errors(form, exc)
            else:
                next_step = (
                    ""
                    if FieldMapping.objects.filter(project=project).exists()
                    else " Next, map the REDCap fields."
                )
                flash.success(
                    request, f"{link.get_provider_display()} linked and checked.{next_step}"
                )
                return redirect("project-provider", pk=project.pk)
    return render(
        request,
        "messaging/provider_link.html",
        {"project": project, "role": role, "form": form, "link": link, "tab": "setup"},
    )


@login_required
@require_POST
def provider_link_action(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    link = ProviderLink.objects.filter(project=project).first()
    if link is None:
        raise Http404
    action = request.POST.get("action")
    try:
        if action == "test":
            description = provider_links.provider_link_test(link=link, actor=request.user)
            flash.success(request, f"Connected: {description.rstrip('.')}.")
        elif action == "resume":
            provider_link_resume(link=link, actor=request.user)
            outbox.kick_sender()
            flash.success(request, "Sending resumed.")
        elif action == "remove":
            provider_link_remove(project=project, actor=request.user)
            flash.success(
                request, "Provider credentials removed. Texts wait until new ones are linked."
            )
        else:
            raise Http404
    except ValidationError as exc:
        flash.error(request, "The provider check failed: " + _errors(exc))
    return redirect("project-provider", pk=project.pk)


# --- The sandbox phone simulator --------------------------------------------------------
@login_required
def phone_simulator(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    link = ProviderLink.objects.filter(project=project).first()
    if link is None or link.provider != ProviderLink.Provider.SANDBOX:
        raise Http404("This project does not use the sandbox phone simulator.")
    return render(
        request,
        "messaging/simulator.html",
        {
            "project": project,
            "role": role,
            "phones": selectors.simulator_phones(project=project),
            "tab": "simulator",
        },
    )
