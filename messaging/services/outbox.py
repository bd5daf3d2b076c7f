"""Putting texts in the outbox: scheduled occurrences, "send now" batches and ad-hoc texts.

A Message row always exists before any provider call; its dedup key makes a re-run, a duplicated
task or a second dispatcher harmless (bulk_create with ignore_conflicts).
"""

import datetime
import logging
import uuid
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Case, DateTimeField, F, Min, Q, QuerySet, TextField, Value, When
from django.utils import timezone

from billing.services import quota_release
from messaging import piping
from messaging.eligibility import TEXTABLE
from messaging.models import Attempt, Message, MessageRule, OptOut, Reply, Send
from messaging.scheduling import (
    WAITING_PREFIX,
    ScheduleSpec,
    SendWindow,
    occurrences_between,
    waiting_note,
    zone,
)
from messaging.services.rules import validate
from messaging.shards import shard_count
from messaging.signals import audit
from projects.access import EDITOR, project_role_require
from projects.models import Participant, Project, RedcapLink
from projects.redcap import RedcapError
from projects.selectors import project_field_mapping, project_provider_link, project_redcap_link
from projects.services.links import redcap_client_for

logger = logging.getLogger(__name__)
Status = Message.Status


def kick_sender() -> None:
    """Make sure a sender loop runs for every shard (after the current transaction commits); a
    task that finds every shard taken returns at once."""
    from django_q.tasks import async_task

    def kick() -> None:
        for _ in range(shard_count()):
            async_task("messaging.tasks.send_queued", task_name="sender")

    transaction.on_commit(kick)


def textable_participants(*, project: Project) -> QuerySet[Participant]:
    suppressed = OptOut.objects.filter(project=project, revoked_at__isnull=True).values(
        "phone_fingerprint"
    )
    return (
        Participant.objects.filter(project=project)
        .filter(TEXTABLE)
        .exclude(phone_fingerprint__in=suppressed)
    )


def rule_recipients(*, rule: MessageRule) -> QuerySet[Participant]:
    """Who a rule texts today. Filter logic is evaluated by REDCap itself."""
    qs = textable_participants(project=rule.project)
    if rule.recipients == MessageRule.Recipients.RECORDS:
        qs = qs.filter(record_id__in=rule.record_ids)
    elif rule.recipients == MessageRule.Recipients.FILTER:
        mapping = project_field_mapping(project=rule.project)
        events = [mapping.event] if mapping and mapping.event else None
        # Every REDCap call inside the try: a REDCap that is down is a message in words, for
        # "Send now" and for the dispatcher alike, never an escaped exception.
        try:
            client = redcap_client_for(rule.project)
            id_field = client.record_id_field()
            rows = client.records(fields=[id_field], filter_logic=rule.filter_logic, events=events)
        except RedcapError as exc:
            raise RedcapUnavailable(
                f"REDCap did not answer, so StudyText cannot tell who matches the recipient "
                f"filter: {exc} Nothing was sent; try again in a few minutes."
            ) from exc
        qs = qs.filter(record_id__in={str(r[id_field]) for r in rows})
    return qs


class RedcapUnavailable(ValidationError):
    """REDCap could not be asked who a rule texts (down, slow, refusing): retried later."""


@dataclass
class DispatchReport:
    queued: int = 0
    skipped: int = 0
    rules: int = 0
    errors: list[str] = field(default_factory=list)


def invitation_anchors(*, rule: MessageRule) -> dict[int, datetime.datetime]:
    """Reminders follow each participant's invitation: when the invitation rule's first text to
    them went out (sent, delivered or unconfirmed), by participant id. One query."""
    if rule.anchor_rule_id is None:
        return {}
    rows = (
        Message.objects.filter(
            rule_id=rule.anchor_rule_id, status__in=RECEIVED, sent_at__isnull=False
        )
        .values("participant_id")
        .annotate(first=Min("sent_at"))
    )
    return {r["participant_id"]: r["first"] for r in rows}


