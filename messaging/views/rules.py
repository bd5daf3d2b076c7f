"""A project's messages (rules): the list, the form with its live preview, a rule's page, its
status and "Send now"."""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.selectors import account_usage
from billing.services import quota_unit_label, quota_units_for
from messaging import piping, selectors
from messaging.forms import RuleForm, TextSurveyForm, split_record_ids
from messaging.models import MessageRule, Send, TextSurvey
from messaging.services import outbox, rules, text_surveys
from messaging.views.common import can_edit, missing_setup_steps, sees_account, sending_hours
from projects.access import project_get_for_user, role_at_least
from projects.forms import error_text, form_apply_errors
from projects.models import Membership, Participant, ProviderLink
from projects.redcap import RedcapError
from projects.selectors import (
    in_redcap_order,
    project_field_mapping,
)
from projects.services.links import redcap_client_for

Role = Membership.Role
# The text survey's settings the service names, as the form names them.
SURVEY_FORM_NAMES = {"time_limit": "time_limit_hours", "reminder_before": "reminder_hours"}


def _instruments(project) -> tuple[list[tuple[str, str]], str]:
    try:
        rows = redcap_client_for(project).instruments()
    except (RedcapError, ValidationError) as exc:
        message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
        return [], message
    return [(r["instrument_name"], r["instrument_label"]) for r in rows], ""


