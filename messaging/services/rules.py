"""Message rules: validated against the project's mapping and REDCap before they are saved."""

import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from messaging import piping, segments
from messaging.models import Message, MessageRule
from messaging.scheduling import ScheduleSpec, first_occurrence, zone
from messaging.services import conversations
from messaging.signals import audit
from projects.access import EDITOR, project_role_require
from projects.models import FieldMapping, Project
from projects.redcap import RedcapError, RedcapRequestError
from projects.selectors import project_field_mapping
from projects.services.links import redcap_client_for

Kind, Status, Schedule, Recipients = (
    MessageRule.Kind,
    MessageRule.Status,
    MessageRule.Schedule,
    MessageRule.Recipients,
)
SAMPLE_LINK = "https://redcap.example.edu/surveys/?s=ABCDEFGHJK"
RULE_FIELDS = (
    "kind",
    "name",
    "body",
    "instrument",
    "event",
    "recipients",
    "filter_logic",
    "record_ids",
    "schedule",
    "send_time",
    "once_date",
    "recur_days",
    "start_date",
    "until_date",
    "max_occurrences",
    "date_field",
    "offset_days",
    "stop_when_complete",
    "max_sends",
)


def _validate_body(rule: MessageRule, mapping: FieldMapping | None, errors: dict) -> None:
    body = rule.body.strip()
    if not body:
        errors["body"] = "Write the text of the message."
        return
    unknown = piping.unknown_tokens(body, mapping)
    if unknown:
        allowed = ", ".join(f"[{t}]" for t in sorted(piping.allowed_tokens(mapping)))
        errors["body"] = (
            "Unknown piping field"
            + ("s " if len(unknown) > 1 else " ")
            + ", ".join(f"[{t}]" for t in unknown)
            + f". This project can use: {allowed}."
        )
        return
    used = set(piping.tokens(body))
    if rule.kind == Kind.INVITATION and not used & piping.SURVEY_TOKENS:
        errors["body"] = (
            "A survey invitation must contain [survey-link] or [survey-queue-link], or the "
            "participant has no way to open the survey."
        )
    if "survey-link" in used and not rule.instrument:
        errors["instrument"] = "Choose the survey that [survey-link] opens."
    # The longest the text can get: piped names at a generous 30 characters.
    sample = piping.render(
        body,
        piping.PipingContext(
            values={t: "x" * 30 for t in used},
            survey_link=SAMPLE_LINK,
            survey_queue_link=SAMPLE_LINK,
        ),
    )
    if len(sample) > piping.MAX_BODY_CHARS:
        errors["body"] = (
            f"After piping the text can reach {len(sample):,} characters; carriers refuse more "
            f"than {piping.MAX_BODY_CHARS:,}. Shorten it."
        )


def _validate_schedule(rule: MessageRule, project: Project, mapping, errors: dict) -> None:
    today = timezone.now().astimezone(zone(project.time_zone)).date()
    if rule.schedule == Schedule.ONCE:
        if not rule.once_date:
            errors["once_date"] = "Choose the date to send on."
        else:
            due = first_occurrence(ScheduleSpec.from_rule(rule), tz=zone(project.time_zone))
            if due is not None and due <= timezone.now():
                errors["once_date"] = (
                    f"{rule.once_date:%b %-d, %Y} at {rule.send_time:%-I:%M %p} "
                    f"({project.time_zone}) is in the past. Choose a later date or time, or use "
                    "“Send now”."
                )
    elif rule.schedule == Schedule.RECURRING:
        if not rule.start_date:
            errors["start_date"] = "Choose the first day."
        if rule.recur_days and any(d not in range(7) for d in rule.recur_days):
            errors["recur_days"] = "Choose days of the week."
        if rule.start_date and rule.until_date and rule.until_date < rule.start_date:
            errors["until_date"] = "The end date is before the start date."
        elif rule.until_date and rule.until_date < today:
            errors["until_date"] = "The end date is in the past."
        if not rule.until_date and not rule.max_occurrences:
            errors["until_date"] = "Give an end date or a number of times, so the texts stop."
    elif rule.schedule == Schedule.RELATIVE:
        date_fields = list(mapping.date_fields) if mapping else []
        if not rule.date_field:
            errors["date_field"] = "Choose the REDCap date the texts are relative to."
        elif rule.date_field not in date_fields:
            errors["date_field"] = (
                f"{rule.date_field} is not one of the project's date fields"
                + (f" ({', '.join(date_fields)})" if date_fields else "")
                + ". Map it as a date field under Set-up → Fields first."
            )
        if abs(rule.offset_days) > 3650:
            errors["offset_days"] = "Use an offset of at most 3,650 days."


