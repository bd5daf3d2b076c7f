"""Text-survey conversations against the REDCap sandbox over live HTTP: the rule saved (the
instrument read, askable and refused fields, the worst-case cost), a whole check-in taken by
text and what REDCap received, the diary's new instance per conversation, STOP and HELP in the
middle, expiry and its reminder, a scheduled text that waits, a quota that cannot pay."""

import datetime
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from billing.models import UsagePeriod
from billing.services.quota import usage_period_current
from messaging import sender
from messaging.gateways import locmem
from messaging.gateways.base import InboundSms, Reason
from messaging.models import Conversation, Message, MessageRule, OptOut, Reply
from messaging.services import conversations, inbound, outbox, text_surveys
from projects import crypto
from projects.models import Participant, Project
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.selectors import project_provider_link
from tests.factories import MessageRuleFactory

pytestmark = pytest.mark.django_db(transaction=True)
State = Conversation.State
DEMO = SANDBOX_PROJECTS[101]


def survey_rule(project, actor, person, *, instrument="text_checkin", **survey):
    data = dict(
        name="Weekly check-in by text",
        body="Hi [first_name], the study has a few questions.",
        instrument=instrument,
        event="",
        recipients=MessageRule.Recipients.RECORDS,
        record_ids=[person.record_id],
        schedule=MessageRule.Schedule.MANUAL,
    )
    settings = dict(
        closing_text="Thank you, that is all!",
        invalid_text="Sorry, we could not read that.",
        start="at_once",
        time_limit=datetime.timedelta(hours=24),
        max_invalid=2,
        expiry_text="The check-in has closed. Thank you.",
    )
    settings.update(survey)
    rule = text_surveys.text_survey_rule_save(
        project=project, actor=actor, data=data, survey_data=settings
    )
    MessageRule.objects.filter(pk=rule.pk).update(status=MessageRule.Status.ACTIVE)
    rule.refresh_from_db()
    return rule


def texted(person):
    """Bodies sent to the person so far, then forget them."""
    phone = crypto.decrypt(person.phone_encrypted)
    bodies = [m.body for m in locmem.outbox if m.to == phone]
    locmem.outbox[:] = [m for m in locmem.outbox if m.to != phone]
    return bodies


def reply(person, body):
    sms = InboundSms(
        provider_message_id=f"T{uuid.uuid4().hex}",
        from_number=crypto.decrypt(person.phone_encrypted),
        body=body,
    )
    saved, _ = inbound.inbound_receive(link=project_provider_link(project=person.project), sms=sms)
    sender.run(max_seconds=10)
    return saved


def redcap_row(record, instrument="text_checkin", instance=None):
    rows = [r for r in store.export_records(DEMO, records=[record]) if True]
    for row in rows:
        if instance is None and not row.get("redcap_repeat_instrument"):
            return row
        if instance is not None and row.get("redcap_repeat_instance") in (instance, str(instance)):
            return row
    return None


def start(rule, researcher):
    outbox.send_now(rule=rule, actor=researcher)
    sender.run(max_seconds=10)


def test_saving_reads_the_instrument_lists_refused_fields_and_the_worst_case_cost(
    synced, researcher
):
    rule = survey_rule(synced.project, researcher, synced.people[0])
    survey = rule.text_survey
    assert rule.kind == MessageRule.Kind.TEXT_SURVEY
    assert "tc_walked" in survey.askable and "tc_intro" in survey.askable
    assert [r.split(" ")[0] for r in survey.refused] == ["tc_photo"]
    assert "file upload" in survey.refused[0].lower()
    assert survey.cost_texts > len(survey.askable)  # retries counted
    assert not survey.repeating
    diary = survey_rule(synced.project, researcher, synced.people[0], instrument="daily_diary")
    assert diary.text_survey.repeating


def test_nothing_askable_is_refused_in_words(synced, researcher, monkeypatch):
    from messaging.surveys import fields

    real = fields.instrument_from_metadata

    def only_photo(metadata, **kw):
        rows = [r for r in metadata if r["field_name"] in ("record_id", "tc_photo")]
        return real(rows, **kw)

    monkeypatch.setattr("messaging.surveys.load.instrument_from_metadata", only_photo)
    with pytest.raises(ValidationError, match="No field of “Text check-in” can be asked by text"):
        survey_rule(synced.project, researcher, synced.people[0])


