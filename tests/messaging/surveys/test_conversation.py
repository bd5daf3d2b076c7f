"""Text-survey conversations against the REDCap sandbox over live HTTP: the rule saved (the
instrument read, askable and refused fields, the worst-case cost), a whole check-in taken by
text and what REDCap received, the diary's new instance per conversation, STOP and HELP in the
middle, expiry and its reminder, a scheduled text that waits, a quota that cannot pay."""

import datetime
import uuid
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from messaging import eligibility, sender
from messaging.gateways import locmem
from messaging.gateways.base import InboundSms
from messaging.models import Conversation, Message, MessageRule
from messaging.services import conversations, inbound, outbox
from projects import crypto
from projects.models import Participant, Project
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.selectors import project_provider_link
from projects.services import sync
from tests.factories import ALWAYS_OPEN, ProviderLinkFactory

pytestmark = pytest.mark.django_db(transaction=True)
State = Conversation.State
DEMO = SANDBOX_PROJECTS[101]


@pytest.fixture
def synced(mapped_project, researcher):
    Project.objects.filter(pk=mapped_project.pk).update(**ALWAYS_OPEN)
    ProviderLinkFactory(project=mapped_project)
    run = sync.sync_run_start(project=mapped_project, actor=researcher)
    run.refresh_from_db()
    assert run.status == run.Status.SUCCEEDED, run.error
    textable = Participant.objects.filter(project=mapped_project).filter(eligibility.TEXTABLE)
    return SimpleNamespace(project=mapped_project, people=list(textable.order_by("pk")))


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
    rule = conversations.text_survey_rule_save(
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