def _validate_with_redcap(rule: MessageRule, project: Project, errors: dict) -> None:
    """Ask REDCap about the parts only REDCap can judge: surveys and filter logic."""
    needs_survey = rule.instrument and (
        "survey-link" in piping.tokens(rule.body) or rule.stop_when_complete
    )
    needs_filter = rule.recipients == Recipients.FILTER
    needs_records = rule.recipients == Recipients.RECORDS and bool(rule.record_ids)
    if not (needs_survey or needs_filter or needs_records or rule.instrument):
        return
    try:
        client = redcap_client_for(project)
    except ValidationError as exc:
        errors["instrument" if rule.instrument else "record_ids"] = " ".join(exc.messages)
        return
    try:
        if rule.instrument:
            names = {i["instrument_name"] for i in client.instruments()}
            if rule.instrument not in names:
                errors["instrument"] = f"REDCap has no instrument named “{rule.instrument}”."
                return
        if needs_survey:
            try:
                client.participant_list(instrument=rule.instrument, event=rule.event or None)
            except RedcapRequestError as exc:
                errors["instrument"] = (
                    f"{rule.instrument} is not a survey in REDCap, so it has no survey link "
                    f"(REDCap said: {exc}). Enable it as a survey, or choose another instrument."
                )
        if needs_filter:
            try:
                client.records(fields=[client.record_id_field()], filter_logic=rule.filter_logic)
            except RedcapRequestError as exc:
                errors["filter_logic"] = f"REDCap rejected this filter: {exc}"
        if needs_records:
            missing = _records_missing(client, rule.record_ids)
            if missing:
                errors["record_ids"] = _records_missing_message(missing)
    except RedcapError as exc:
        errors["__all__"] = f"REDCap could not be reached to check the rule: {exc}"


def _records_missing(client, record_ids: list[str]) -> list[str]:
    """The chosen record ids REDCap does not have (one export of their ids, in batches)."""
    id_field = client.record_id_field()
    found = {
        str(row.get(id_field, "")) for row in client.records(records=record_ids, fields=[id_field])
    }
    return [r for r in dict.fromkeys(record_ids) if r not in found]


def _records_missing_message(missing: list[str]) -> str:
    shown = [f"“{r}”" for r in missing[:10]]
    if len(missing) > 10:
        shown.append(f"{len(missing) - 10:,} more")
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
    return (
        f"REDCap has no record{'s' if len(missing) > 1 else ''} {listed}. Use record ids "
        "that exist in REDCap (the Participants page lists them)."
    )