def _materialize(rule: MessageRule, now, report: DispatchReport) -> None:
    start = rule.materialized_through or now
    if start >= now:
        return
    project = rule.project
    redcap_link = None
    if rule.recipients == MessageRule.Recipients.FILTER:
        redcap_link = project_redcap_link(project=project)
        if redcap_link and redcap_link.retry_at and redcap_link.retry_at > now:
            return  # REDCap is failing: wait for the next try (backoff); nothing is missed
    spec = ScheduleSpec.from_rule(rule)
    late = now - rule.grace
    if redcap_link is not None and redcap_link.failing_since is not None:
        # The texts were late because REDCap did not answer, not because the sender was down:
        # what fell due while it failed is sent now, not skipped as missed.
        late = min(late, redcap_link.failing_since - rule.grace)
    participants = list(
        textable_participants(project=project).only("pk", "record_id", "time_zone", "dates")
    )
    anchors = invitation_anchors(rule=rule) if spec.kind == "invitation" else {}
    if spec.kind == "invitation":
        participants = [p for p in participants if p.pk in anchors]
    rows = []
    for participant in participants:
        tz = zone(participant.time_zone or project.time_zone)
        for occ in occurrences_between(
            spec,
            tz=tz,
            start=start,
            end=now,
            dates=participant.dates,
            anchor=anchors.get(participant.pk),
        ):
            missed = occ.due_at < late
            rows.append(
                Message(
                    project=project,
                    participant=participant,
                    rule=rule,
                    kind=rule.kind,
                    occurrence=occ.key,
                    dedup_key=f"r{rule.pk}:p{participant.pk}:{occ.key}",
                    due_at=occ.due_at,
                    not_before=occ.due_at,
                    status=Status.SKIPPED if missed else Status.QUEUED,
                    error=(
                        f"Missed: it was due {occ.due_at:%Y-%m-%d %H:%M} UTC, more than "
                        f"{rule.grace} before the sender ran again."
                    )
                    if missed
                    else "",
                )
            )
    if rows and rule.recipients != MessageRule.Recipients.ALL:
        try:
            allowed = set(rule_recipients(rule=rule).values_list("pk", flat=True))
        except RedcapUnavailable as exc:
            redcap_failing(project=project, error=exc.__cause__, now=now)
            report.errors.append(f"{rule}: {' '.join(exc.messages)}")
            return  # tried again after a backoff; materialized_through is not advanced
        except ValidationError as exc:
            report.errors.append(f"{rule}: {' '.join(exc.messages)}")
            return  # try again next run; materialized_through is not advanced
        rows = [r for r in rows if r.participant_id in allowed]
        if redcap_link is not None and redcap_link.failing_since is not None:
            redcap_answering(project_id=project.pk)
    with transaction.atomic():
        advanced = MessageRule.objects.filter(
            pk=rule.pk, materialized_through=rule.materialized_through
        ).update(materialized_through=now)
        if not advanced:
            return  # another dispatcher got here first
        Message.objects.bulk_create(rows, ignore_conflicts=True)
    report.rules += 1
    report.queued += sum(1 for r in rows if r.status == Status.QUEUED)
    report.skipped += sum(1 for r in rows if r.status == Status.SKIPPED)


REDCAP_BACKOFF_MIN = datetime.timedelta(minutes=1)
REDCAP_BACKOFF_MAX = datetime.timedelta(minutes=15)


def redcap_failing(*, project: Project, error, now) -> None:
    """REDCap did not answer for this project: note since when (shown to the team), and when to
    try again, backing off: half the time it has failed so far, from 1 to 15 minutes."""
    link = project_redcap_link(project=project)
    if link is None:
        return
    since = link.failing_since or now
    wait = min(max((now - since) / 2, REDCAP_BACKOFF_MIN), REDCAP_BACKOFF_MAX)
    RedcapLink.objects.filter(pk=link.pk).update(
        failing_since=since, retry_at=now + wait, last_error=str(error or "")[:500]
    )
    logger.warning("REDCap did not answer for project %s; retrying in %s.", project.pk, wait)


def redcap_answering(*, project_id: int | None = None, project_ids=()) -> None:
    """REDCap answers again for this project (or these: one query for all)."""
    ids = [*project_ids, *([] if project_id is None else [project_id])]
    if not ids:
        return
    RedcapLink.objects.filter(project_id__in=ids, failing_since__isnull=False).update(
        failing_since=None, retry_at=None, last_error=""
    )


def dispatch(*, now=None) -> DispatchReport:
    """Materialise the occurrences that fell due since the last run, for every active rule.

    Each rule on its own: one rule's failure (its project's REDCap down, a bug) is recorded and
    retried for that rule only, never stopping the others, the sweep or the sender."""
    now = now or timezone.now()
    report = DispatchReport()
    rules = scheduled_rules().select_related("project")
    for rule in rules:
        try:
            _materialize(rule, now, report)
        except Exception:  # noqa: BLE001 - isolated: the next rule goes on
            logger.exception("Rule %s could not be materialised; retrying next run.", rule.pk)
            report.errors.append(f"{rule}: it could not be prepared; retrying.")
    return report