def test_a_whole_check_in_by_text_reaches_redcap_with_one_invalid_answer_and_a_branch(
    synced, researcher
):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    start(rule, researcher)
    first = texted(person)
    assert len(first) == 1
    assert first[0].startswith(f"Hi {person.first_name}, the study has a few questions.")
    assert "a few quick questions about your week" in first[0]  # the descriptive field
    assert first[0].rstrip().endswith("Reply YES or NO.")
    conversation = Conversation.objects.get(rule=rule)
    assert conversation.state == State.OPEN and conversation.current_field == "tc_walked"

    reply(person, "Yes.")  # trailing period; YES is an answer, not START
    assert "how many days" in texted(person)[0]
    reply(person, "9")  # outside 1-7
    again = texted(person)[0]
    assert again.startswith("Sorry, we could not read that.")
    assert "How many" not in again or "On how many days" in again
    reply(person, "  3 ")
    assert "rested" in texted(person)[0]
    reply(person, "true")
    assert "mood" in texted(person)[0]
    reply(person, "2")  # Bad: the branch asks why
    why = texted(person)[0]
    assert "You said your mood was Bad" in why
    reply(person, "Work was busy")
    for answer in ["skip"] * 1:  # activity: optional
        reply(person, answer)
    texted(person)
    # Answer the rest: skip what is optional, answer what is required.
    for _ in range(30):
        conversation.refresh_from_db()
        if not conversation.is_open:
            break
        field = conversation.current_field
        reply(person, "7.5" if field == "tc_sleep_hours" else "skip")
    conversation.refresh_from_db()
    assert conversation.state == State.COMPLETED
    assert texted(person)[-1].endswith("Thank you, that is all!")
    row = redcap_row(person.record_id)
    assert row["tc_walked"] == "1" and row["tc_walk_days"] == "3"
    assert row["tc_rested"] == "1" and row["tc_mood"] == "2"
    assert row["tc_mood_why"] == "Work was busy"
    assert row["tc_sleep_hours"] == "7.5"
    assert row["text_checkin_complete"] == "2"
    assert conversation.unwritten == [] and not conversation.complete_unwritten
    # Every text of the conversation went through the outbox and counted.
    assert Message.objects.filter(rule=rule, kind="survey").count() == conversation.texts - 1


def walk_to(person, conversation, field, answers=None):
    """Answer until the conversation asks ``field``."""
    answers = answers or {}
    for _ in range(30):
        conversation.refresh_from_db()
        if conversation.current_field == field or not conversation.is_open:
            return
        current = conversation.current_field
        default = {"tc_walked": "no", "tc_sleep_hours": "8"}.get(current, "skip")
        reply(person, answers.get(current, default))


