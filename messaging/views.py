import datetime

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import time_format
from django.utils.dateparse import parse_date
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from billing.access import account_role
from billing.exports import csv_response
from billing.selectors import account_usage
from billing.services import quota_unit_label, quota_units_for
from messaging import paging, piping, selectors
from messaging.forms import AdhocForm, ProviderLinkForm, RuleForm, split_record_ids
from messaging.gateways import delivers_to_simulator
from messaging.models import WEEKDAY_NAMES, Message, MessageRule, Send
from messaging.services import inbound, outbox, provider_links, rules
from messaging.signals import audit
from projects.access import project_get_for_user, role_at_least
from projects.forms import error_text, form_apply_errors
from projects.models import Membership, Participant, ProviderLink
from projects.redcap import RedcapError
from projects.selectors import (
    in_redcap_order,
    project_field_mapping,
    project_provider_link,
    project_setup_state,
)
from projects.services.links import redcap_client_for

Role = Membership.Role


def _instruments(project) -> tuple[list[tuple[str, str]], str]:
    try:
        rows = redcap_client_for(project).instruments()
    except (RedcapError, ValidationError) as exc:
        message = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
        return [], message
    return [(r["instrument_name"], r["instrument_label"]) for r in rows], ""


def _can_edit(role) -> bool:
    return role_at_least(role, Role.EDITOR)


def _sending_hours(project) -> str:
    """The project's sending window in words: "between 9:00 a.m. and 8:00 p.m., Mon–Fri"."""
    start, end = project.send_window_start, project.send_window_end
    if start <= datetime.time(0, 0) and end >= datetime.time(23, 59):
        hours = "at any hour"
    else:
        hours = f"between {time_format(start, 'g:i a')} and {time_format(end, 'g:i a')}"
    days = sorted(set(project.send_days or []))
    if len(days) == 7:
        return f"{hours}, every day"
    if days == [0, 1, 2, 3, 4]:
        return f"{hours}, Monday to Friday"
    return f"{hours}, on " + ", ".join(WEEKDAY_NAMES[d] for d in days if 0 <= d < 7)


def _sees_account(user, project) -> bool:
    """Whether the billing account's page would open for this user (a project member need not
    be on the account: a link would be a 404)."""
    return account_role(user=user, account=project.account) is not None


def _missing_setup_steps(project) -> list[tuple[str, str]]:
    """Set-up steps still to do before anything can be sent, with where to do them."""
    setup = project_setup_state(project=project)
    steps = [
        ("redcap", "link REDCap", reverse("project-redcap", args=[project.pk])),
        ("provider", "link the SMS provider", reverse("project-provider", args=[project.pk])),
        ("mapping", "map the fields", reverse("project-fields", args=[project.pk])),
        ("synced", "sync the participants", reverse("project-participants", args=[project.pk])),
    ]
    return [(label, url) for key, label, url in steps if not setup[key]]


# --- Rules --------------------------------------------------------------------------------
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
            "can_edit": _can_edit(role),
            "rules": rule_rows,
            "counts_since": selectors.rules_since(),
            "show_archived": show_archived,
            "archived_count": 0
            if show_archived
            else MessageRule.objects.filter(
                project=project, status=MessageRule.Status.ARCHIVED
            ).count(),
            "held_total": sum(r.held_count for r in rule_rows),
            "sees_account": _sees_account(request.user, project),
            "recent_sends": Send.objects.filter(project=project).select_related(
                "rule", "created_by"
            )[:5],
            "missing_steps": _missing_setup_steps(project),
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
            "preview_participants": participants,
            "piping_names": sorted(piping.allowed_tokens(mapping)),
            "piping_dates": bool(mapping and mapping.date_fields),
            "sending_hours": _sending_hours(project),
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
            "can_edit": _can_edit(role),
            "recent": recent,
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


# --- Sends, the log, participants -------------------------------------------------------
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
            "can_edit": _can_edit(role),
            "sees_account": _sees_account(request.user, project),
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


DATE_FILTERS = {"since": "Due from", "until": "Due until"}


