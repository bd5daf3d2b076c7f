"""At release, a text pipes what REDCap holds then (issue 5), not the participant's synced copy.

One record export per project per batch, with only the fields the texts pipe; none when nothing
is piped from the record; REDCap down: the text waits (fail safe) with the reason. And who a rule
with a recipient filter texts is what REDCap's filter logic matches when the texts are queued.
"""

import datetime
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from messaging import eligibility, piping, sender
from messaging.gateways import locmem
from messaging.models import Message, MessageRule
from messaging.services import outbox
from projects.models import FieldMapping, Participant, Project
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.services import sync
from tests.factories import (
    ALWAYS_OPEN,
    FieldMappingFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

Status = Message.Status


def run_sender():
    return sender.run(max_seconds=10)


# --- Against the REDCap sandbox (live server), after a real sync -----------------------------
# (A live-server test commits as it goes, so "send" starts the sender at once, inline.)
@pytest.fixture
def synced(mapped_project, researcher):
    """The demo project, synced from the sandbox, texting through the (locmem) provider."""
    Project.objects.filter(pk=mapped_project.pk).update(**ALWAYS_OPEN)
    ProviderLinkFactory(project=mapped_project)
    run = sync.sync_run_start(project=mapped_project, actor=researcher)
    run.refresh_from_db()
    assert run.status == run.Status.SUCCEEDED, run.error
    textable = Participant.objects.filter(project=mapped_project).filter(eligibility.TEXTABLE)
    return SimpleNamespace(project=mapped_project, people=list(textable.order_by("pk")))


def rename_in_redcap(record_id: str, first_name: str) -> None:
    demo = SANDBOX_PROJECTS[101]
    store.import_records(demo, [{demo.record_id_field: record_id, "first_name": first_name}])


def test_the_text_pipes_the_name_redcap_holds_when_it_goes_out_not_the_synced_one(
    synced, researcher
):
    person = synced.people[0]
    synced_name = person.first_name
    assert synced_name and synced_name != "Marguerite"
    rename_in_redcap(person.record_id, "Marguerite")  # corrected in REDCap after the sync

    message = outbox.adhoc_send(
        participant=person, body="Hi [first_name]! Ref [record_id]", actor=researcher
    )
    run_sender()

    message.refresh_from_db()
    assert message.status == Status.SENT
    assert [m.body for m in locmem.outbox] == [f"Hi Marguerite! Ref {person.record_id}"]
    # The synced copy is not what was texted, and it is left as the sync wrote it.
    person.refresh_from_db()
    assert person.first_name == synced_name


def test_a_survey_invitation_pipes_the_link_and_the_current_name_from_redcap(synced, researcher):
    people = synced.people[:3]
    for person in people:
        rename_in_redcap(person.record_id, f"New{person.record_id}")
    rule = MessageRuleFactory(
        project=synced.project,
        kind=MessageRule.Kind.INVITATION,
        instrument="weekly_checkin",
        recipients=MessageRule.Recipients.RECORDS,
        record_ids=[p.record_id for p in people],
        body="Hi [first_name], your check-in: [survey-link]",
    )
    outbox.send_now(rule=rule, actor=researcher)
    run_sender()

    assert set(Message.objects.filter(rule=rule).values_list("status", flat=True)) == {Status.SENT}
    bodies = sorted(m.body for m in locmem.outbox)
    for person, body in zip(sorted(people, key=lambda p: f"New{p.record_id}"), bodies, strict=True):
        assert body.startswith(f"Hi New{person.record_id}, your check-in: http")
        assert "/sandbox/redcap/surveys/" in body


def test_a_reminder_skips_those_who_completed_and_pipes_the_others_current_names(
    synced, researcher
):
    demo = SANDBOX_PROJECTS[101]
    complete = {
        r for r, _, values in store.rows(demo) if values.get("baseline_survey_complete") == "2"
    }
    people = {p.record_id: p for p in synced.people}
    assert complete & set(people) and set(people) - complete
    for record in people:
        rename_in_redcap(record, f"Now{record}")
    rule = MessageRuleFactory(
        project=synced.project,
        instrument="baseline_survey",
        stop_when_complete=True,
        body="Hi [first_name], please finish: [survey-link]",
    )
    outbox.send_now(rule=rule, actor=researcher)
    run_sender()

    messages = {m.participant.record_id: m for m in Message.objects.filter(rule=rule)}
    assert set(messages) == set(people)
    for record, message in messages.items():
        if record in complete:
            assert (message.status, message.error) == (
                Status.SKIPPED,
                "The participant already completed the survey.",
            )
        else:
            assert message.status == Status.SENT
            assert message.body.startswith(f"Hi Now{record}, please finish: http")


@pytest.mark.parametrize("how", ["send now", "dispatcher"])
def test_a_rule_with_a_redcap_filter_texts_only_the_records_redcap_matches(synced, researcher, how):
    demo = SANDBOX_PROJECTS[101]
    people = {p.record_id: p for p in synced.people}
    chicago = {r for r, _, values in store.rows(demo) if values.get("tz") == "America/Chicago"}
    chicago &= set(people)
    others = sorted(set(people) - chicago)
    assert chicago and others
    # Changed in REDCap after the sync: the filter is REDCap's, on what REDCap holds now.
    moved_in, moved_out = others[0], sorted(chicago)[0]
    store.import_records(
        demo,
        [
            {demo.record_id_field: moved_in, "tz": "America/Chicago"},
            {demo.record_id_field: moved_out, "tz": "America/Denver"},
        ],
    )
    expected = (chicago - {moved_out}) | {moved_in}
    rule = MessageRuleFactory(
        project=synced.project,
        recipients=MessageRule.Recipients.FILTER,
        filter_logic="[tz] = 'America/Chicago'",
        body="Hi [first_name], a reminder from the study.",
    )
    if how == "send now":
        outbox.send_now(rule=rule, actor=researcher)  # starts the sender (inline, committed)
    else:
        two_days_ago = timezone.now() - datetime.timedelta(days=2)
        MessageRule.objects.filter(pk=rule.pk).update(
            schedule=MessageRule.Schedule.ONCE,
            once_date=two_days_ago.date(),
            grace=datetime.timedelta(days=7),
            materialized_through=two_days_ago - datetime.timedelta(days=1),
        )
        report = outbox.dispatch()
        assert report.errors == [] and report.queued == len(expected)
    run_sender()

    messages = Message.objects.filter(rule=rule).select_related("participant")
    assert {m.participant.record_id for m in messages} == expected  # no row for the others
    assert {m.status for m in messages} == {Status.SENT}
    assert sorted(m.to for m in locmem.outbox) == sorted(people[r].phone for r in expected)


def test_when_the_sandbox_cannot_be_reached_the_text_waits_with_the_reason(synced, researcher):
    person = synced.people[0]
    # REDCap goes away after the sync: nothing listens on the instance's address any more.
    instance = synced.project.redcap_instance
    instance.api_url = "http://127.0.0.1:9/api/"
    instance.save()
    before = timezone.now()

    message = outbox.adhoc_send(participant=person, body="Hi [first_name]", actor=researcher)
    run_sender()

    message.refresh_from_db()
    assert locmem.outbox == []
    assert message.status == Status.QUEUED
    assert message.error.startswith("REDCap could not be reached: Could not connect to REDCap")
    assert message.not_before >= before + datetime.timedelta(minutes=1)


# --- Against a fake REDCap (the fake provider's record export) --------------------------------
@pytest.fixture
def project(researcher, fake_redcap):
    project = ProjectFactory(owner=researcher, always_open=True)
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project, first_name_field="fname")
    fake_redcap(project)
    return project


