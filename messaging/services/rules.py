"""Message rules: validated against the project's mapping and REDCap before they are saved."""

import datetime
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from messaging import piping, segments
from messaging.models import Message, MessageRule
from messaging.scheduling import ScheduleSpec, first_occurrence, zone
from messaging.services import text_surveys
from messaging.signals import audit
from projects.access import EDITOR, OWNER, project_role_require
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
    "trigger",
    "offset",
    "offset_unit",
    "trigger_logic",
    "logic_repeat",
    "anchor_rule",
    "repeat_every_days",
    "repeat_count",
    "notify_team",
    "alert_members",
    "alert_emails",
    "alert_sms",
)
Trigger, Unit = MessageRule.Trigger, MessageRule.OffsetUnit
# Each trigger's `schedule` (the old field the calendar dispatcher reads).
TRIGGER_SCHEDULE = {
    Trigger.ONCE: Schedule.ONCE,
    Trigger.RECURRING: Schedule.RECURRING,
    Trigger.RELATIVE: Schedule.RELATIVE,
    Trigger.MANUAL: Schedule.MANUAL,
    Trigger.LOGIC: Schedule.MANUAL,
    Trigger.COMPLETION: Schedule.MANUAL,
    Trigger.INVITATION: Schedule.MANUAL,
}
MAX_OFFSET = {Unit.DAYS: 3650, Unit.HOURS: 3650 * 24, Unit.MINUTES: 3650 * 24 * 60}


def _validate_body(rule: MessageRule, mapping: FieldMapping | None, errors: dict) -> None:
    body = rule.body.strip()
    if not body:
        errors["body"] = "Write the text of the message."
        return
    # An alert to the team may pipe any REDCap field (checked with REDCap), never the phone.
    unknown = [] if rule.notify_team else piping.unknown_tokens(body, mapping)
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
    elif rule.trigger == Trigger.RELATIVE:
        date_fields = list(mapping.date_fields) if mapping else []
        if not rule.date_field:
            errors["date_field"] = "Choose the REDCap date the texts are relative to."
        elif rule.date_field not in date_fields:
            errors["date_field"] = (
                f"{rule.date_field} is not one of the project's date fields"
                + (f" ({', '.join(date_fields)})" if date_fields else "")
                + ". Map it as a date field under Set-up → Fields first."
            )
        _validate_offset(rule, errors, signed=True)
    elif rule.trigger == Trigger.LOGIC:
        _validate_logic(rule, errors)
    elif rule.trigger == Trigger.COMPLETION:
        if not rule.instrument:
            errors["instrument"] = "Choose the survey whose completion starts the follow-up."
        _validate_offset(rule, errors, signed=False)
    elif rule.trigger == Trigger.INVITATION:
        _validate_reminders(rule, errors)


def _validate_offset(rule: MessageRule, errors: dict, *, signed: bool) -> None:
    if rule.offset_unit not in Unit.values:
        errors["offset_unit"] = "Choose days, hours or minutes."
        return
    unit = Unit(rule.offset_unit).label
    if abs(rule.offset) > MAX_OFFSET[rule.offset_unit]:
        errors["offset"] = f"Use an offset of at most {MAX_OFFSET[rule.offset_unit]:,} {unit}."
    elif not signed and rule.offset < 1:
        errors["offset"] = (
            f"A follow-up goes out after the survey was completed: use at least 1 {unit[:-1]} "
            f"({rule.offset} {unit} would be "
            + ("the moment of completion" if rule.offset == 0 else "before it")
            + "; for that, trigger on REDCap logic instead)."
        )
    elif signed and rule.offset_unit != Unit.DAYS and rule.offset == 0:
        errors["offset"] = (
            f"0 {unit} after the date-time is the date-time itself: give an offset, or choose "
            "days to send at a time of day."
        )


def _validate_logic(rule: MessageRule, errors: dict) -> None:
    from projects.logic import LogicError, parse

    text = rule.trigger_logic.strip()
    if not text:
        errors["trigger_logic"] = "Write the REDCap logic whose becoming true sends the text."
        return
    try:
        parse(text)
    except LogicError as exc:
        errors["trigger_logic"] = f"REDCap would not accept this logic: {exc}"
    if rule.logic_repeat not in MessageRule.LogicRepeat.values:
        errors["logic_repeat"] = "Choose once per record, once per repeat instance or every time."