def _log_filters(request) -> tuple[dict, list[str]]:
    """The log's filters from the query string, and what was wrong with them, in words. A
    date that cannot be read, or a range that ends before it starts, is not applied."""
    rule, send = request.GET.get("rule", ""), request.GET.get("send", "")
    errors: list[str] = []
    dates: dict[str, datetime.date | None] = {}
    for name, label in DATE_FILTERS.items():
        raw = request.GET.get(name, "").strip()
        try:
            dates[name] = parse_date(raw) if raw else None
        except ValueError:
            dates[name] = None
        if raw and dates[name] is None:
            errors.append(
                f"“{label}” must be a date such as 2026-03-31; “{raw[:40]}” is not one, "
                "so it was left out."
            )
    if dates["since"] and dates["until"] and dates["until"] < dates["since"]:
        errors.append(
            f"“Due until” ({dates['until']:%b %-d, %Y}) is before “Due from” "
            f"({dates['since']:%b %-d, %Y}), so no text could match: the dates were left out. "
            "Swap them to see the texts due between those days."
        )
        dates = {"since": None, "until": None}
    filters = {
        "status": selectors.log_status_filter(request.GET.get("status", "")),
        "rule_id": int(rule) if rule.isdigit() else None,
        "send_id": int(send) if send.isdigit() else None,
        "record": request.GET.get("record", "").strip(),
        **dates,
    }
    return filters, errors


@login_required
def message_log(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    filters, errors = _log_filters(request)
    try:
        cursor = paging.cursor_from(request.GET)
    except paging.CursorError as exc:
        errors.append(exc.message)
        cursor = None
    page = paging.keyset_page(selectors.messages_for_project(project=project, **filters), cursor)
    send = (
        Send.objects.filter(project=project, pk=filters["send_id"]).select_related("rule").first()
        if filters["send_id"]
        else None
    )
    return render(
        request,
        "messaging/log.html",
        {
            "project": project,
            "role": role,
            "can_edit": _can_edit(role),
            "page": page,
            "filters": request.GET,
            "filter_errors": errors,
            "filtered": any(filters.values()),
            "paged": cursor is not None,
            "send": send,
            "statuses": [
                *Message.Status.choices,
                # The groups the overview's counts link to, so the filter shows what was asked.
                (selectors.SUMMARY_FILTERS["sent"], "Sent or delivered"),
                (selectors.SUMMARY_FILTERS["waiting"], "Waiting to go out (queued or sending)"),
                (selectors.FAILED_OR_UNDELIVERED, "Failed or not delivered"),
                (selectors.SUMMARY_FILTERS["skipped"], "Skipped or cancelled"),
            ],
            "cancellable": (Message.Status.QUEUED, Message.Status.HELD),
            "rules": MessageRule.objects.filter(project=project).only("pk", "name"),
            "tab": "log",
        },
    )


@login_required
def message_log_csv(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk)
    qs = selectors.messages_for_project(project=project, **_log_filters(request)[0])
    audit.send(
        sender=Message,
        actor=request.user,
        action="message_log.exported",
        obj=project,
        message="Message log exported as CSV.",
        data={k: v for k, v in request.GET.items()},
    )
    tz = timezone.get_current_timezone()

    def when(moment) -> str:
        return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else ""

    def rows():
        yield [
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
        for m in qs.iterator(chunk_size=1000):
            yield [
                m.pk,
                "" if m.is_test else m.participant.record_id,
                "staff phone (test)" if m.is_test else m.participant.masked_phone,
                m.rule.name if m.rule else m.occurrence if m.is_test else "ad hoc",
                m.kind,
                m.status,
                when(m.due_at),
                when(m.sent_at),
                when(m.delivered_at),
                m.segments,
                m.units,
                m.error,
            ]

    return csv_response(rows(), f"messages-project-{project.pk}.csv")


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
                flash.success(
                    request,
                    f"Text queued for record {participant.record_id}: it goes out within the "
                    f"project's sending hours ({_sending_hours(project)}, participant's time).",
                )
                return redirect("participant-detail", pk=project.pk, participant_id=participant.pk)
    return render(
        request,
        "messaging/participant_detail.html",
        {
            "project": project,
            "role": role,
            "participant": participant,
            "can_edit": _can_edit(role),
            "texts": selectors.participant_thread(participant=participant),
            "cancellable": (Message.Status.QUEUED, Message.Status.HELD),
            "delivered_statuses": (Message.Status.SENT, Message.Status.DELIVERED),
            "sending_hours": _sending_hours(project),
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
        flash.error(request, error_text(exc))
    else:
        flash.success(request, f"Text to record {message.participant.record_id} cancelled.")
    # Back where the button was (the log with its filters, or the participant's page).
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("message-log", pk=project.pk)


# --- The provider link ------------------------------------------------------------------
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


# --- The sandbox phone simulator --------------------------------------------------------
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
            "can_edit": _can_edit(role),
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
