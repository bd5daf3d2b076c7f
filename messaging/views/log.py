"""The message log (its filters, keyset pages and CSV export), and cancelling a waiting text."""

import datetime

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from billing.exports import csv_response
from messaging import paging, selectors
from messaging.models import Message, MessageRule, Send
from messaging.services import outbox
from messaging.signals import audit
from messaging.views.common import can_edit
from projects.access import project_get_for_user
from projects.forms import error_text
from projects.models import Membership

Role = Membership.Role


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
            "can_edit": can_edit(role),
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
