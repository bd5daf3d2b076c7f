"""Triggers that react to REDCap (docs/sending.md, "Triggers"): "when REDCap logic becomes
true" and "N days or hours after a survey was completed". They are evaluated when REDCap says a
record was saved (the Data Entry Trigger, `projects.signals.record_saved`) and after each
participant sync (the safety net), for the records concerned, always from what REDCap answers
now: REDCap evaluates the logic itself (filterLogic) and reports the completion time.

A text a trigger fires goes into the outbox like any other (a Message with a dedup key), so a
second evaluation of the same save, a DET and a sync that see the same change, or two workers,
cannot text twice.
"""

import datetime
import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from messaging.models import Message, MessageRule, TeamAlert, TriggerState
from messaging.scheduling import UNIT_SECONDS, local_to_utc, zone
from messaging.services.alerts import team_alerts_queue
from messaging.services.outbox import kick_sender, rule_recipients, textable_participants
from projects.logic import fields_used
from projects.models import Participant, Project
from projects.redcap import RedcapError
from projects.services.links import redcap_client_for

logger = logging.getLogger(__name__)
Trigger, Repeat = MessageRule.Trigger, MessageRule.LogicRepeat
REACTING = (Trigger.LOGIC, Trigger.COMPLETION)
NOT_COMPLETED = "[not completed]"


@dataclass
class TriggerReport:
    fired: int = 0
    skipped: int = 0
    alerts: int = 0
    errors: list[str] = field(default_factory=list)


def reacting_rules(*, project_id: int):
    return MessageRule.objects.filter(
        project_id=project_id,
        project__status=Project.Status.ACTIVE,
        status=MessageRule.Status.ACTIVE,
        trigger__in=REACTING,
    ).select_related("project")


def triggers_evaluate(
    *, project_id: int, participant_ids: list[int] | None = None, now=None
) -> TriggerReport:
    """Evaluate the project's active logic and follow-up rules for these participants (all of
    the project's textable ones when None). Each rule on its own: one failing is reported and
    caught up by the next sync."""
    now = now or timezone.now()
    report = TriggerReport()
    for rule in reacting_rules(project_id=project_id):
        try:
            people = _candidates(rule, participant_ids)
            if not people:
                continue
            if rule.trigger == Trigger.LOGIC:
                _evaluate_logic(rule, people, now, report)
            else:
                _evaluate_completion(rule, people, now, report)
        except RedcapError as exc:
            report.errors.append(f"{rule}: REDCap did not answer ({exc}).")
            logger.warning("Rule %s: REDCap did not answer; the next sync retries.", rule.pk)
        except Exception as exc:  # noqa: BLE001 - one rule's failure must not skip the others
            report.errors.append(f"{rule}: could not be evaluated ({type(exc).__name__}).")
            logger.exception("Rule %s could not be evaluated; the next sync retries.", rule.pk)
    if report.fired:
        kick_sender()
    return report


def _candidates(rule: MessageRule, participant_ids) -> dict[str, Participant]:
    """The rule's recipients among these participants, by record id. An alert to the team is
    about any record in REDCap (the participant is not texted, so need not be textable)."""
    if rule.notify_team:
        qs = Participant.objects.filter(project=rule.project, in_redcap=True)
    elif rule.recipients == MessageRule.Recipients.ALL:
        qs = textable_participants(project=rule.project)
    else:
        qs = rule_recipients(rule=rule)
    if participant_ids is not None:
        qs = qs.filter(pk__in=participant_ids)
    return {p.record_id: p for p in qs.only("pk", "record_id", "time_zone")}


def _evaluate_logic(
    rule: MessageRule, people: dict[str, Participant], now, report, *, baseline: bool = False
) -> None:
    """Fire on each false → true change. With `baseline` (the rule being activated), only note
    what is true now: "becomes true" counts from activation, so records already true then are
    not texted for it (docs/sending.md, "Triggers")."""
    client = redcap_client_for(rule.project)
    id_field = client.record_id_field()
    per_instance = rule.logic_repeat == Repeat.INSTANCE
    fields = [id_field, *sorted(fields_used(rule.trigger_logic) - {id_field})]
    # REDCap evaluates the logic: the rows it returns are the ones it is true for.
    rows = client.records(
        records=sorted(people),
        fields=fields if per_instance else [id_field],
        filter_logic=rule.trigger_logic,
    )
    true_keys: set[tuple[str, str]] = set()
    for row in rows:
        record = str(row.get(id_field, ""))
        if record not in people:
            continue
        key = ""
        if per_instance:
            key = "|".join(
                str(row.get(c) or "")
                for c in ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance")
            ).strip("|")
        true_keys.add((record, key))
    pks = [p.pk for p in people.values()]
    with transaction.atomic():
        states = {
            (s.participant_id, s.instance): s
            for s in TriggerState.objects.select_for_update(no_key=True).filter(
                rule=rule, participant_id__in=pks
            )
        }
        fire: list[Message] = []
        added: list[TriggerState] = []
        changed: list[TriggerState] = []
        for record, key in true_keys:
            participant = people[record]
            state = states.get((participant.pk, key))
            if state is not None and state.is_true:
                continue  # still true: it fired when it became true
            if state is None:
                state = TriggerState(rule=rule, participant=participant, instance=key)
                added.append(state)
            else:
                changed.append(state)
            state.is_true, state.changed_at = True, now
            if baseline:
                continue
            state.fired += 1
            if rule.logic_repeat == Repeat.ONCE:
                occurrence = "logic"
            elif per_instance:
                occurrence = f"logic:{key or 'record'}"
            else:
                occurrence = f"logic#{state.fired}"
            fire.append(_message(rule, participant, occurrence, now))
        # Written together: one INSERT and one UPDATE, however many records turned true.
        TriggerState.objects.bulk_create(added)
        TriggerState.objects.bulk_update(changed, ["is_true", "changed_at", "fired"])
        # Those no longer true: a later change back to true is a new edge.
        truthy = {(people[r].pk, k) for r, k in true_keys}
        gone = [s.pk for (pk, k), s in states.items() if s.is_true and (pk, k) not in truthy]
        if gone:
            TriggerState.objects.filter(pk__in=gone).update(is_true=False, changed_at=now)
        _queue(fire, report)