def _validate_reminders(rule: MessageRule, errors: dict) -> None:
    anchor = rule.anchor_rule
    if anchor is None:
        errors["anchor_rule"] = "Choose the invitation these reminders follow."
    elif anchor.project_id != rule.project_id or anchor.kind != Kind.INVITATION:
        errors["anchor_rule"] = "Choose a survey invitation of this project."
    elif rule.pk and anchor.pk == rule.pk:
        errors["anchor_rule"] = "Reminders cannot follow themselves."
    if not rule.repeat_every_days or rule.repeat_every_days < 1:
        errors["repeat_every_days"] = "Remind every 1 day or more (0 days would text at once)."
    elif rule.repeat_every_days > 365:
        errors["repeat_every_days"] = "Remind at most every 365 days."
    if not rule.repeat_count or rule.repeat_count < 1:
        errors["repeat_count"] = "Send at least 1 reminder."
    elif rule.repeat_count > 50:
        errors["repeat_count"] = "Send at most 50 reminders."
    if not rule.instrument:
        errors["instrument"] = "Choose the survey whose completion stops the reminders."


def _validate_with_redcap(rule: MessageRule, project: Project, errors: dict) -> None:
    """Ask REDCap about the parts only REDCap can judge: surveys and filter logic."""
    needs_survey = rule.instrument and (
        "survey-link" in piping.tokens(rule.body)
        or rule.stop_when_complete
        or rule.trigger in (Trigger.COMPLETION, Trigger.INVITATION)
    )
    needs_filter = rule.recipients == Recipients.FILTER
    needs_records = rule.recipients == Recipients.RECORDS and bool(rule.record_ids)
    needs_logic = rule.trigger == Trigger.LOGIC
    if not (
        needs_survey
        or needs_filter
        or needs_records
        or needs_logic
        or rule.instrument
        or rule.notify_team
    ):
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
                if rule.trigger == Trigger.COMPLETION:
                    errors["instrument"] = (
                        f"{rule.instrument} is not a survey in REDCap, so REDCap records no "
                        f"completion time for it (REDCap said: {exc}). A follow-up needs a "
                        "survey: enable it as a survey, or choose another instrument."
                    )
                else:
                    errors["instrument"] = (
                        f"{rule.instrument} is not a survey in REDCap, so it has no survey "
                        f"link (REDCap said: {exc}). Enable it as a survey, or choose another "
                        "instrument."
                    )
        if rule.notify_team:
            mapping = project_field_mapping(project=project)
            wanted = set(piping.tokens(rule.body)) - {"record_id"}
            wanted -= piping.allowed_tokens(mapping)
            if wanted:
                known = {f["export_field_name"] for f in client.field_names()}
                missing = sorted(wanted - known)
                if missing:
                    errors["body"] = (
                        "REDCap has no field "
                        + ", ".join(f"[{m}]" for m in missing)
                        + " to pipe into the alert."
                    )
        if needs_logic:
            try:
                client.records(fields=[client.record_id_field()], filter_logic=rule.trigger_logic)
            except RedcapRequestError as exc:
                errors["trigger_logic"] = f"REDCap rejected this logic: {exc}"
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


def _members_of(rule: MessageRule) -> list:
    pending = getattr(rule, "_pending_alert_members", None)
    if pending is not None:
        return list(pending)
    return list(rule.alert_members.all()) if rule.pk else []


def validate(rule: MessageRule, *, check_redcap: bool = True) -> None:
    project = rule.project
    mapping = project_field_mapping(project=project)
    errors: dict[str, str] = {}
    if not rule.name.strip():
        errors["name"] = "Give the message a name the team will recognise."
    if rule.kind not in Kind.values:
        errors["kind"] = "Choose invitation, reminder, follow-up, alert or text survey."
    elif rule.kind == Kind.TEXT_SURVEY and not text_surveys.text_survey_settings_given(rule):
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
    if rule.notify_team:
        from messaging.services.alerts import validate_team_alert

        validate_team_alert(rule, _members_of(rule), mapping, errors)
    if rule.trigger not in Trigger.values:
        errors["trigger"] = "Choose what sends the text."
    else:
        _validate_schedule(rule, project, mapping, errors)
    if not errors and check_redcap:
        _validate_with_redcap(rule, project, errors)
    if errors:
        raise ValidationError(errors)


def alert_emails_clean(emails) -> list[str]:
    """An alert's fixed addresses as saved: trimmed, lower case, each once."""
    return list(dict.fromkeys(str(e).strip().lower() for e in emails or [] if str(e).strip()))