@pytest.fixture
def redcap(fake_provider):
    return fake_provider


@pytest.fixture
def people(project, redcap):
    redcap.redcap_records.update(
        {"1": {"fname": "Ana (REDCap)"}, "2": {"fname": "Ben (REDCap)"}, "3": {"fname": "Cy"}}
    )
    return [
        ParticipantFactory(project=project, record_id=r, first_name=f"Synced {r}")
        for r in ("1", "2", "3")
    ]


def send(project, researcher, body, **rule):
    rule = MessageRuleFactory(project=project, body=body, **rule)
    outbox.send_now(rule=rule, actor=researcher)
    return run_sender()


def test_one_record_export_per_batch_asks_for_the_batch_records_and_only_the_piped_fields(
    project, people, redcap, researcher
):
    report = send(project, researcher, "Hi [fname], since [enrollment_date].")

    assert report.sent == 3
    assert sorted(m.body.split(",")[0] for m in locmem.outbox) == [
        "Hi Ana (REDCap)",
        "Hi Ben (REDCap)",
        "Hi Cy",
    ]
    records_calls = [c for c in redcap.redcap_calls if c["content"] == "record"]
    assert len(records_calls) == 1
    assert sorted(records_calls[0]["records"]) == ["1", "2", "3"]
    assert records_calls[0]["fields"] == ["fname", "enrollment_date"]  # not phone, consent...
    assert records_calls[0]["events"] == []


