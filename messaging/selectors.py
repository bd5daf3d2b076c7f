import datetime

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import Length

from messaging.models import Message, MessageRule, Send
from projects.models import Participant, Project

LOG_STATUSES = [s for s in Message.Status.values]
# Filters that a coordinator thinks of as one: "failed" in counts and badges means both.
FAILED_OR_UNDELIVERED = "failed,undelivered"


def log_status_filter(value: str) -> str:
    """The statuses asked for, as "a" or "a,b", keeping only real ones ("" when none is)."""
    return ",".join(s for s in value.split(",") if s in LOG_STATUSES)


def rules_for_project(*, project: Project, archived: bool = False) -> list[MessageRule]:
    """Rules (the current ones, or the archived ones) with their counts of texts by outcome,
    in two queries."""
    rules = MessageRule.objects.filter(project=project)
    if archived:
        rules = rules.filter(status=MessageRule.Status.ARCHIVED)
    else:
        rules = rules.exclude(status=MessageRule.Status.ARCHIVED)
    rules = list(rules)
    counts = (
        Message.objects.filter(rule__in=rules)
        .values("rule_id")
        .annotate(
            sent=Count("id", filter=Q(status__in=["sent", "delivered"])),
            pending=Count("id", filter=Q(status__in=["queued", "held", "sending"])),
            held=Count("id", filter=Q(status="held")),
            failed=Count("id", filter=Q(status__in=["failed", "undelivered"])),
            unconfirmed=Count("id", filter=Q(status="unknown")),
        )
        .order_by()
    )
    by_rule = {row["rule_id"]: row for row in counts}
    for rule in rules:
        row = by_rule.get(rule.pk, {})
        rule.sent_count = row.get("sent", 0)
        rule.pending_count = row.get("pending", 0)
        rule.held_count = row.get("held", 0)
        rule.failed_count = row.get("failed", 0)
        rule.unconfirmed_count = row.get("unconfirmed", 0)
    return rules


def messages_for_project(
    *,
    project: Project,
    status: str = "",
    rule_id: int | None = None,
    send_id: int | None = None,
    record: str = "",
    since: datetime.date | None = None,
    until: datetime.date | None = None,
) -> QuerySet[Message]:
    qs = Message.objects.filter(project=project).select_related("participant", "rule")
    statuses = log_status_filter(status).split(",") if status else []
    if len(statuses) == 1 and statuses[0]:
        qs = qs.filter(status=statuses[0])
    elif len(statuses) > 1:
        qs = qs.filter(status__in=statuses)
    if rule_id:
        qs = qs.filter(rule_id=rule_id)
    if send_id:
        qs = qs.filter(send_id=send_id)
    if record:
        qs = qs.filter(participant__record_id=record.strip())
    if since:
        qs = qs.filter(due_at__date__gte=since)
    if until:
        qs = qs.filter(due_at__date__lte=until)
    return qs.order_by("-due_at", "-id")


def send_progress(*, send: Send) -> dict:
    """Counts by status for one batch: one GROUP BY on an index, whatever the size.

    `done_count` counts the texts that reached an outcome (held ones have not: they wait for
    quota); `done` is True once nothing is queued or sending any more."""
    counts = dict(
        Message.objects.filter(send=send).values_list("status").annotate(n=Count("id")).order_by()
    )
    waiting = counts.get("queued", 0) + counts.get("sending", 0)
    done = sum(counts.values()) - waiting - counts.get("held", 0)
    return {
        "total": send.total,
        "queued": waiting,
        "held": counts.get("held", 0),
        "sent": counts.get("sent", 0) + counts.get("delivered", 0),
        "delivered": counts.get("delivered", 0),
        "failed": counts.get("failed", 0) + counts.get("undelivered", 0),
        "unknown": counts.get("unknown", 0),
        "skipped": counts.get("skipped", 0) + counts.get("cancelled", 0),
        "done_count": done,
        "percent": int(100 * done / send.total) if send.total else 100,
        "done": waiting == 0,
    }


def participant_messages(*, participant: Participant) -> QuerySet[Message]:
    return (
        Message.objects.filter(participant=participant)
        .select_related("rule")
        .order_by("-due_at", "-id")
    )


def simulator_phones(*, project: Project) -> list[Participant]:
    """Sandbox participants and the texts their phones show (two queries): the texts the
    sandbox carried. An unconfirmed one (`unknown`: the sender stopped during the call) is
    shown as unconfirmed, not as arrived."""
    people = list(
        Participant.objects.filter(project=project, in_redcap=True)
        .exclude(phone_encrypted="")
        .order_by(Length("record_id"), "record_id")
    )
    shown = Message.objects.filter(
        project=project,
        status__in=["sent", "delivered", "unknown"],
        provider="sandbox",
    ).order_by(F("sent_at").asc(nulls_last=True), "id")
    by_person: dict[int, list[Message]] = {}
    for message in shown:
        by_person.setdefault(message.participant_id, []).append(message)
    for person in people:
        person.phone_texts = by_person.get(person.pk, [])
    return people