@login_required
def rule_list(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    show_archived = request.GET.get("archived") == "1"
    rule_rows = selectors.rules_for_project(project=project, archived=show_archived)
    return render(
        request,
        "messaging/rule_list.html",
        {
            "project": project,
            "role": role,
            "can_edit": can_edit(role),
            "rules": rule_rows,
            "counts_since": selectors.rules_since(),
            "show_archived": show_archived,
            "archived_count": 0
            if show_archived
            else MessageRule.objects.filter(
                project=project, status=MessageRule.Status.ARCHIVED
            ).count(),
            "held_total": sum(r.held_count for r in rule_rows),
            "sees_account": sees_account(request.user, project),
            "recent_sends": Send.objects.filter(project=project).select_related(
                "rule", "created_by"
            )[:5],
            "missing_steps": missing_setup_steps(project),
            "provider_paused": ProviderLink.objects.filter(
                project=project, is_paused=True
            ).exists(),
            "outages": selectors.project_outages(project=project),
            "tab": "messages",
        },
    )


def _rule_form(request, project, role, rule=None):
    mapping = project_field_mapping(project=project)
    instruments, redcap_error = _instruments(project)
    form = RuleForm(
        request.POST or None,
        instance=rule,
        instruments=instruments,
        date_fields=list(mapping.date_fields) if mapping else [],
        project=project,
        initial=None if rule else {"start_date": rules.default_start(project)},
        can_set_alert_emails=role_at_least(role, Role.OWNER),
    )
    text_survey = getattr(rule, "text_survey", None) if rule is not None else None
    survey_form = TextSurveyForm(request.POST or None, survey=text_survey)
    if request.method == "POST":
        project, role = project_get_for_user(user=request.user, pk=project.pk, min_role=Role.EDITOR)
        is_survey = request.POST.get("kind") == MessageRule.Kind.TEXT_SURVEY
        if form.is_valid() and (not is_survey or survey_form.is_valid()):
            try:
                if is_survey:
                    saved = text_surveys.text_survey_rule_save(
                        project=project,
                        actor=request.user,
                        data=form.service_data(),
                        survey_data=survey_form.service_data(),
                        rule=rule,
                    )
                else:
                    saved = rules.rule_save(
                        project=project, actor=request.user, data=form.service_data(), rule=rule
                    )
                if "activate" in request.POST and saved.status != MessageRule.Status.ACTIVE:
                    saved = rules.rule_set_status(
                        rule=saved, status=MessageRule.Status.ACTIVE, actor=request.user
                    )
            except ValidationError as exc:
                if is_survey and hasattr(exc, "error_dict"):
                    named = {SURVEY_FORM_NAMES.get(k, k): v for k, v in exc.error_dict.items()}
                    for name in [k for k in named if k in survey_form.fields]:
                        survey_form.add_error(name, named.pop(name))
                    if named:
                        form_apply_errors(form, ValidationError(named))
                else:
                    form_apply_errors(form, exc)
            else:
                flash.success(
                    request, f"“{saved.name}” saved ({saved.get_status_display().lower()})."
                )
                return redirect("rule-detail", pk=project.pk, rule_id=saved.pk)
    participants = in_redcap_order(outbox.textable_participants(project=project))[:200]
    return render(
        request,
        "messaging/rule_form.html",
        {
            "project": project,
            "role": role,
            "form": form,
            "rule": rule,
            "redcap_error": redcap_error,
            "survey_form": survey_form,
            "text_survey": text_survey,
            "preview_participants": participants,
            "piping_names": sorted(piping.allowed_tokens(mapping)),
            "piping_dates": bool(mapping and mapping.date_fields),
            "sending_hours": sending_hours(project),
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
            "can_edit": can_edit(role),
            "recent": recent,
            "team_alerts": rule.team_alerts.select_related("participant")[:20]
            if rule.notify_team
            else [],
            "sends": rule.sends.select_related("created_by")[:10],
            "test_participants": in_redcap_order(outbox.textable_participants(project=project))[
                :200
            ],
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
        flash.error(request, error_text(exc))
    else:
        flash.success(request, "Saved.")
    return redirect("rule-detail", pk=project.pk, rule_id=rule.pk)


@login_required
def rule_send_now(request, pk: int, rule_id: int):
    """GET: the confirmation (who received it, who waits, who would get it); POST: send."""
    project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    rule = get_object_or_404(MessageRule, pk=rule_id, project=project)
    if request.method == "POST":
        try:
            send = outbox.send_now(
                rule=rule, actor=request.user, audience=request.POST.get("audience", "new")
            )
        except ValidationError as exc:
            flash.error(request, error_text(exc))
            return redirect("rule-detail", pk=project.pk, rule_id=rule.pk)
        return redirect("send-detail", pk=project.pk, send_id=send.pk)
    try:
        audience, problem = outbox.send_now_audience(rule=rule), ""
    except ValidationError as exc:
        audience, problem = None, error_text(exc)
    return render(
        request,
        "messaging/send_confirm.html",
        {
            "project": project,
            "role": role,
            "rule": rule,
            "audience": audience,
            "problem": problem,
            "last_send": rule.sends.order_by("-created_at").first(),
            "tab": "messages",
        },
    )


@login_required
@require_POST
def rule_preview(request, pk: int):
    """Live preview: the text for a chosen participant, its encoding, segments and cost."""
    project, _ = project_get_for_user(user=request.user, pk=pk)
    mapping = project_field_mapping(project=project)
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
    blank = piping.missing_values(body, context) if participant else []
    result["missing"] = [t for t in blank if t not in result["unknown"]]
    recipients = outbox.textable_participants(project=project)
    if request.POST.get("recipients") == MessageRule.Recipients.RECORDS:
        # Split as the form does: "1;2" counted nobody before.
        ids = split_record_ids(request.POST.get("record_ids", ""))
        recipients = recipients.filter(record_id__in=ids)
    count = recipients.count()
    usage = account_usage(account=project.account).period
    remaining = max(usage.included + usage.credits - usage.used, 0) if usage else 0
    result.update(
        {
            "recipients": count,
            "recipients_note": "before the REDCap filter"
            if request.POST.get("recipients") == MessageRule.Recipients.FILTER
            else "",
            "cost": quota_units_for(messages=count, segments=count * result["segments"]),
            "unit": quota_unit_label(1),
            "remaining": remaining,
        }
    )
    return JsonResponse(result)


@login_required
def survey_results(request, pk: int, rule_id: int):
    """A text survey's results: completion, median time, answers per question."""
    project, role = project_get_for_user(user=request.user, pk=pk)
    rule = get_object_or_404(
        MessageRule, pk=rule_id, project=project, kind=MessageRule.Kind.TEXT_SURVEY
    )
    return render(
        request,
        "messaging/survey_results.html",
        {
            "project": project,
            "role": role,
            "rule": rule,
            "results": selectors.survey_results(rule=rule),
            "tab": "messages",
        },
    )


@login_required
@require_POST
def survey_check(request, pk: int):
    """The rule form's "Check the instrument": what a text survey would ask and refuse, and
    its worst-case cost, read from REDCap before anything is saved (an HTML fragment)."""
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    form = TextSurveyForm(request.POST)
    survey = TextSurvey()
    if form.is_valid():
        for name, value in form.service_data().items():
            setattr(survey, name, "" if value is None and name.endswith("_text") else value)
    try:
        read, cost = text_surveys.text_survey_inspect(
            project=project,
            instrument=request.POST.get("instrument", ""),
            event=request.POST.get("event", ""),
            survey=survey,
            intro=request.POST.get("body", ""),
        )
    except ValidationError as exc:
        return render(request, "messaging/_text_survey_check.html", {"problem": error_text(exc)})
    survey.askable = [q.field for q in read.questions]
    survey.refused = [str(s) for s in read.refused]
    survey.cost_texts, survey.cost_segments = cost.texts, cost.segments
    return render(
        request,
        "messaging/_text_survey_check.html",
        {"survey": survey, "warnings": read.warnings},
    )


@login_required
@require_POST
def rule_recipient_count(request, pk: int):
    """Start counting the form's recipients after the REDCap filter (a task); the answer holds
    the address to poll."""
    from messaging.services.recipient_count import recipient_count_start

    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    try:
        token = recipient_count_start(
            project=project,
            actor=request.user,
            recipients=request.POST.get("recipients", ""),
            filter_logic=request.POST.get("filter_logic", ""),
            record_ids=split_record_ids(request.POST.get("record_ids", "")),
        )
    except ValidationError as exc:
        return JsonResponse({"status": "error", "message": " ".join(exc.messages)}, status=400)
    return JsonResponse(
        {"status": "pending", "poll": reverse("rule-recipient-count-result", args=[pk, token])}
    )


@login_required
def rule_recipient_count_result(request, pk: int, token: str):
    from messaging.services.recipient_count import recipient_count_result

    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    return JsonResponse(recipient_count_result(project=project, actor=request.user, token=token))