def rule_save(
    *, project: Project, actor, data: dict[str, Any], rule: MessageRule | None = None
) -> MessageRule:
    """Create or edit a rule. Editing an active rule keeps it active."""
    if "alert_emails" in data and set(alert_emails_clean(data["alert_emails"])) != set(
        alert_emails_clean(rule.alert_emails if rule else [])
    ):
        # Fixed addresses reach people outside the project: the owner adds or changes them
        # (docs/sending.md, "Alerts to the study team").
        project_role_require(
            user=actor,
            project=project,
            min_role=OWNER,
            doing="add or change an alert's e-mail addresses",
        )
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="change its messages")
    creating = rule is None
    if rule is None:
        rule = MessageRule(project=project, created_by=actor)
    elif rule.project_id != project.pk:
        raise PermissionDenied("That message belongs to another project.")
    if rule.status == Status.ARCHIVED:
        raise ValidationError("This message is archived; duplicate it to use it again.")
    data = dict(data)
    before = (rule.trigger, (rule.trigger_logic or "").strip()) if rule is not None else None
    if "alert_members" in data:  # many-to-many: set after the row is saved
        rule._pending_alert_members = list(data.pop("alert_members") or [])
    # Callers from before triggers name a schedule and an offset in days: the same trigger.
    if "trigger" not in data and "schedule" in data:
        data["trigger"] = data["schedule"]
    if "offset" not in data and "offset_days" in data:
        data["offset"], data["offset_unit"] = data["offset_days"], Unit.DAYS
    for field in RULE_FIELDS:
        if field in data:
            setattr(rule, field, data[field])
    if rule.trigger in TRIGGER_SCHEDULE:
        rule.schedule = TRIGGER_SCHEDULE[rule.trigger]
    if rule.offset_unit == Unit.DAYS:
        rule.offset_days = rule.offset  # the relative schedule's days (the old field)
    if rule.trigger == Trigger.INVITATION:
        rule.stop_when_complete = True  # "until the survey is complete"
        if rule.anchor_rule is not None and not rule.instrument:
            # The invitation's survey, unless another is chosen.
            rule.instrument, rule.event = rule.anchor_rule.instrument, rule.anchor_rule.event
    rule.trigger_logic = (rule.trigger_logic or "").strip()
    rule.body = rule.body.strip()
    rule.record_ids = [str(r).strip() for r in rule.record_ids or [] if str(r).strip()]
    validate(rule)
    # A rule that was activated before and now reacts to a new logic: "becomes true" counts from
    # this save, so who is true now is noted first (docs/sending.md, "Triggers").
    rebaseline = (
        not creating
        and rule.materialized_through is not None
        and rule.trigger == Trigger.LOGIC
        and before != (rule.trigger, rule.trigger_logic)
    )
    with transaction.atomic():
        rule.save()
        if getattr(rule, "_pending_alert_members", None) is not None:
            rule.alert_members.set(rule._pending_alert_members)
        if rebaseline:
            _logic_rebaseline(rule)
        audit.send(
            sender=MessageRule,
            actor=actor,
            action="message_rule.created" if creating else "message_rule.changed",
            obj=rule,
            message=f"{rule.get_kind_display()} “{rule.name}” "
            f"{'created' if creating else 'changed'}.",
        )
    return rule


def _logic_rebaseline(rule: MessageRule) -> None:
    """Forget what was true for the old trigger and note what is true for the new logic, in the
    caller's transaction (`fired` is kept: an "every time" rule's next text gets a new key)."""
    from messaging.models import TriggerState
    from messaging.services.triggers import logic_baseline

    TriggerState.objects.filter(rule=rule, is_true=True).update(
        is_true=False, changed_at=timezone.now()
    )
    try:
        logic_baseline(rule=rule)
    except RedcapError as exc:
        raise ValidationError(
            "REDCap did not answer, so the records for which the new logic is already true "
            f"could not be noted (they would all be texted); nothing was changed: {exc} "
            "Try again."
        ) from exc


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
            if rule.trigger == Trigger.LOGIC:
                # "Becomes true" from now on: records already true are not texted for it.
                from messaging.services.triggers import logic_baseline

                try:
                    logic_baseline(rule=rule)
                except RedcapError as exc:
                    raise ValidationError(
                        f"REDCap did not answer, so the records for which the logic is already "
                        f"true could not be noted (they would all be texted): {exc} Try again."
                    ) from exc
        rule.save(update_fields=["status", "materialized_through", "updated_at"])
        if status == Status.ARCHIVED:
            Message.objects.filter(rule=rule, status__in=["queued", "held"]).update(
                status=Message.Status.CANCELLED,
                error="The message was archived.",
                updated_at=timezone.now(),
            )
            from messaging.services.alerts import team_alerts_cancel

            team_alerts_cancel(rule=rule, reason="Not sent: the alert was archived.")
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