def logic_baseline(*, rule: MessageRule, now=None) -> int:
    """Note, without texting, the records for which the rule's logic is true as it is activated
    (one REDCap export). Returns how many."""
    now = now or timezone.now()
    people = _candidates(rule, None)
    if not people:
        return 0
    _evaluate_logic(rule, people, now, TriggerReport(), baseline=True)
    return TriggerState.objects.filter(rule=rule, is_true=True).count()


def completion_due(rule: MessageRule, completed_at: datetime.datetime, tz) -> datetime.datetime:
    """When a follow-up of a survey completed at `completed_at` falls due: N days later at the
    rule's time of day (participant's local time), or exactly N hours or minutes later."""
    if rule.offset_unit == MessageRule.OffsetUnit.DAYS:
        day = completed_at.astimezone(tz).date() + datetime.timedelta(days=rule.offset)
        return local_to_utc(day, rule.send_time, tz)
    seconds = UNIT_SECONDS[rule.offset_unit] * rule.offset
    return completed_at + datetime.timedelta(seconds=seconds)


def parse_redcap_timestamp(raw: str, tz) -> datetime.datetime | None:
    """REDCap's survey timestamp ("2026-03-08 14:30:05", the REDCap server's local time, read
    in the project's time zone; docs/redcap.md, "Survey completion times")."""
    raw = (raw or "").strip()
    if not raw or raw == NOT_COMPLETED:
        return None
    try:
        local = datetime.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return local_to_utc(local.date(), local.time(), tz)


def _evaluate_completion(rule: MessageRule, people: dict[str, Participant], now, report) -> None:
    client = redcap_client_for(rule.project)
    id_field = client.record_id_field()
    rows = client.records(
        records=sorted(people),
        fields=[id_field, f"{rule.instrument}_complete"],
        events=[rule.event] if rule.event else None,
        survey_fields=True,
    )
    project_tz = zone(rule.project.time_zone)
    fire = []
    for row in rows:
        participant = people.get(str(row.get(id_field, "")))
        if participant is None or row.get("redcap_repeat_instrument"):
            continue
        if str(row.get(f"{rule.instrument}_complete", "")) != "2":
            continue
        completed = parse_redcap_timestamp(row.get(f"{rule.instrument}_timestamp", ""), project_tz)
        if completed is None:
            continue
        tz = zone(participant.time_zone or rule.project.time_zone)
        due = completion_due(rule, completed, tz)
        message = _message(rule, participant, f"done:{rule.instrument}", due)
        if due < now - rule.grace and isinstance(message, TeamAlert):
            message.late = True
        elif due < now - rule.grace:
            message.status = Message.Status.SKIPPED
            message.error = (
                f"Missed: the survey was completed {completed:%Y-%m-%d %H:%M} UTC, and the "
                f"follow-up was due {due:%Y-%m-%d %H:%M} UTC, before StudyText heard of it."
            )
        fire.append(message)
    with transaction.atomic():
        _queue(fire, report)


def _message(rule: MessageRule, participant: Participant, occurrence: str, due):
    if rule.notify_team:
        return TeamAlert(
            project=rule.project,
            rule=rule,
            participant=participant,
            occurrence=occurrence,
            dedup_key=f"t{rule.pk}:p{participant.pk}:{occurrence}",
            due_at=due,
        )
    return Message(
        project=rule.project,
        participant=participant,
        rule=rule,
        kind=rule.kind,
        occurrence=occurrence,
        dedup_key=f"r{rule.pk}:p{participant.pk}:{occurrence}",
        due_at=due,
        not_before=due,
    )


def _queue(rows: list, report: TriggerReport) -> None:
    if not rows:
        return
    if isinstance(rows[0], TeamAlert):
        # Missed ones are not written: an alert about a completion long ago is no alert.
        report.alerts += team_alerts_queue([r for r in rows if not _late(r)])
        return
    keys = [r.dedup_key for r in rows]
    before = set(Message.objects.filter(dedup_key__in=keys).values_list("dedup_key", flat=True))
    Message.objects.bulk_create(rows, ignore_conflicts=True)
    for row in rows:
        if row.dedup_key in before:
            continue
        if row.status == Message.Status.SKIPPED:
            report.skipped += 1
        else:
            report.fired += 1


def _late(alert: TeamAlert) -> bool:
    return getattr(alert, "late", False)
