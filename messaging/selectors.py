import datetime
import statistics
from dataclasses import dataclass

from django.conf import settings
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.db.models.functions import Coalesce, Length
from django.urls import reverse
from django.utils import timezone

from messaging.forecast import forward_calendar  # noqa: F401  (the forward calendar)
from messaging.models import Message, MessageRule, OptOut, Reply, Send, TextSurvey
from messaging.scheduling import WAITING_PREFIX
from projects.models import Membership, Participant, Project, ProviderLink, RedcapLink

LOG_STATUSES = [s for s in Message.Status.values]
# Filters that a coordinator thinks of as one: "failed" in counts and badges means both.
FAILED_OR_UNDELIVERED = "failed,undelivered"


def log_status_filter(value: str) -> str:
    """The statuses asked for, as "a" or "a,b", keeping only real ones ("" when none is)."""
    return ",".join(s for s in value.split(",") if s in LOG_STATUSES)


# Statuses a text can still leave: the rules list counts them whenever the text was due.
OPEN_STATUSES = ["queued", "held", "sending", "unknown"]


def rules_for_project(
    *, project: Project, archived: bool = False, today: datetime.date | None = None
) -> list[MessageRule]:
    """Rules (the current ones, or the archived ones) with their counts of texts by outcome,
    in three queries whatever the number of texts.

    Sent and failed count the texts due in the last 30 days and any still to come (the
    overview's window, `rules_since`), so the counts cost the same in a project's first week
    and after a million texts; texts still waiting, held or unconfirmed are counted whenever
    they were due."""
    rules = MessageRule.objects.filter(project=project)
    if archived:
        rules = rules.filter(status=MessageRule.Status.ARCHIVED)
    else:
        rules = rules.exclude(status=MessageRule.Status.ARCHIVED)
    rules = list(rules)
    since = _day_start(rules_since(today=today), timezone.get_current_timezone())
    # Grouped by rule alone, the (rule, due_at, status) index hands the rows over in order.
    recent = (
        Message.objects.filter(rule__in=rules, due_at__gte=since)
        .values("rule_id")
        .annotate(
            sent=Count("pk", filter=Q(status__in=SUMMARY_GROUPS["sent"])),
            failed=Count("pk", filter=Q(status__in=SUMMARY_GROUPS["failed"])),
        )
        .order_by()
    )
    # The open texts (few: the queue), off the (status, not_before, rule) index alone.
    # Grouped by `rule_id + 0`: grouped by the bare column, SQLite walks the whole rule_id
    # index to get the groups in order rather than sort a few hundred rows.
    still_open = (
        Message.objects.filter(rule__in=rules, status__in=OPEN_STATUSES)
        .annotate(of_rule=F("rule_id") + 0)
        .values_list("of_rule", "status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: dict[int, dict[str, int]] = {}
    for row in recent:
        counts.setdefault(row["rule_id"], {}).update(sent=row["sent"], failed=row["failed"])
    for rule_id, status, n in still_open:
        counts.setdefault(rule_id, {})[status] = n
    for rule in rules:
        of = counts.get(rule.pk, {})
        rule.sent_count = of.get("sent", 0)
        rule.pending_count = of.get("queued", 0) + of.get("held", 0) + of.get("sending", 0)
        rule.held_count = of.get("held", 0)
        rule.failed_count = of.get("failed", 0)
        rule.unconfirmed_count = of.get("unknown", 0)
    return rules


def rules_since(*, today: datetime.date | None = None) -> datetime.date:
    """The first day the rules list's sent and failed counts cover (viewer's time zone)."""
    return (today or timezone.localdate()) - datetime.timedelta(days=SUMMARY_WINDOW_DAYS - 1)


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
    # Days in the viewer's time zone, as a range on due_at itself (from the first day's local
    # midnight to the midnight after the last), so the (project, due_at) index narrows it.
    tz = timezone.get_current_timezone()
    if since:
        qs = qs.filter(due_at__gte=_day_start(since, tz))
    if until:
        qs = qs.filter(due_at__lt=_day_start(until + datetime.timedelta(days=1), tz))
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
    replies = Reply.objects.filter(project=project, participant__isnull=False).order_by(
        "received_at", "id"
    )
    by_sender: dict[int, list[Reply]] = {}
    for reply in replies:
        by_sender.setdefault(reply.participant_id, []).append(reply)
    for person in people:
        person.phone_texts = _conversation(
            by_person.get(person.pk, []), by_sender.get(person.pk, [])
        )
    return people


def simulator_own_texts(*, project: Project, user) -> list[Message]:
    """The test texts (and phone codes) the sandbox carried to this staff member's own phone,
    the latest 20, oldest first (one query)."""
    texts = Message.objects.filter(
        project=project, to_user=user, provider="sandbox", status__in=["sent", "delivered"]
    ).order_by("-sent_at", "-id")[:20]
    return list(reversed(texts))


def _when(item) -> datetime.datetime:
    if isinstance(item, Reply):
        return item.received_at
    return item.sent_at or item.due_at


def _conversation(texts: list, replies: list) -> list:
    """Texts out and replies in, oldest first; a reply has `.incoming = True`."""
    for reply in replies:
        reply.incoming = True
    return sorted([*texts, *replies], key=_when)


def participant_thread(*, participant: Participant, limit: int = 100) -> list:
    """The participant page's thread (two queries): their texts (any status) and their
    replies (`.incoming = True`), newest first, at most `limit` in all."""
    texts = list(participant_messages(participant=participant)[:limit])
    replies = list(
        Reply.objects.filter(participant=participant).order_by("-received_at", "-id")[:limit]
    )
    return _conversation(texts, replies)[::-1][:limit]


def replies_for_project(*, project: Project, participant_id: int | None = None) -> QuerySet[Reply]:
    """Participants' replies, newest first. A reply from a number that matches no participant
    is left out (only administrators see those, in the admin site)."""
    qs = Reply.objects.filter(project=project, participant__isnull=False).select_related(
        "participant"
    )
    if participant_id:
        qs = qs.filter(participant_id=participant_id)
    return qs.order_by("-received_at", "-id")


def participants_with_opt_out(*, participants: QuerySet[Participant]) -> QuerySet[Participant]:
    """The participants, each with `suppressed`: their number is on the project's suppression
    list (a STOP, the provider's unsubscribe, or study staff). One query, whatever the count."""
    return participants.annotate(
        suppressed=Exists(
            OptOut.objects.filter(
                project_id=OuterRef("project_id"),
                phone_fingerprint=OuterRef("phone_fingerprint"),
                revoked_at__isnull=True,
            ).exclude(phone_fingerprint="")
        )
    )


def ready_texts(shard: tuple[int, int] | None = None) -> QuerySet[Message]:
    """The texts the sender may release now: queued and due, on an active project with a
    running link and a rule that is not paused (eligibility.RELEASABLE); with `shard` (i, N),
    only those of the links whose id % N is i (docs/sending.md, "Shards")."""
    from messaging import shards
    from messaging.eligibility import RELEASABLE

    ready = Message.objects.filter(
        RELEASABLE, status=Message.Status.QUEUED, not_before__lte=timezone.now()
    )
    if shard is not None and shard[1] > 1:
        ready = ready.alias(sender_shard=shards.message_shard(shard[1])).filter(
            sender_shard=shard[0]
        )
    return ready


def oldest_ready_text_due() -> datetime.datetime | None:
    """When the longest-waiting text that the sender may release now fell due (None: none
    waits). One index range read (status, not_before), for the health check."""
    return ready_texts().order_by("not_before").values_list("not_before", flat=True).first()


def oldest_ready_text_due_by_shard(count: int) -> dict[int, datetime.datetime]:
    """oldest_ready_text_due for each shard of `count` that has a text waiting: one grouped
    read."""
    from messaging import shards

    rows = (
        ready_texts()
        .annotate(sender_shard=shards.message_shard(count))
        .order_by()
        .values("sender_shard")
        .annotate(oldest=Min("not_before"))
    )
    return {int(row["sender_shard"]): row["oldest"] for row in rows}


@dataclass
class SenderLoop:
    shard: int  # 1-based, as shown
    of: int
    sending: bool  # a loop holds the shard's lease now
    seen: datetime.datetime | None  # its last sign of life (None: no loop ever ran it)


def sender_loops() -> dict:
    """For the administrators' dashboard: each shard of SENDER_SHARDS (docs/sending.md,
    "Shards") with its loop sending now or idle since its last sign of life, and how many loops
    of another shard count hold a lease (hosts that disagree on SENDER_SHARDS). One query."""
    from messaging import shards

    now = timezone.now()
    count = shards.shard_count()
    names = shards.lease_names(count)
    leases = shards.lease_rows()

    def held(row) -> bool:
        return bool(row["owner"]) and row["expires_at"] > now

    loops = []
    for i, name in enumerate(names):
        row = leases.get(name)
        loops.append(
            SenderLoop(
                shard=i + 1,
                of=count,
                sending=row is not None and held(row),
                seen=shards.lease_seen(**row) if row else None,
            )
        )
    others = sum(1 for name, row in leases.items() if name not in names and held(row))
    return {"loops": loops, "other_counts": others}


# The overview's "Texts" card: each count is a group of statuses, and each group is also a filter
# of the message log (`?status=...`), so a number and the list it links to always agree.
SUMMARY_GROUPS: dict[str, list[str]] = {
    "sent": ["sent", "delivered"],
    "waiting": ["queued", "sending"],
    "held": ["held"],
    "failed": ["failed", "undelivered"],
    "unconfirmed": ["unknown"],
    "skipped": ["skipped", "cancelled"],
}
# Each group as the message log's `?status=` value.
SUMMARY_FILTERS: dict[str, str] = {
    group: ",".join(statuses) for group, statuses in SUMMARY_GROUPS.items()
}
SUMMARY_WINDOW_DAYS = 30
SUMMARY_CHART_DAYS = 14


@dataclass
class TextingSummary:
    since: datetime.date  # the counts are of texts due on or after this day (viewer's time zone)
    today: datetime.date
    counts: dict[str, int]
    days: list[tuple[datetime.date, int]]  # texts sent per day, oldest first, ending today
    active_rules: int
    next_due: datetime.datetime | None  # when the next queued text may go out
    has_texts: bool  # any text at all, ever
    time_zone: str = ""
    next_waits: bool = False  # the next text waits for the sending hours (next_note says until)
    next_note: str = ""

    @property
    def next_waits_until(self) -> str:
        """'Mon 9:00 a.m. participant time': when the next waiting text goes out."""
        return self.next_note.removeprefix(WAITING_PREFIX).removesuffix(" (sending hours).").strip()

    @property
    def next_due_is_past(self) -> bool:
        """The next queued text was due already (the sender has yet to reach it)."""
        return self.next_due is not None and self.next_due <= timezone.now()


def _day_start(day: datetime.date, tz) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min), tz)