def scheduled_rules() -> QuerySet[MessageRule]:
    """The active rules whose texts the dispatcher puts in the outbox from the calendar: the
    schedules, and reminders that follow an invitation."""
    return MessageRule.objects.filter(
        Q(
            schedule__in=[
                MessageRule.Schedule.ONCE,
                MessageRule.Schedule.RECURRING,
                MessageRule.Schedule.RELATIVE,
            ]
        )
        | Q(trigger=MessageRule.Trigger.INVITATION),
        status=MessageRule.Status.ACTIVE,
        project__status=Project.Status.ACTIVE,
    )


RECEIVED = [Status.SENT, Status.DELIVERED, Status.UNKNOWN]  # got it (or may have: unconfirmed)
WAITING = [Status.QUEUED, Status.HELD, Status.SENDING]


@dataclass
class SendAudience:
    """Who a "Send now" of a rule would text, against who already has it."""

    recipients: int  # the rule's current recipients
    received: int  # of them, how many received this message already (or may have)
    waiting: int  # of them, how many have a copy still waiting to go out
    new: list[int]  # participants who have neither: the default audience
    everyone: list[int]  # every recipient without a waiting copy: "send again to everyone"


def send_now_audience(*, rule: MessageRule) -> SendAudience:
    """Counts for the "Send now" confirmation (three queries, and REDCap for a filter rule:
    RedcapUnavailable when it does not answer)."""
    recipients = set(rule_recipients(rule=rule).values_list("pk", flat=True))
    theirs = Message.objects.filter(rule=rule, participant_id__in=recipients)
    received = set(theirs.filter(status__in=RECEIVED).values_list("participant_id", flat=True))
    waiting = set(theirs.filter(status__in=WAITING).values_list("participant_id", flat=True))
    return SendAudience(
        recipients=len(recipients),
        received=len(received),
        waiting=len(waiting),
        new=sorted(recipients - received - waiting),
        everyone=sorted(recipients - waiting),
    )


def send_now(*, rule: MessageRule, actor, audience: str = "new") -> Send:
    """Queue the rule's text now ("send now"): by default only for the current recipients who
    have not received it and have no copy waiting; `audience="everyone"` texts again everyone
    who has no copy waiting (a deliberate second choice). Nobody ever gets two copies at once."""
    project = rule.project
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="send texts")
    if rule.status in (MessageRule.Status.PAUSED, MessageRule.Status.ARCHIVED):
        raise ValidationError(f"This message is {rule.get_status_display().lower()}.")
    if project.status != Project.Status.ACTIVE:
        raise ValidationError(f"The project is {project.get_status_display().lower()}.")
    if project_provider_link(project=project) is None:
        raise ValidationError("Link the project's SMS provider before sending.")
    if audience not in ("new", "everyone"):
        raise ValidationError("Choose who receives the text.")
    validate(rule, check_redcap=False)
    who = send_now_audience(rule=rule)
    recipients = who.new if audience == "new" else who.everyone
    if not recipients:
        if not who.recipients:
            raise ValidationError("Nobody would receive this text: no participant matches.")
        if audience == "new" and who.everyone:
            raise ValidationError(
                f"All {who.recipients} recipients received this message already or are waiting "
                "for it. To text them again, choose “Send again to everyone”."
            )
        raise ValidationError(
            f"Every recipient's copy is still waiting to go out ({who.waiting}); nothing more "
            "was queued."
        )
    now = timezone.now()
    with transaction.atomic():
        send = Send.objects.create(
            project=project, rule=rule, created_by=actor, total=len(recipients)
        )
        Message.objects.bulk_create(
            [
                Message(
                    project=project,
                    participant_id=pk,
                    rule=rule,
                    send=send,
                    kind=rule.kind,
                    occurrence=f"send-{send.pk}",
                    dedup_key=f"s{send.pk}:p{pk}",
                    due_at=now,
                    not_before=now,
                    created_by=actor,
                )
                for pk in recipients
            ]
        )
        again = " (again, to everyone)" if audience == "everyone" and who.received else ""
        audit.send(
            sender=Send,
            actor=actor,
            action="message.sent_now",
            obj=rule,
            message=f"“{rule.name}” sent now to {len(recipients)} participants{again}.",
        )
        kick_sender()
    return send