def test_the_mapped_event_is_the_one_exported(project, people, redcap, researcher):
    FieldMapping.objects.filter(project=project).update(event="baseline_arm_1")
    assert send(project, researcher, "Hi [first_name]").sent == 3
    assert [c["events"] for c in redcap.redcap_calls] == [["baseline_arm_1"]]


def test_a_text_that_pipes_nothing_from_the_record_costs_no_redcap_call(
    project, people, redcap, researcher
):
    report = send(project, researcher, "Your visit is tomorrow (ref [record_id]).")
    assert report.sent == 3
    assert sorted(m.body for m in locmem.outbox)[0] == "Your visit is tomorrow (ref 1)."
    assert redcap.redcap_calls == []


def test_redcap_down_defers_every_text_with_the_reason_after_one_try_then_they_go(
    project, people, redcap, researcher
):
    redcap.redcap_down = True
    before = timezone.now()
    report = send(project, researcher, "Hi [first_name]")

    assert report.sent == 0 and locmem.outbox == []
    assert len(redcap.redcap_calls) == 1  # asked once for the batch, not once per text
    messages = list(Message.objects.filter(project=project))
    assert {m.status for m in messages} == {Status.QUEUED}
    assert all(m.error.startswith("REDCap could not be reached: ") for m in messages)
    assert all(m.not_before >= before + datetime.timedelta(minutes=1) for m in messages)

    redcap.redcap_down = False  # back up; and the retry falls due
    Message.objects.filter(project=project).update(not_before=timezone.now())
    assert run_sender().sent == 3
    assert sorted(m.body for m in locmem.outbox) == ["Hi Ana (REDCap)", "Hi Ben (REDCap)", "Hi Cy"]


def test_a_record_redcap_no_longer_has_is_skipped_with_the_reason(
    project, people, redcap, researcher
):
    redcap.redcap_gone.add("2")
    report = send(project, researcher, "Hi [first_name]")
    assert report.sent == 2
    gone = Message.objects.get(participant=people[1])
    assert (gone.status, gone.error) == (Status.SKIPPED, "The record is gone from REDCap.")


def test_without_a_linked_redcap_token_the_text_waits_and_says_so(project, people, researcher):
    project.redcap_link.delete()
    report = send(project, researcher, "Hi [first_name]")
    assert report.sent == 0
    errors = set(Message.objects.values_list("error", flat=True))
    assert errors == {"REDCap could not be reached: Link the project's REDCap API token first."}


def test_the_release_costs_no_more_queries_per_text_with_more_texts(project, redcap, researcher):
    def queries_per_text(n: int, start: int) -> float:
        for i in range(start, start + n):
            ParticipantFactory(project=project, record_id=str(i))
        rule = MessageRuleFactory(project=project, body="Hi [first_name]")
        outbox.send_now(rule=rule, actor=researcher)
        with CaptureQueriesContext(connection) as queries:
            assert run_sender().sent == n
        return len(queries.captured_queries) / n

    few = queries_per_text(3, 100)
    Participant.objects.filter(project=project).update(consented=False)
    many = queries_per_text(30, 200)
    # Inline sends (the test settings) cost more per text than the threaded sender's batches,
    # which the benchmark measures; what matters here is that REDCap adds nothing per text.
    assert many <= few, (few, many)
    assert len([c for c in redcap.redcap_calls if c["content"] == "record"]) == 2


# --- piping: the values from the exported record --------------------------------------------
MAPPING = SimpleNamespace(first_name_field="fname", date_fields=["enrollment_date", "visit"])


def test_record_fields_are_the_mapped_fields_the_body_pipes():
    assert piping.record_fields("Hi [first_name] on [visit]", MAPPING) == ["fname", "visit"]
    assert piping.record_fields("Hi [fname] [first_name]", MAPPING) == ["fname"]
    assert piping.record_fields("Ref [record_id]: [survey-link]", MAPPING) == []
    assert piping.record_fields("Hi [first_name]", None) == []


def test_record_values_are_read_as_the_sync_reads_them():
    row = {"record_id": "7", "fname": "  Ana ", "visit": "", "enrollment_date": "2026-12-01"}
    values = piping.record_values("7", row, MAPPING)
    assert values["record_id"] == "7"
    assert values["first_name"] == values["fname"] == "Ana"
    assert "visit" not in values  # blank in REDCap: piped as nothing, like a synced blank
    assert values["enrollment_date"]