def _count(messages: QuerySet) -> Coalesce:
    """A correlated COUNT of `messages` of the outer project, for an annotation."""
    counted = (
        messages.filter(project=OuterRef("pk"))
        .order_by()
        .values("project")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def texting_summary(*, project: Project, today: datetime.date | None = None) -> TextingSummary:
    """How texting is going, for the project's overview, in the viewer's time zone (the one
    activated for the request), in one query whatever the number of texts:

    - counts by status group of the texts due in the last 30 days (and any still to come): the
      same texts the message log lists with `?since=<that day>&status=<group>`;
    - texts sent per day over the last 14 days, by the day they were sent;
    - the number of active rules, when the next queued text may go out, and whether the
      project has any text at all.

    Each count is its own range on an index ((project, status, due_at) for the groups,
    (project, sent_at, status) for each day), so it reads only the entries it counts: one
    pass with a filter per group, or a date function per row, costs ten times more at a
    million texts."""
    tz = timezone.get_current_timezone()
    today = today or timezone.localdate()
    since = today - datetime.timedelta(days=SUMMARY_WINDOW_DAYS - 1)
    window = _day_start(since, tz)
    first_day = today - datetime.timedelta(days=SUMMARY_CHART_DAYS - 1)
    chart_days = [first_day + datetime.timedelta(days=i) for i in range(SUMMARY_CHART_DAYS + 1)]
    bounds = [_day_start(day, tz) for day in chart_days]
    sent = Message.objects.filter(status__in=SUMMARY_GROUPS["sent"])
    row = (
        Project.objects.filter(pk=project.pk)
        .annotate(
            **{
                f"group_{group}": _count(
                    Message.objects.filter(status__in=statuses, due_at__gte=window)
                )
                for group, statuses in SUMMARY_GROUPS.items()
            },
            **{
                f"day_{i}": _count(sent.filter(sent_at__gte=bounds[i], sent_at__lt=bounds[i + 1]))
                for i in range(SUMMARY_CHART_DAYS)
            },
            active_rules=Coalesce(
                Subquery(
                    MessageRule.objects.filter(
                        project=OuterRef("pk"), status=MessageRule.Status.ACTIVE
                    )
                    .order_by()
                    .values("project")
                    .annotate(n=Count("pk"))
                    .values("n"),
                    output_field=IntegerField(),
                ),
                0,
            ),
            next_due=Subquery(
                Message.objects.filter(project=OuterRef("pk"), status=Message.Status.QUEUED)
                .order_by("not_before")
                .values("not_before")[:1]
            ),
            # "Waits until Mon 9:00 a.m. participant time (sending hours).", when it waits
            next_note=Subquery(
                Message.objects.filter(project=OuterRef("pk"), status=Message.Status.QUEUED)
                .order_by("not_before")
                .values("error")[:1]
            ),
            has_texts=Exists(Message.objects.filter(project=OuterRef("pk"))),
        )
        .values()
        .first()
    ) or {}
    next_note = row.get("next_note") or ""
    return TextingSummary(
        since=since,
        today=today,
        counts={group: row.get(f"group_{group}", 0) for group in SUMMARY_GROUPS},
        days=[(chart_days[i], row.get(f"day_{i}", 0)) for i in range(SUMMARY_CHART_DAYS)],
        active_rules=row.get("active_rules", 0),
        next_due=row.get("next_due"),
        next_waits=next_note.startswith(WAITING_PREFIX),
        next_note=next_note,
        has_texts=bool(row.get("has_texts")),
        time_zone=str(tz),
    )


INBOUND_WEBHOOKS = {"twilio": "twilio-inbound", "mosio": "mosio-inbound"}


def inbound_webhook_url(*, link: ProviderLink | None) -> str | None:
    """Where the provider must post participants' replies (STOP, HELP, answers): Twilio's "A
    message comes in" webhook of the sending number, Mosio's inbound webhook. It carries the
    link's webhook secret, so only owners see it. None for the sandbox (its phones post here)."""
    if link is None or link.provider not in INBOUND_WEBHOOKS:
        return None
    return settings.SITE_URL + reverse(INBOUND_WEBHOOKS[link.provider], args=[link.webhook_secret])


def reply_channels(*, link: ProviderLink | None) -> dict | None:
    """How replies reach StudyText through this link, and when the last one came (one query):
    `how` is "webhook", "poll", "both" or "" (none yet), and what the page says about it."""
    if link is None:
        return None
    last = Reply.objects.filter(provider_link=link).aggregate(
        webhook=Max("received_at", filter=Q(via=Reply.Via.WEBHOOK)),
        poll=Max("received_at", filter=Q(via=Reply.Via.POLL)),
        simulator=Max("received_at", filter=Q(via=Reply.Via.SIMULATOR)),
    )
    seen = [via for via in ("webhook", "poll") if last[via]]
    how = "both" if len(seen) == 2 else (seen[0] if seen else "")
    latest = max((v for v in last.values() if v), default=None)
    return {"how": how, "latest": latest, **last, "polls": link.provider == "mosio"}


def project_outages(*, project: Project) -> dict:
    """What stops the project's texts for now, in words for the team (two queries): its SMS
    provider unreachable (texts retried), its REDCap not answering (texts wait)."""
    return {
        "provider_unreachable_since": ProviderLink.objects.filter(
            project=project, unreachable_since__isnull=False
        )
        .values_list("unreachable_since", flat=True)
        .first(),
        "redcap": RedcapLink.objects.filter(project=project, failing_since__isnull=False)
        .values("failing_since", "last_error")
        .first(),
        "retry_minutes": settings.SENDER_RETRY_MINUTES,
    }


# --- The team's inbox (docs/compliance.md, "The inbox") ------------------------------------------
INBOX_LIMIT = 100
# Waiting on the team: unread, or flagged and not yet reviewed.
INBOX_OPEN = Q(read_at__isnull=True) | (~Q(flag="") & Q(reviewed_at__isnull=True))


def inbox_replies(*, project: Project, role: str | None) -> QuerySet[Reply]:
    """The replies in the project's inbox for a member of this role, newest first. Texts from
    numbers that match no participant are for the owners only (shown by their last 4 digits)."""
    qs = Reply.objects.filter(INBOX_OPEN, project=project)
    if role != Membership.Role.OWNER:
        qs = qs.filter(participant__isnull=False)
    return qs.order_by("-received_at", "-id")


def inbox_page(*, project: Project, role: str | None, limit: int = INBOX_LIMIT) -> dict:
    """The inbox's rows (the newest `limit`, with participant and the message each answers) and
    their count: two queries, however many replies there are."""
    qs = inbox_replies(project=project, role=role)
    rows = list(
        qs.select_related("participant", "answers", "answers__rule").only(
            "id",
            "body",
            "keyword",
            "handled",
            "flag",
            "read_at",
            "reviewed_at",
            "received_at",
            "phone_last4",
            "via",
            "participant__id",
            "participant__record_id",
            "participant__first_name",
            "answers__id",
            "answers__body",
            "answers__adhoc_body",
            "answers__kind",
            "answers__sent_at",
            "answers__rule__id",
            "answers__rule__name",
        )[:limit]
    )
    count = len(rows) if len(rows) < limit else qs.count()
    return {"rows": rows, "count": count, "more": max(count - len(rows), 0)}


INBOX_CONVERSATIONS_LIMIT = 50


@dataclass
class OpenConversation:
    conversation: object
    rule_name: str
    asking: str  # the question asked now, or what the conversation waits for


def inbox_conversations(*, project: Project, limit: int = INBOX_CONVERSATIONS_LIMIT) -> dict:
    """The project's text surveys open now (docs/redcap.md "Text surveys"), oldest expiry first:
    who, which survey, the question asked now. One query, plus a count when more are open than
    shown; each rule's instrument is read once from its stored data dictionary."""
    from messaging.models import Conversation
    from messaging.services.conversations import survey_instrument

    qs = Conversation.objects.filter(project=project, state__in=Conversation.OPEN_STATES)
    found = list(
        qs.select_related("participant", "rule__text_survey").order_by("expires_at", "id")[:limit]
    )
    instruments: dict = {}
    rows = []
    for conversation in found:
        rule = conversation.rule
        if conversation.state == Conversation.State.WAITING:
            asking = f"Waiting for the start word {rule.text_survey.start_word or 'YES'}"
        else:
            if rule.pk not in instruments:
                instruments[rule.pk] = survey_instrument(rule.text_survey)
            try:
                question = instruments[rule.pk].question(conversation.current_field)
            except KeyError:
                asking = conversation.current_field
            else:
                asking = question.label or question.field
        rows.append(OpenConversation(conversation, rule.name, asking))
    count = len(rows) if len(rows) < limit else qs.count()
    return {"rows": rows, "count": count, "more": max(count - len(rows), 0)}


def inbox_count(*, project: Project, role: str | None) -> int:
    """How many replies wait in the project's inbox for this member (one query)."""
    return inbox_replies(project=project, role=role).count()


def consent_timeline(*, participant: Participant) -> list:
    """Every opt-in and opt-out of the participant (and of their number before they were
    matched), and consent read from REDCap, newest first (one query)."""
    from projects.models import ConsentEvent

    mine = Q(participant=participant)
    if participant.phone_fingerprint:
        mine |= Q(participant__isnull=True, phone_fingerprint=participant.phone_fingerprint)
    return list(
        ConsentEvent.objects.filter(mine, project_id=participant.project_id)
        .select_related("actor")
        .order_by("-at", "-id")[:200]
    )


# --- Text surveys (docs/redcap.md "Text surveys") -------------------------------------------------
CHOICE_KINDS = ("yesno", "truefalse", "radio", "dropdown", "checkbox")
YES_NO = {"yesno": (("1", "Yes"), ("0", "No")), "truefalse": (("1", "True"), ("0", "False"))}


def _choices(question) -> list[tuple[str, str]]:
    if question.kind in YES_NO:
        return list(YES_NO[question.kind])
    return [(c.code, c.label) for c in question.choices]


def _answer_words(question, answer: dict) -> str:
    if answer.get("skipped"):
        return "(skipped)"
    labels = dict(_choices(question)) if question.kind in CHOICE_KINDS else {}
    if question.kind == "checkbox":
        return ", ".join(labels.get(c, c) for c in answer.get("codes", [])) or "(none)"
    value = answer.get("value", "")
    return labels.get(value, value)


def _duration_words(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


@dataclass
class QuestionResult:
    field: str
    label: str
    answered: int
    skipped: int
    counts: list  # choices: (label, count, bar width 0-160, baseline y), rows 16 apart


@dataclass
class SurveyResults:
    started: int
    by_state: dict
    completed: int
    completion_rate: int | None  # percent of those started, None before any
    median_time: str  # "" before any completed
    questions: list
    median_seconds: float | None = None  # None before any completed


def survey_results(*, rule: MessageRule) -> SurveyResults:
    """A text survey's results page: completion rate, median time to complete, and answers per
    question (counts for choices). Two queries, whatever the number of conversations."""
    from messaging.models import Conversation
    from messaging.services.conversations import survey_instrument

    survey = TextSurvey.objects.select_related("rule").get(rule=rule)
    instrument = survey_instrument(survey)
    rows = list(
        Conversation.objects.filter(rule=rule).values_list(
            "state", "started_at", "finished_at", "answers"
        )
    )
    by_state = {state: 0 for state in Conversation.State.values}
    durations = []
    for state, started, finished, _ in rows:
        by_state[state] += 1
        if state == Conversation.State.COMPLETED and finished:
            durations.append((finished - started).total_seconds())
    completed = by_state[Conversation.State.COMPLETED]
    questions = []
    for question in instrument.asked:
        given = [a[question.field] for *_, a in rows if question.field in (a or {})]
        skipped = sum(1 for a in given if a.get("skipped"))
        counts = []
        if question.kind in CHOICE_KINDS:
            tally = {code: 0 for code, _ in _choices(question)}
            for answer in given:
                if answer.get("skipped"):
                    continue
                codes = answer.get("codes") or [answer.get("value", "")]
                for code in codes:
                    tally[code] = tally.get(code, 0) + 1
            peak = max(tally.values(), default=0) or 1
            labels = dict(_choices(question))
            counts = [
                (labels.get(code, code), n, round(160 * n / peak), 16 * i + 12)
                for i, (code, n) in enumerate(tally.items())
            ]
        questions.append(
            QuestionResult(
                field=question.field,
                label=question.label,
                answered=len(given) - skipped,
                skipped=skipped,
                counts=counts,
            )
        )
    return SurveyResults(
        started=len(rows),
        by_state=by_state,
        completed=completed,
        completion_rate=round(100 * completed / len(rows)) if rows else None,
        median_time=_duration_words(statistics.median(durations)) if durations else "",
        questions=questions,
        median_seconds=statistics.median(durations) if durations else None,
    )


@dataclass
class ConversationView:
    conversation: object
    rule_name: str
    answers: list  # (field, question label, answer in words)


def participant_conversations(*, participant: Participant, limit: int = 10) -> list:
    """The participant page's text surveys, newest first, each with its answers in words and
    any answer REDCap has not taken yet. One query (the instrument is the rule's stored one)."""
    from messaging.models import Conversation
    from messaging.services.conversations import survey_instrument

    found = []
    for conversation in Conversation.objects.filter(participant=participant).select_related(
        "rule__text_survey"
    )[:limit]:
        instrument = survey_instrument(conversation.rule.text_survey)
        answers = []
        for question in instrument.asked:
            answer = conversation.answers.get(question.field)
            if answer is not None:
                answers.append((question.field, question.label, _answer_words(question, answer)))
        found.append(ConversationView(conversation, conversation.rule.name, answers))
    return found
