"""Text surveys around the engine (docs/redcap.md, "Text surveys"): the conversation with one
participant, and the answers written back to REDCap. The rule kind's settings (its
``TextSurvey``) are saved by ``text_surveys.py``.

- ``conversation_begin``: called by ``release.prepare`` for the rule's own text (the intro). It
  waits while another conversation is open with the number, is not started when the quota
  cannot pay its worst case, reads what the questions need from the record, and returns the
  first question to send with the intro.
- ``conversation_take_reply``: the hook in ``inbound_receive``: a reply from a number with an
  open conversation is an answer (or the start word, SKIP, HELP, STOP).
- ``conversations_tick``: the schedule: reminders, expiry, write-backs that failed.
- ``conversation_write_back``: the answers not yet in REDCap, imported (``import_records``).

Every text of a conversation is a ``Message`` of the rule (kind ``survey``, or
``survey_notice`` for the reminder and the expiry text) through the normal outbox and sender,
so it counts in the quota and meets the usual checks. Questions follow a reply the participant
has just sent, so they are not held by sending hours; the reminder and the expiry text are.
"""

from __future__ import annotations

import datetime
import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from billing.models import Account
from messaging import keywords
from messaging.models import Conversation, Message, MessageRule, Reply, TextSurvey
from messaging.scheduling import zone
from messaging.services.waits import defer, skip
from messaging.signals import audit
from messaging.surveys.answers import Answer, Invalid, parse_answer, with_answers
from messaging.surveys.fields import Instrument, Question, instrument_from_metadata
from messaging.surveys.flow import next_question
from messaging.surveys.text import question_text
from messaging.surveys.writeback import import_row, next_instance
from projects.models import Participant, Project
from projects.redcap import RedcapError
from projects.services.links import redcap_client_for

logger = logging.getLogger(__name__)
State = Conversation.State
SURVEY_KINDS = ("survey", "survey_notice")  # the conversation's own texts
WAIT_NOTE = "Waiting: a text survey is open with this participant; it goes when the survey ends."
WRITE_RETRY = datetime.timedelta(minutes=2)
# Answers still unwritten this long after the conversation's last text: their write-back task
# was never handed out (a callback before it raised), so the tick writes them.
WRITE_STALE = datetime.timedelta(minutes=5)
RECENTLY = datetime.timedelta(days=7)  # a reply this long after a survey ended is told so


# --- The instrument ----------------------------------------------------------------------------
def survey_instrument(survey: TextSurvey) -> Instrument:
    """The instrument as read when the rule was saved (no REDCap call)."""
    return instrument_from_metadata(
        survey.metadata,
        instrument=survey.rule.instrument,
        repeating=survey.repeating,
        events=survey.events,
        label=survey.label,
    )


# --- Starting ----------------------------------------------------------------------------------
def _local_now(participant: Participant, now: datetime.datetime) -> datetime.datetime:
    tz = zone(participant.time_zone or participant.project.time_zone)
    return now.astimezone(tz).replace(tzinfo=None)


def open_for_number(*, project_id: int, fingerprint: str) -> Conversation | None:
    """The conversation open with this number in the project (one at a time per number: two
    participants sharing a phone take their surveys one after the other)."""
    if not fingerprint:
        return None
    return (
        Conversation.objects.filter(
            project_id=project_id,
            participant__phone_fingerprint=fingerprint,
            state__in=Conversation.OPEN_STATES,
        )
        .select_related("rule__text_survey", "participant", "project")
        .first()
    )


def surveying_fingerprints(messages) -> set[tuple[int, str]]:
    """(project, number) pairs with an open conversation, for a batch of texts (one query)."""
    fingerprints = {m.participant.phone_fingerprint for m in messages if m.participant_id}
    if not fingerprints:
        return set()
    return set(
        Conversation.objects.filter(
            project_id__in={m.project_id for m in messages},
            participant__phone_fingerprint__in=fingerprints,
            state__in=Conversation.OPEN_STATES,
        ).values_list("project_id", "participant__phone_fingerprint")
    )


def waits_for_survey(message: Message, surveying: set[tuple[int, str]] | None) -> bool:
    """Whether a text must wait because a conversation is open with its number: every text but
    HELP replies, the conversation's own texts and the survey's own intro."""
    if message.kind == "help" or message.kind in SURVEY_KINDS or message.participant_id is None:
        return False
    key = (message.project_id, message.participant.phone_fingerprint)
    if surveying is not None and key not in surveying:
        return False
    conversation = open_for_number(project_id=key[0], fingerprint=key[1])
    return conversation is not None and conversation.start_message_id != message.pk