def test_stop_in_the_middle_ends_the_survey_opts_out_and_keeps_the_answers(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    start(rule, researcher)
    reply(person, "no")  # tc_walked, then tc_rested is asked
    texted(person)
    stop = reply(person, "STOP")
    conversation = Conversation.objects.get(rule=rule)
    assert conversation.state == State.STOPPED and conversation.finished_at
    assert stop.keyword == "stop" and "text survey ended" in stop.handled
    assert OptOut.objects.filter(project=synced.project, revoked_at=None).count() == 1
    assert texted(person) == []  # nothing more, not even the expiry text
    assert redcap_row(person.record_id)["tc_walked"] == "0"


def test_help_in_the_middle_answers_and_asks_the_question_again(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    start(rule, researcher)
    texted(person)
    reply(person, "yes")
    asked = texted(person)[0]
    help_reply = reply(person, "HELP")
    sent = texted(person)
    assert len(sent) == 2
    assert "Reply STOP to opt out" in sent[0] or synced.project.help_reply in sent[0]
    assert sent[1] == asked  # the same question again
    conversation = Conversation.objects.get(rule=rule)
    assert conversation.current_field == "tc_walk_days" and conversation.is_open
    assert "asked again" in help_reply.handled


@pytest.mark.parametrize("word", ["Yes", "y", "1", " YES please "])
def test_yes_answers_a_yes_no_question_while_the_survey_is_open(synced, researcher, word):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    start(rule, researcher)
    saved = reply(person, word)
    assert saved.keyword == ""  # an answer, not START
    conversation = Conversation.objects.get(rule=rule)
    assert conversation.answers["tc_walked"]["value"] == "1"
    assert conversation.current_field == "tc_walk_days"


def test_bad_input_is_answered_with_the_reason_and_the_question_again(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person, max_invalid=5)
    start(rule, researcher)
    conversation = Conversation.objects.get(rule=rule)
    walk_to(person, conversation, "tc_sleep_hours")
    texted(person)
    for bad, words in [
        ("", None),  # the provider's empty text
        ("1,5", "Use a point for decimals"),  # a US project: never read as 1.5
        ("😀", "without emoji"),
    ]:
        if bad:
            reply(person, bad)
            sent = texted(person)[0]
            assert sent.startswith("Sorry, we could not read that.") and words in sent
            assert "How many hours did you sleep" in sent
    reply(person, "7.5.")  # a trailing period
    conversation.refresh_from_db()
    assert conversation.answers["tc_sleep_hours"]["value"] == "7.5"
    walk_to(person, conversation, "tc_last_checkup")
    texted(person)
    reply(person, "3/4/2026")  # date_mdy: March 4
    conversation.refresh_from_db()
    assert conversation.answers["tc_last_checkup"]["value"] == "2026-03-04"


def test_a_required_question_answered_wrongly_too_often_ends_the_survey_for_the_team(
    synced, researcher
):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person, max_invalid=1)
    start(rule, researcher)
    conversation = Conversation.objects.get(rule=rule)
    walk_to(person, conversation, "tc_sleep_hours")
    reply(person, "lots")
    reply(person, "many")
    conversation.refresh_from_db()
    assert conversation.state == State.ENDED
    assert "tc_sleep_hours did not fit" in conversation.note
    assert texted(person)[-1] == "The check-in has closed. Thank you."


def test_an_optional_question_answered_wrongly_too_often_is_skipped(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person, max_invalid=1)
    start(rule, researcher)
    conversation = Conversation.objects.get(rule=rule)
    walk_to(person, conversation, "tc_weight")
    reply(person, "heavy")
    reply(person, "very")
    conversation.refresh_from_db()
    assert conversation.answers["tc_weight"]["skipped"] and conversation.is_open
    assert conversation.current_field == "tc_last_checkup"
    assert texted(person)[-1].startswith("Let's go on to the next question.")


def test_expiry_with_its_reminder_keeps_what_was_answered(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(
        synced.project,
        researcher,
        person,
        reminder_before=datetime.timedelta(hours=2),
        reminder_text="Reminder: the check-in closes soon.",
    )
    start(rule, researcher)
    reply(person, "no")
    texted(person)
    conversation = Conversation.objects.get(rule=rule)
    now = timezone.now()
    # An hour and a half before the end: the reminder, once.
    Conversation.objects.filter(pk=conversation.pk).update(
        expires_at=now + datetime.timedelta(minutes=90)
    )
    assert conversations.conversations_tick()["reminded"] == 1
    assert conversations.conversations_tick()["reminded"] == 0
    sender.run(max_seconds=10)
    assert texted(person) == ["Reminder: the check-in closes soon."]
    # Time is up.
    Conversation.objects.filter(pk=conversation.pk).update(
        expires_at=now - datetime.timedelta(seconds=1)
    )
    assert conversations.conversations_tick()["expired"] == 1
    sender.run(max_seconds=10)
    assert texted(person) == ["The check-in has closed. Thank you."]
    conversation.refresh_from_db()
    assert conversation.state == State.EXPIRED
    assert redcap_row(person.record_id)["tc_walked"] == "0"  # kept
    assert redcap_row(person.record_id)["text_checkin_complete"] != "2"
    # A reply after expiry is kept as a reply, not an answer.
    late = reply(person, "7")
    assert "after the text survey expired" in late.handled
    assert texted(person) == []


def test_a_scheduled_text_waits_for_the_open_survey_then_goes(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    start(rule, researcher)
    texted(person)
    other = MessageRuleFactory(
        project=synced.project,
        recipients=MessageRule.Recipients.RECORDS,
        record_ids=[person.record_id],
        body="Your visit is on Friday.",
    )
    outbox.send_now(rule=other, actor=researcher)
    sender.run(max_seconds=10)
    waiting = Message.objects.get(rule=other)
    assert waiting.status == Message.Status.QUEUED and waiting.error == conversations.WAIT_NOTE
    assert texted(person) == []
    # A second text survey due meanwhile queues behind it too.
    second = survey_rule(synced.project, researcher, person, instrument="daily_diary")
    outbox.send_now(rule=second, actor=researcher)
    sender.run(max_seconds=10)
    assert Message.objects.get(rule=second).error == conversations.WAIT_NOTE
    conversation = Conversation.objects.get(rule=rule)
    for _ in range(40):
        conversation.refresh_from_db()
        if not conversation.is_open:
            break
        reply(
            person,
            "no"
            if conversation.current_field == "tc_walked"
            else ("8" if conversation.current_field == "tc_sleep_hours" else "skip"),
        )
    assert conversation.state == State.COMPLETED
    sender.run(max_seconds=10)
    sent = texted(person)
    assert "Your visit is on Friday." in sent
    assert Conversation.objects.get(rule=second).is_open  # the diary started after


def test_a_survey_the_quota_cannot_pay_is_not_started(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    period = usage_period_current(account=synced.project.account)
    UsagePeriod.objects.filter(pk=period.pk).update(
        used=period.included + period.credits - rule.text_survey.cost_texts + 1
    )
    start(rule, researcher)
    message = Message.objects.get(rule=rule)
    assert message.status == Message.Status.SKIPPED
    assert "Not started: this survey can take up to" in message.error
    assert not Conversation.objects.exists() and texted(person) == []


def test_open_conversations_keep_their_worst_case_so_a_second_survey_waits_for_quota(
    synced, researcher
):
    """A survey to two people with quota for one and a half worst cases: the second is not
    started, since the first may still need all of its own."""
    first, second = synced.people[:2]
    rule = survey_rule(synced.project, researcher, first)
    MessageRule.objects.filter(pk=rule.pk).update(record_ids=[first.record_id, second.record_id])
    rule.refresh_from_db()
    needed = rule.text_survey.cost_texts
    period = usage_period_current(account=synced.project.account)
    UsagePeriod.objects.filter(pk=period.pk).update(
        used=period.included + period.credits - (needed + needed // 2)
    )
    start(rule, researcher)
    assert Conversation.objects.filter(rule=rule).count() == 1
    skipped = Message.objects.get(rule=rule, status=Message.Status.SKIPPED)
    assert "already open may still need" in skipped.error


def test_the_start_word_opens_the_survey_and_other_replies_do_not(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person, start="word", start_word="YES")
    start(rule, researcher)
    assert texted(person)[0].endswith("Reply YES to start.")
    conversation = Conversation.objects.get(rule=rule)
    assert conversation.state == State.WAITING
    reply(person, "what is this?")
    assert texted(person) == []
    reply(person, "yes")
    conversation.refresh_from_db()
    assert conversation.state == State.OPEN and conversation.current_field == "tc_walked"
    assert "Did you go for a walk this week?" in texted(person)[0]


def test_a_diary_writes_a_new_instance_per_conversation(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person, instrument="daily_diary")
    instances = []
    for minutes in ("30", "45"):
        outbox.send_now(rule=rule, actor=researcher, audience="everyone")
        sender.run(max_seconds=10)
        conversation = Conversation.objects.filter(rule=rule).order_by("-pk").first()
        for answer in ("yes", minutes, "4", "skip"):
            reply(person, answer)
        conversation.refresh_from_db()
        assert conversation.state == State.COMPLETED
        instances.append(conversation.repeat_instance)
    assert instances[1] == instances[0] + 1
    for instance, minutes in zip(instances, ("30", "45"), strict=True):
        row = redcap_row(person.record_id, instance=instance)
        assert row["dd_minutes"] == minutes and row["daily_diary_complete"] == "2"


def test_a_shared_number_answers_only_the_open_survey(synced, researcher):
    first, second = synced.people[0], synced.people[1]
    Participant.objects.filter(pk=second.pk).update(
        phone_encrypted=first.phone_encrypted, phone_fingerprint=first.phone_fingerprint
    )
    second.refresh_from_db()
    rule = survey_rule(synced.project, researcher, second, instrument="daily_diary")
    start(rule, researcher)
    conversation = Conversation.objects.get(rule=rule)
    assert conversation.participant == second
    reply(first, "yes")  # the number matches the first participant; the survey is the second's
    conversation.refresh_from_db()
    assert conversation.answers["dd_walked"]["value"] == "1"
    for answer in ("20", "3", "skip"):
        reply(first, answer)
    conversation.refresh_from_db()
    assert conversation.state == State.COMPLETED
    late = reply(first, "5")  # the survey is closed: a reply, not an answer to anything
    assert "after the text survey ended" in late.handled
    assert Reply.objects.filter(pk=late.pk, keyword="").exists()


def test_the_next_question_is_not_held_by_sending_hours_but_the_reminder_is(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(
        synced.project,
        researcher,
        person,
        reminder_before=datetime.timedelta(hours=2),
        reminder_text="Reminder: the check-in closes soon.",
    )
    start(rule, researcher)
    texted(person)
    # The sending hours close (no day of the week is open) while the participant answers.
    Project.objects.filter(pk=synced.project.pk).update(send_days=[])
    reply(person, "yes")
    assert "On how many days did you walk?" in texted(person)[0]
    conversation = Conversation.objects.get(rule=rule)
    Conversation.objects.filter(pk=conversation.pk).update(
        expires_at=timezone.now() + datetime.timedelta(minutes=90)
    )
    conversations.conversations_tick()
    sender.run(max_seconds=10)
    assert texted(person) == []  # the reminder waits for the sending hours
    waiting = Message.objects.get(rule=rule, kind="survey_notice")
    assert waiting.status == Message.Status.QUEUED and waiting.not_before > timezone.now()


def test_more_bad_input_empty_iso_date_and_text_over_the_limit(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person, max_invalid=5)
    start(rule, researcher)
    conversation = Conversation.objects.get(rule=rule)
    reply(person, "")  # an empty text (a provider may post one)
    assert texted(person)[-1].startswith("Sorry, we could not read that.")
    conversation.refresh_from_db()
    assert conversation.current_field == "tc_walked" and conversation.invalid_count == 1
    walk_to(person, conversation, "tc_activity", answers={"tc_mood": "4"})
    reply(person, "5")  # Something else: the branch asks which
    texted(person)
    reply(person, "x" * 60)  # @CHARLIMIT=40
    assert "Which activity was it?" in texted(person)[-1]
    conversation.refresh_from_db()
    assert conversation.current_field == "tc_activity_other"
    reply(person, "Dancing")
    walk_to(person, conversation, "tc_last_checkup")
    reply(person, "2026-03-04")  # a year first is Y-M-D in a date_mdy field too
    conversation.refresh_from_db()
    assert conversation.answers["tc_activity_other"]["value"] == "Dancing"
    assert conversation.answers["tc_last_checkup"]["value"] == "2026-03-04"


def test_a_survey_whose_first_text_was_refused_ends_and_frees_the_number(synced, researcher):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    locmem.fail_next(Reason.REJECTED)  # the provider refuses the intro for good
    start(rule, researcher)
    assert Message.objects.get(rule=rule).status == Message.Status.FAILED
    conversation = Conversation.objects.get(rule=rule)
    other = MessageRuleFactory(
        project=synced.project,
        recipients=MessageRule.Recipients.RECORDS,
        record_ids=[person.record_id],
        body="Your visit is on Friday.",
    )
    outbox.send_now(rule=other, actor=researcher)
    sender.run(max_seconds=10)
    assert Message.objects.get(rule=other).error == conversations.WAIT_NOTE
    assert conversations.conversations_tick()["expired"] == 1
    conversation.refresh_from_db()
    assert conversation.state == State.EXPIRED and "not sent (failed)" in conversation.note
    assert not Message.objects.filter(rule=rule, kind="survey_notice").exists()
    sender.run(max_seconds=10)
    assert texted(person) == ["Your visit is on Friday."]


def test_reminders_that_stop_once_completed_stop_for_a_survey_completed_by_text(synced, researcher):
    done, other = synced.people[0], synced.people[1]
    survey = survey_rule(synced.project, researcher, done)
    now = timezone.now()
    # Completed by text; REDCap's participant list is not what tells (nothing imported here).
    Conversation.objects.create(
        rule=survey,
        project=synced.project,
        participant=done,
        state=State.COMPLETED,
        started_at=now,
        expires_at=now,
        finished_at=now,
    )
    reminder = MessageRuleFactory(
        project=synced.project,
        instrument="text_checkin",
        stop_when_complete=True,
        recipients=MessageRule.Recipients.RECORDS,
        record_ids=[done.record_id, other.record_id],
        body="Please take the check-in.",
    )
    outbox.send_now(rule=reminder, actor=researcher)
    sender.run(max_seconds=10)
    skipped = Message.objects.get(rule=reminder, participant=done)
    assert skipped.status == Message.Status.SKIPPED
    assert skipped.error == "The participant already completed the survey."
    assert Message.objects.get(rule=reminder, participant=other).status == Message.Status.SENT


def test_a_text_survey_cannot_be_made_without_its_settings(synced, researcher):
    from messaging.services import rules

    with pytest.raises(ValidationError, match="A text survey needs its settings"):
        rules.rule_save(
            project=synced.project,
            actor=researcher,
            data={
                "kind": "text_survey",
                "name": "No settings",
                "body": "Hi",
                "instrument": "text_checkin",
                "schedule": "manual",
            },
        )
    assert not MessageRule.objects.exists()


def test_answers_are_read_on_arrival_and_the_inbox_lists_the_open_survey_instead(
    synced, researcher, client
):
    from django.urls import reverse

    from messaging import selectors
    from tests.factories import verified_login

    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person, start="word", start_word="YES")
    start(rule, researcher)
    other = reply(person, "what is this?")  # not the start word: a reply for the team
    started = reply(person, "yes")
    answered = reply(person, "no")  # tc_walked
    unfit = reply(person, "maybe")  # tc_rested: does not fit, asked again
    for saved in (other, started, answered, unfit):
        saved.refresh_from_db()
    assert other.read_at is None
    assert started.read_at and answered.read_at and unfit.read_at
    unread = selectors.inbox_replies(project=synced.project, role="owner")
    assert list(unread) == [other]
    verified_login(client, researcher)
    page = client.get(reverse("inbox", args=[synced.project.pk])).content.decode()
    section = page[page.index('id="open-surveys"') :]
    assert "I felt rested most mornings." in section
    assert f"Record {person.record_id}" in section and rule.name in section
    stop = reply(person, "STOP")  # ends the survey; the team sees the STOP
    stop.refresh_from_db()
    assert stop.read_at is None
    assert selectors.inbox_conversations(project=synced.project)["count"] == 0


def test_answers_whose_write_back_was_never_handed_out_are_written_by_the_tick(
    synced, researcher, monkeypatch
):
    """The write-back task is handed out after commit; if that hand-out was skipped (an earlier
    callback raised), the minute's tick writes answers left unwritten for a few minutes."""
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    start(rule, researcher)
    monkeypatch.setattr(conversations, "_write_later", lambda pk: None)  # never handed out
    reply(person, "Yes")
    conversation = Conversation.objects.get(rule=rule)
    assert conversation.unwritten == ["tc_walked"]
    assert "reply" not in conversation.answers["tc_walked"]  # the value only, not the text
    assert conversations.conversations_tick()["written"] == 0  # too fresh: its task may run
    later = timezone.now() + conversations.WRITE_STALE + datetime.timedelta(seconds=1)
    assert conversations.conversations_tick(now=later)["written"] == 1
    conversation.refresh_from_db()
    assert conversation.unwritten == []
    assert str(redcap_row(person.record_id)["tc_walked"]) == "1"