def send_cancel_waiting(*, send: Send, actor) -> tuple[int, int]:
    """Cancel every text of a send that has not gone out yet: queued, held, and claimed by the
    sender but not handed to the provider (their reserved quota released). Returns (texts
    cancelled, quota units released). A send with nothing waiting is refused, nothing changed."""
    project_role_require(user=actor, project=send.project, min_role=EDITOR, doing="cancel texts")
    now = timezone.now()
    note = f"Cancelled by {actor} with the rest of the send."
    with transaction.atomic():
        waiting = Message.objects.filter(send=send, status__in=[Status.QUEUED, Status.HELD])
        cancelled = waiting.update(status=Status.CANCELLED, error=note, updated_at=now)
        # Claimed but not called yet (the last gate will not call a cancelled row).
        claimed = list(
            Message.objects.select_for_update(no_key=True)
            .filter(send=send, status=Status.SENDING)
            .exclude(attempt_log__outcome=Attempt.Outcome.STARTED)
            .order_by("pk")
            .select_related("project", "project__account")
        )
        released = 0
        if claimed:
            Message.objects.filter(pk__in=[m.pk for m in claimed]).update(
                status=Status.CANCELLED, error=note, units=0, updated_at=now
            )
            by_reservation: dict = {}
            for message in claimed:
                by_reservation[message.reserved_at] = (
                    by_reservation.get(message.reserved_at, 0) + message.units
                )
            for reserved_at, units in by_reservation.items():
                quota_release(project=send.project, units=units, reserved_at=reserved_at)
                released += units
        cancelled += len(claimed)
        if not cancelled:
            raise ValidationError(
                "Nothing of this send is waiting any more: every text went out, failed or was "
                "skipped. Nothing was cancelled."
            )
        audit.send(
            sender=Send,
            actor=actor,
            action="message.send_cancelled",
            obj=send.rule or send.project,
            message=f"{cancelled} waiting texts of send #{send.pk} cancelled.",
        )
    return cancelled, released


def adhoc_send(*, participant: Participant, body: str, actor) -> Message:
    """Text one participant now, from their page."""
    project = participant.project
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="send texts")
    body = body.strip()
    mapping = project_field_mapping(project=project)
    if not body:
        raise ValidationError({"body": "Write the text."})
    unknown = piping.unknown_tokens(body, mapping)
    if unknown or set(piping.tokens(body)) & piping.SURVEY_TOKENS:
        raise ValidationError(
            {
                "body": "An ad-hoc text can pipe [first_name] and mapped dates only; "
                "use a survey invitation for survey links."
            }
        )
    if len(body) > piping.MAX_BODY_CHARS:
        raise ValidationError(
            {"body": f"Keep the text under {piping.MAX_BODY_CHARS:,} characters."}
        )
    if project_provider_link(project=project) is None:
        raise ValidationError("Link the project's SMS provider before sending.")
    if not textable_participants(project=project).filter(pk=participant.pk).exists():
        raise ValidationError(
            "This participant cannot be texted: they have no usable number, have not consented, "
            "have withdrawn or have opted out."
        )
    now = timezone.now()
    with transaction.atomic():
        message = Message.objects.create(
            project=project,
            participant=participant,
            kind="adhoc",
            occurrence="adhoc",
            dedup_key=f"adhoc:{uuid.uuid4()}",
            adhoc_body=body,
            due_at=now,
            not_before=now,
            created_by=actor,
        )
        audit.send(
            sender=Message,
            actor=actor,
            action="message.adhoc",
            obj=message,
            message=f"Ad-hoc text to record {participant.record_id}.",
        )
        kick_sender()
    return message


def held_release(*, account_id: int) -> int:
    """Credits arrived or a period began: held texts go back to the queue, oldest first."""
    released = Message.objects.filter(status=Status.HELD, project__account_id=account_id).update(
        status=Status.QUEUED, error="", updated_at=timezone.now()
    )
    if released:
        kick_sender()
    return released