def _quota_left(project: Project) -> int:
    from billing.services.quota import usage_period_current

    return usage_period_current(account=project.account).available


def open_worst_case(*, account_id: int) -> int:
    """Quota units the account's open conversations may still use: each one's worst case less
    the texts it has queued so far (those are in the period's usage as they go out)."""
    from billing.services import quota_units_for

    rows = Conversation.objects.filter(
        project__account_id=account_id, state__in=Conversation.OPEN_STATES
    ).values_list("texts", "rule__text_survey__cost_texts", "rule__text_survey__cost_segments")
    total = 0
    for texts, cost_texts, cost_segments in rows:
        left = max(0, (cost_texts or 0) - texts)
        if not left:
            continue
        share = -(-(cost_segments or 0) * left // cost_texts)  # its share, rounded up
        total += quota_units_for(messages=left, segments=share)
    return total


def _quota_refusal(message: Message, needed: int) -> str | None:
    """Why the account cannot pay this conversation's worst case next to those already open,
    or None. The caller holds the account's lock (so two workers cannot both start one)."""
    left = _quota_left(message.project)
    held = open_worst_case(account_id=message.project.account_id)
    if needed <= left - held:
        return None
    if held:
        return (
            f"Not started: this survey can take up to {needed:,} units of quota; the account "
            f"has {left:,} left this month, and text surveys already open may still need "
            f"{held:,} of them."
        )
    return (
        f"Not started: this survey can take up to {needed:,} units of quota and the account "
        f"has {left:,} left this month."
    )


def conversation_begin(*, message: Message, now: datetime.datetime) -> str | None:
    """For the intro text of a text-survey rule: the conversation started and what to send
    after the intro (the first question, or how to start), or None when the text waits or is
    skipped (its note says why). Raises RedcapError when REDCap does not answer (the caller
    defers the text)."""
    from billing.services import quota_units_for

    existing = Conversation.objects.filter(start_message=message).first()
    if existing is not None:
        return message.adhoc_body  # prepared before (e.g. held over quota, released again)
    participant, rule = message.participant, message.rule
    survey = getattr(rule, "text_survey", None)
    if survey is None:
        skip(message, "This text survey has no settings; edit and save the rule.")
        return None
    other = open_for_number(
        project_id=message.project_id, fingerprint=participant.phone_fingerprint
    )
    if other is not None:
        defer(message, other.expires_at, WAIT_NOTE)
        return None
    needed = quota_units_for(messages=survey.cost_texts, segments=survey.cost_segments)
    refusal = _quota_refusal(message, needed)  # early, before asking REDCap; again below
    if refusal:
        skip(message, refusal)
        return None
    instrument = survey_instrument(survey)
    client = redcap_client_for(message.project)  # RedcapError / ValidationError: caller defers
    fields = sorted(instrument.record_fields)
    values: dict[str, str] = {}
    if fields:
        rows = client.records(
            records=[participant.record_id], fields=[instrument.record_id_field, *fields]
        )
        base = next((r for r in rows if not r.get("redcap_repeat_instrument")), None)
        if base is None:
            skip(message, "The record is gone from REDCap.")
            return None
        values = {k: "" if v is None else str(v) for k, v in base.items() if k in fields}
    instance = None
    if instrument.repeating:
        first = instrument.asked[0].field
        rows = client.records(
            records=[participant.record_id],
            fields=[instrument.record_id_field, first, f"{instrument.name}_complete"],
        )
        if rule.event:
            rows = [r for r in rows if r.get("redcap_event_name", "") == rule.event]
        instance = next_instance(instrument, rows)
    conversation = Conversation(
        rule=rule,
        project_id=message.project_id,
        participant=participant,
        start_message=message,
        state=State.OPEN if survey.start == TextSurvey.Start.AT_ONCE else State.WAITING,
        record_values=values,
        repeat_instance=instance,
        started_at=now,
        expires_at=now + survey.time_limit,
        texts=1,
    )
    if survey.start == TextSurvey.Start.AT_ONCE:
        question, lead = _next(conversation, instrument, after=None, now=now)
        if question is None:
            skip(message, "No question of this survey applies to this participant.")
            return None
        conversation.current_field = question.field
        tail = _question_body(conversation, instrument, question, lead, now=now)
    else:
        word = survey.start_word or "YES"
        intro = rule.body.upper()
        tail = "" if f"REPLY {word}" in intro else f"Reply {word} to start."
    try:
        with transaction.atomic():
            # Under the account's lock (the order billing's reservations use: account first),
            # so the worst cases of conversations opening at once are all counted.
            Account.objects.select_for_update(of=("self",), no_key=True).filter(
                pk=message.project.account_id
            ).first()
            refusal = _quota_refusal(message, needed)
            if refusal:
                skip(message, refusal)
                return None
            conversation.save()
            Message.objects.filter(pk=message.pk).update(adhoc_body=tail)
    except IntegrityError:  # another conversation opened with this number just now
        defer(message, now + datetime.timedelta(minutes=5), WAIT_NOTE)
        return None
    audit.send(
        sender=Conversation,
        actor=None,
        action="conversation.started",
        obj=participant,
        message=f"Text survey “{rule.name}” started with record {participant.record_id}.",
    )
    return tail


# --- Asking --------------------------------------------------------------------------------------
def _answers(conversation: Conversation) -> dict[str, Answer]:
    return {
        name: Answer(name, a.get("value", ""), tuple(a.get("codes", ())), a.get("skipped", False))
        for name, a in conversation.answers.items()
    }


def _values(conversation: Conversation, instrument: Instrument) -> dict[str, str]:
    return with_answers(conversation.record_values, instrument, _answers(conversation))


def _next(
    conversation: Conversation, instrument: Instrument, *, after: str | None, now
) -> tuple[Question | None, list[Question]]:
    """The next question that needs an answer, and the descriptive fields before it (sent in
    the same text)."""
    values = _values(conversation, instrument)
    local = _local_now(conversation.participant, now)
    lead: list[Question] = []
    while True:
        question = next_question(instrument, values, after=after, now=local)
        if question is None or question.asks:
            return question, lead
        lead.append(question)
        after = question.field


def _question_body(
    conversation: Conversation,
    instrument: Instrument,
    question: Question | None,
    lead: list[Question],
    *,
    now,
    before: str = "",
) -> str:
    values = _values(conversation, instrument)
    local = _local_now(conversation.participant, now)
    parts = [before] if before else []
    parts += [question_text(instrument, q, values=values, now=local) for q in lead]
    if question is not None:
        parts.append(question_text(instrument, question, values=values, now=local))
    return "\n\n".join(p for p in parts if p)


def _queue(conversation: Conversation, body: str, *, now, kind: str = "survey") -> Message | None:
    """One text of the conversation into the outbox (the normal sender sends it)."""
    from messaging.piping import MAX_BODY_CHARS
    from messaging.services.outbox import kick_sender

    body = body.strip()
    if not body:
        return None
    if len(body) > MAX_BODY_CHARS:
        body = body[: MAX_BODY_CHARS - 1] + "…"
    conversation.texts += 1
    n = conversation.texts
    message = Message.objects.create(
        project_id=conversation.project_id,
        participant_id=conversation.participant_id,
        rule_id=conversation.rule_id,
        kind=kind,
        occurrence=f"c{conversation.pk}.{n}",
        dedup_key=f"survey:c{conversation.pk}:{n}",
        adhoc_body=body,
        due_at=now,
        not_before=now,
    )
    kick_sender()
    return message


def _release_waiting(conversation: Conversation, now) -> None:
    """Texts that waited for this conversation may go."""
    from messaging.services.outbox import kick_sender

    moved = Message.objects.filter(
        project_id=conversation.project_id,
        participant__phone_fingerprint=conversation.participant.phone_fingerprint,
        status=Message.Status.QUEUED,
        error=WAIT_NOTE,
    ).update(not_before=now, error="", updated_at=now)
    if moved:
        kick_sender()


def _finish(conversation: Conversation, state: str, *, now, note: str = "") -> None:
    conversation.state = state
    conversation.finished_at = now
    conversation.current_field = ""
    if note:
        conversation.note = note[:300]
    if state == State.COMPLETED:
        conversation.complete_unwritten = True
    transaction.on_commit(lambda pk=conversation.pk: _write_later(pk))
    transaction.on_commit(lambda: _release_waiting(conversation, timezone.now()))


def _write_later(conversation_id: int) -> None:
    from django_q.tasks import async_task

    async_task(
        "messaging.tasks.conversation_write_back",
        conversation_id,
        task_name=f"survey-write-{conversation_id}",
    )


def _store(conversation: Conversation, answer: Answer) -> None:
    # The value REDCap receives, never the reply's raw text: that is a reply body, blanked
    # after the retention period (docs/compliance.md, "Retention"); the answer is not.
    conversation.answers = {
        **conversation.answers,
        answer.field: {
            "value": answer.value,
            "codes": list(answer.codes),
            "skipped": answer.skipped,
        },
    }
    if not answer.skipped:
        conversation.unwritten = [
            *[f for f in conversation.unwritten if f != answer.field],
            answer.field,
        ]
    transaction.on_commit(lambda pk=conversation.pk: _write_later(pk))


def _advance(conversation: Conversation, instrument: Instrument, *, now, before: str = "") -> str:
    """Ask the next question, or finish. Returns the note for the reply."""
    survey = conversation.rule.text_survey
    question, lead = _next(
        conversation, instrument, after=conversation.current_field or None, now=now
    )
    if question is None:
        text = _question_body(conversation, instrument, None, lead, now=now, before=before)
        closing = survey.closing_text.strip()
        _finish(conversation, State.COMPLETED, now=now)
        _queue(conversation, "\n\n".join(p for p in (text, closing) if p), now=now)
        audit.send(
            sender=Conversation,
            actor=None,
            action="conversation.completed",
            obj=conversation.participant,
            message=f"Text survey “{conversation.rule.name}” completed by record "
            f"{conversation.participant.record_id}.",
        )
        return "Text survey completed."
    conversation.current_field = question.field
    conversation.invalid_count = 0
    _queue(
        conversation,
        _question_body(conversation, instrument, question, lead, now=now, before=before),
        now=now,
    )
    return f"Text survey: asked {question.field}."


def _start_word(survey: TextSurvey, body: str) -> bool:
    normal = keywords.normalise(body).upper()
    word = (survey.start_word or "YES").upper()
    return normal == word or normal.split(" ")[:1] == [word]


def conversation_take_reply(*, reply: Reply, handled: str) -> str:
    """The inbound hook: when a text survey is open with the reply's number, the reply is an
    answer (or the start word, SKIP, HELP, STOP). Returns the note shown next to the reply
    (``handled`` unchanged when no survey took it). Runs inside ``inbound_receive``'s
    transaction."""
    if not reply.phone_fingerprint:
        return handled
    conversation = (
        Conversation.objects.select_for_update(no_key=True, of=("self",))
        .filter(
            project_id=reply.project_id,
            participant__phone_fingerprint=reply.phone_fingerprint,
            state__in=Conversation.OPEN_STATES,
        )
        .select_related("rule__text_survey", "participant", "project")
        .first()
    )
    now = timezone.now()
    if conversation is None:
        return _late_reply(reply, handled)
    if conversation.expires_at <= now:
        _expire(conversation, now=now)
        return _late_reply(reply, handled)
    if reply.keyword == "start":  # YES while a survey is open is an answer
        reply.keyword = ""
        reply.save(update_fields=["keyword"])
    survey = conversation.rule.text_survey
    instrument = survey_instrument(survey)
    if reply.keyword == keywords.Keyword.STOP:
        _finish(conversation, State.STOPPED, now=now, note="The participant texted STOP.")
        conversation.save()
        return (handled + " The text survey ended; the answers so far are kept.").strip()
    if reply.keyword == keywords.Keyword.HELP:
        if conversation.state == State.OPEN:
            question = instrument.question(conversation.current_field)
            _queue(
                conversation,
                _question_body(conversation, instrument, question, [], now=now),
                now=now,
            )
            conversation.save()
            return (handled + " The question was asked again.").strip()
        return handled
    if conversation.state == State.WAITING:
        if not _start_word(survey, reply.body):
            return handled
        conversation.state = State.OPEN
        note = _advance(conversation, instrument, now=now)
        conversation.save()
        _taken(reply, now=now)
        return note
    question = instrument.question(conversation.current_field)
    values = _values(conversation, instrument)
    result = parse_answer(
        question, reply.body, values=values, now=_local_now(conversation.participant, now)
    )
    if isinstance(result, Answer):
        _store(conversation, result)
        note = _advance(conversation, instrument, now=now)
        conversation.save()
        _taken(reply, now=now)
        return ("Text survey: skipped " if result.skipped else "Text survey: answered ") + (
            f"{question.field}. " + note
        )
    note = _invalid(conversation, instrument, question, result, now=now)
    if conversation.state != State.ENDED:  # an ended survey is for the team to follow up
        _taken(reply, now=now)
    return note


def _taken(reply: Reply, *, now) -> None:
    """The survey took the reply (an answer, or the start word): it is not waiting on the team,
    so it is read at once and stays out of the inbox's unread replies (a flag stays until
    reviewed). The inbox lists the open survey itself (docs/compliance.md, "The inbox")."""
    reply.read_at = now
    Reply.objects.filter(pk=reply.pk, read_at__isnull=True).update(read_at=now)


def _invalid(conversation, instrument, question, result: Invalid, *, now) -> str:
    survey = conversation.rule.text_survey
    conversation.invalid_count += 1
    if conversation.invalid_count <= survey.max_invalid:
        words = " ".join(p for p in (survey.invalid_text.strip(), result.message) if p)
        body = _question_body(conversation, instrument, question, [], now=now, before=words)
        _queue(conversation, body, now=now)
        conversation.save()
        return f"Text survey: the answer to {question.field} did not fit; asked again."
    if question.optional:
        _store(conversation, Answer(question.field, "", skipped=True))
        note = _advance(
            conversation, instrument, now=now, before="Let's go on to the next question."
        )
        conversation.save()
        return (
            f"Text survey: {question.field} skipped after {survey.max_invalid + 1} answers "
            f"that did not fit. {note}"
        )
    note = (
        f"Ended: {survey.max_invalid + 1} answers to {question.field} did not fit; "
        "the team should follow up."
    )
    _finish(conversation, State.ENDED, now=now, note=note)
    _queue(conversation, survey.expiry_text, now=now, kind="survey")
    conversation.save()
    audit.send(
        sender=Conversation,
        actor=None,
        action="conversation.ended",
        obj=conversation.participant,
        message=f"Text survey “{conversation.rule.name}” with record "
        f"{conversation.participant.record_id}: {note}",
    )
    return f"Text survey {note[0].lower()}{note[1:]}"


def _late_reply(reply: Reply, handled: str) -> str:
    """A reply from a number whose survey ended lately: kept as a reply, and said so."""
    if handled or reply.keyword:
        return handled
    recent = (
        Conversation.objects.filter(
            project_id=reply.project_id,
            participant__phone_fingerprint=reply.phone_fingerprint,
            finished_at__gte=reply.received_at - RECENTLY,
        )
        .order_by("-finished_at")
        .first()
    )
    if recent is None:
        return handled
    if recent.state == State.EXPIRED:
        return "Arrived after the text survey expired: kept as a reply, not an answer."
    return "Arrived after the text survey ended: kept as a reply, not an answer."


# --- Time: reminders and expiry ----------------------------------------------------------------
def _expire(conversation: Conversation, *, now) -> None:
    survey = conversation.rule.text_survey
    _finish(conversation, State.EXPIRED, now=now)
    _queue(conversation, survey.expiry_text, now=now, kind="survey_notice")
    conversation.save()


def conversations_tick(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Every minute: reminders due, conversations past their time limit, failed write-backs."""
    now = now or timezone.now()
    report = {"reminded": 0, "expired": 0, "written": 0}
    due = Conversation.objects.filter(state__in=Conversation.OPEN_STATES, expires_at__lte=now)
    for pk in due.values_list("pk", flat=True)[:500]:
        with transaction.atomic():
            conversation = (
                Conversation.objects.select_for_update(no_key=True, of=("self",))
                .select_related("rule__text_survey", "participant")
                .filter(pk=pk, state__in=Conversation.OPEN_STATES)
                .first()
            )
            if conversation is not None:
                _expire(conversation, now=now)
                report["expired"] += 1
    # A conversation whose first text never went (cancelled, refused, skipped) would keep the
    # number's other texts waiting until it expires: it ends now, without a word.
    dead = Conversation.objects.filter(
        state__in=Conversation.OPEN_STATES,
        start_message__status__in=[
            Message.Status.CANCELLED,
            Message.Status.FAILED,
            Message.Status.SKIPPED,
            Message.Status.UNDELIVERED,
        ],
    ).select_related("rule__text_survey", "participant", "start_message")
    for conversation in dead[:500]:
        with transaction.atomic():
            status = conversation.start_message.get_status_display().lower()
            claimed = Conversation.objects.filter(
                pk=conversation.pk, state__in=Conversation.OPEN_STATES
            ).update(
                state=State.EXPIRED,
                finished_at=now,
                current_field="",
                note=f"Ended: its first text was not sent ({status}).",
            )
            if claimed:
                report["expired"] += 1
                transaction.on_commit(lambda c=conversation: _release_waiting(c, timezone.now()))
    remind = Conversation.objects.filter(
        state__in=Conversation.OPEN_STATES,
        reminded_at__isnull=True,
        rule__text_survey__reminder_before__isnull=False,
        expires_at__gt=now,
    ).select_related("rule__text_survey", "participant")
    for conversation in remind[:500]:
        survey = conversation.rule.text_survey
        if conversation.expires_at - survey.reminder_before > now:
            continue
        with transaction.atomic():
            claimed = Conversation.objects.filter(
                pk=conversation.pk, reminded_at__isnull=True, state__in=Conversation.OPEN_STATES
            ).update(reminded_at=now)
            if claimed:
                conversation.reminded_at = now
                _queue(conversation, survey.reminder_text, now=now, kind="survey_notice")
                Conversation.objects.filter(pk=conversation.pk).update(texts=conversation.texts)
                report["reminded"] += 1
    retry = Conversation.objects.filter(
        write_failed_at__isnull=False, write_failed_at__lte=now - WRITE_RETRY
    ).values_list("pk", flat=True)
    # Never tried: answers left unwritten though the participant's last reply (what gave them)
    # is a few minutes old, so their write-back task was never handed out.
    last_reply = (
        Reply.objects.filter(participant=OuterRef("participant"))
        .order_by("-received_at")
        .values("received_at")[:1]
    )
    untried = (
        Conversation.objects.filter(write_failed_at__isnull=True)
        .filter(Q(complete_unwritten=True) | ~Q(unwritten=[]))
        .annotate(last_reply=Subquery(last_reply))
        .filter(Q(last_reply__lte=now - WRITE_STALE) | Q(last_reply__isnull=True))
        .values_list("pk", flat=True)
    )
    for pk in list(dict.fromkeys([*retry[:100], *untried[:100]])):
        report["written"] += int(conversation_write_back(conversation_id=pk))
    return report


# --- REDCap ------------------------------------------------------------------------------------
def conversation_write_back(*, conversation_id: int) -> bool:
    """Import the answers not yet in REDCap (and ``<instrument>_complete`` = 2 once finished).
    A failure is noted on the conversation (shown on the participant's page) and tried again
    by the schedule; nothing is lost meanwhile (the answers stay on the conversation)."""
    conversation = (
        Conversation.objects.select_related("rule__text_survey", "participant", "project")
        .filter(pk=conversation_id)
        .first()
    )
    if conversation is None:
        return False
    fields = list(conversation.unwritten)
    complete = conversation.complete_unwritten
    if not fields and not complete:
        return True
    instrument = survey_instrument(conversation.rule.text_survey)
    answers = {f: a for f, a in _answers(conversation).items() if f in fields}
    row = import_row(
        instrument,
        record_id=conversation.participant.record_id,
        answers=answers,
        event=conversation.rule.event,
        instance=conversation.repeat_instance,
        complete=complete,
    )
    try:
        redcap_client_for(conversation.project).import_records([row])
    except (RedcapError, ValidationError) as exc:
        words = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
        Conversation.objects.filter(pk=conversation.pk).update(
            write_error=f"REDCap did not take the answers: {words}"[:300],
            write_failed_at=timezone.now(),
        )
        logger.warning("Text-survey answers of conversation %s not written yet.", conversation.pk)
        return False
    with transaction.atomic():
        fresh = Conversation.objects.select_for_update(no_key=True).get(pk=conversation.pk)
        fresh.unwritten = [f for f in fresh.unwritten if f not in fields]
        if complete:
            fresh.complete_unwritten = False
        fresh.write_error = ""
        fresh.write_failed_at = None
        fresh.save(
            update_fields=["unwritten", "complete_unwritten", "write_error", "write_failed_at"]
        )
    return True


def completed_by_text(*, participant: Participant, rule: MessageRule) -> bool:
    """Whether a conversation StudyText finished completed the rule's survey for the
    participant (REDCap's participant list may not report an imported completion)."""
    return Conversation.objects.filter(
        participant=participant,
        rule__instrument=rule.instrument,
        rule__event=rule.event,
        state=State.COMPLETED,
    ).exists()