def validate(rule: MessageRule, *, check_redcap: bool = True) -> None:
    project = rule.project
    mapping = project_field_mapping(project=project)
    errors: dict[str, str] = {}
    if not rule.name.strip():
        errors["name"] = "Give the message a name the team will recognise."
    if rule.kind not in Kind.values:
        errors["kind"] = "Choose invitation, reminder, follow-up, alert or text survey."
    elif rule.kind == Kind.TEXT_SURVEY and not conversations.text_survey_settings_given(rule):
        errors["kind"] = (
            "A text survey needs its settings (closing and invalid-answer texts, time limit): "
            "create it on the project's Messages page."
        )
    _validate_body(rule, mapping, errors)
    if rule.recipients == Recipients.FILTER and not rule.filter_logic.strip():
        errors["filter_logic"] = "Write the REDCap logic that picks the recipients."
    if rule.recipients == Recipients.RECORDS and not rule.record_ids:
        errors["record_ids"] = "List the record ids to text."
    if rule.stop_when_complete and not rule.instrument:
        errors["instrument"] = "Choose the survey whose completion stops the reminders."
    if rule.max_sends is not None and rule.max_sends < 1:
        errors["max_sends"] = "Use a number of texts of at least 1."
    _validate_schedule(rule, project, mapping, errors)
    if not errors and check_redcap:
        _validate_with_redcap(rule, project, errors)
    if errors:
        raise ValidationError(errors)


def rule_save(
    *, project: Project, actor, data: dict[str, Any], rule: MessageRule | None = None
) -> MessageRule:
    """Create or edit a rule. Editing an active rule keeps it active."""
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="change its messages")
    creating = rule is None
    if rule is None:
        rule = MessageRule(project=project, created_by=actor)
    elif rule.project_id != project.pk:
        raise PermissionDenied("That message belongs to another project.")
    if rule.status == Status.ARCHIVED:
        raise ValidationError("This message is archived; duplicate it to use it again.")
    for field in RULE_FIELDS:
        if field in data:
            setattr(rule, field, data[field])
    rule.body = rule.body.strip()
    rule.record_ids = [str(r).strip() for r in rule.record_ids or [] if str(r).strip()]
    validate(rule)
    with transaction.atomic():
        rule.save()
        audit.send(
            sender=MessageRule,
            actor=actor,
            action="message_rule.created" if creating else "message_rule.changed",
            obj=rule,
            message=f"{rule.get_kind_display()} “{rule.name}” "
            f"{'created' if creating else 'changed'}.",
        )
    return rule


def rule_set_status(*, rule: MessageRule, status: str, actor) -> MessageRule:
    """Activate, pause or archive. Pausing stops the rule's releases at once."""
    project_role_require(
        user=actor, project=rule.project, min_role=EDITOR, doing="change its messages"
    )
    if status not in Status.values or status == Status.DRAFT:
        raise ValidationError("Choose activate, pause or archive.")
    if rule.status == Status.ARCHIVED:
        raise ValidationError("This message is archived.")
    if status == Status.ACTIVE:
        validate(rule)
    with transaction.atomic():
        rule = MessageRule.objects.select_for_update(no_key=True).get(pk=rule.pk)
        old = rule.status
        rule.status = status
        if status == Status.ACTIVE and rule.materialized_through is None:
            # Only occurrences from now on: activating does not send the past.
            rule.materialized_through = timezone.now()
        rule.save(update_fields=["status", "materialized_through", "updated_at"])
        if status == Status.ARCHIVED:
            Message.objects.filter(rule=rule, status__in=["queued", "held"]).update(
                status=Message.Status.CANCELLED,
                error="The message was archived.",
                updated_at=timezone.now(),
            )
        audit.send(
            sender=MessageRule,
            actor=actor,
            action=f"message_rule.{status}",
            obj=rule,
            message=f"“{rule.name}”: {Status(old).label.lower()} → {Status(status).label.lower()}.",
        )
    return rule


def body_preview(*, body: str, context: piping.PipingContext) -> dict:
    text = piping.render(body, context)
    count = segments.count(text)
    return {
        "text": text,
        "characters": count.characters,
        "encoding": count.encoding,
        "segments": count.segments,
        "ucs2_char": getattr(count, "first_ucs2_char", None) or "",
        "too_long": len(text) > piping.MAX_BODY_CHARS,
    }


def default_start(project: Project) -> datetime.date:
    return timezone.now().astimezone(zone(project.time_zone)).date()