def waiting_release_recompute(*, project_id: int, now=None) -> int:
    """The project's sending hours changed: every text waiting for them gets its new release
    time and note at once, in one UPDATE (one CASE branch per participant time zone). A text
    whose hours are open now is released now (and the sender kicked)."""
    now = now or timezone.now()
    project = Project.objects.get(pk=project_id)
    window = SendWindow.for_project(project)
    waiting = Message.objects.filter(
        project_id=project_id, status=Status.QUEUED, error__startswith=WAITING_PREFIX
    )
    zones = set(waiting.values_list("participant__time_zone", flat=True).distinct())
    if not zones:
        return 0
    times, notes = [], []
    opens_now = False
    for name in zones:
        tz = zone(name or project.time_zone)
        opening = window.next_opening(now, tz)
        people = Participant.objects.filter(project_id=project_id, time_zone=name).values("pk")
        times.append(When(participant_id__in=people, then=Value(opening)))
        note = "" if opening <= now else waiting_note(opening, tz)
        notes.append(When(participant_id__in=people, then=Value(note)))
        opens_now = opens_now or opening <= now
    changed = waiting.update(
        not_before=Case(*times, default=F("not_before"), output_field=DateTimeField()),
        error=Case(*notes, default=F("error"), output_field=TextField()),
        updated_at=now,
    )
    if opens_now:
        kick_sender()
    return changed


def message_cancel(*, message: Message, actor) -> Message:
    project_role_require(user=actor, project=message.project, min_role=EDITOR, doing="cancel texts")
    updated = Message.objects.filter(pk=message.pk, status__in=[Status.QUEUED, Status.HELD]).update(
        status=Status.CANCELLED, error=f"Cancelled by {actor}.", updated_at=timezone.now()
    )
    if not updated:
        raise ValidationError("Only a queued or held text can be cancelled; this one has moved on.")
    message.refresh_from_db()
    return message


# What the purge must leave alone (docs/compliance.md, "Retention"): each function takes a
# queryset of rows whose retention has passed and returns it without the rows whose body is still
# needed. Another part of StudyText may add its own with `retention_keep_register` (the text
# surveys need none: an unwritten answer is a value on its conversation, not a reply's body).
MESSAGE_KEEPERS: list = []
REPLY_KEEPERS: list = []


def retention_keep_register(*, messages=None, replies=None) -> None:
    """Add a filter the purge applies before blanking message or reply bodies."""
    if messages is not None and messages not in MESSAGE_KEEPERS:
        MESSAGE_KEEPERS.append(messages)
    if replies is not None and replies not in REPLY_KEEPERS:
        REPLY_KEEPERS.append(replies)


def _unsent_keep(qs):
    """A text not yet sent (or whose fate is unknown) needs its body to go out or be matched."""
    return qs.exclude(status__in=[Status.QUEUED, Status.HELD, Status.SENDING, Status.UNKNOWN])


def _open_flag_keep(qs):
    """A flagged reply nobody has reviewed yet: the reviewer needs to read it."""
    return qs.exclude(~Q(flag="") & Q(reviewed_at__isnull=True))


retention_keep_register(messages=_unsent_keep, replies=_open_flag_keep)


def retention_purge(*, now=None) -> int:
    """Message and reply bodies are kept for each project's retention period (the owner's
    choice within the administrators' bounds; projects.services.project_retention_days); the
    rows stay. What a keeper says is still needed is left alone."""
    import datetime

    from projects.models import Project
    from projects.services import project_retention_days

    now = now or timezone.now()
    purged = 0
    # One pass per distinct retention the projects chose (a few), never one per project.
    chosen = set(Project.objects.values_list("retention_days", flat=True).distinct())
    for days in chosen:
        keep = project_retention_days(Project(retention_days=days))
        cutoff = now - datetime.timedelta(days=keep)
        of_projects = (
            {"project__retention_days__isnull": True}
            if days is None
            else {"project__retention_days": days}
        )
        messages = Message.objects.filter(created_at__lt=cutoff, **of_projects).exclude(
            body="", adhoc_body=""
        )
        for keeper in MESSAGE_KEEPERS:
            messages = keeper(messages)
        purged += Message.objects.filter(pk__in=messages.values("pk")).update(
            body="", adhoc_body="", updated_at=timezone.now()
        )
        # Participants' replies are kept just as long; the row (keyword, what was done) stays.
        replies = Reply.objects.filter(received_at__lt=cutoff, **of_projects).exclude(body="")
        for keeper in REPLY_KEEPERS:
            replies = keeper(replies)
        purged += Reply.objects.filter(pk__in=replies.values("pk")).update(body="")
    return purged


def project_archived_cancel(*, project_id: int) -> int:
    """An archived project sends nothing more: its queued and held texts are cancelled."""
    return Message.objects.filter(
        project_id=project_id, status__in=[Status.QUEUED, Status.HELD]
    ).update(
        status=Status.CANCELLED,
        error="Cancelled: the project was archived.",
        updated_at=timezone.now(),
    )
