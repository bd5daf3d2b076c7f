"""Opt-outs and REDCap, against the live sandbox: read from the mapped opt-out field by the sync,
written back to it when StudyText records a STOP (and cleared on START), never lost."""

import logging

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction

from portal.models import AuditEvent
from projects import selectors, tasks
from projects.models import FieldMapping, Participant, RedcapInstance
from projects.sandbox import store
from projects.sandbox.data import LONGITUDINAL_TOKEN, SANDBOX_PROJECTS
from projects.services import links, mapping, participants, sync
from tests.factories import ParticipantFactory, ProjectFactory
from tests.projects.conftest import MAPPING

KAI = "11"  # the sandbox's record 11: consented, valid phone, "Stop texting me" ticked
WREN = "23"  # ticked too, but never consented
AVERY = "1"  # an ordinary, textable participant


def synced(project, researcher) -> dict[str, Participant]:
    run = sync.sync_run_start(project=project, actor=researcher)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return {p.record_id: p for p in Participant.objects.filter(project=project)}


def redcap_row(project, record: str, field: str = "optout", event: str | None = None) -> dict:
    """The record as REDCap exports it now, over HTTP."""
    client = links.redcap_client_for(project)
    rows = client.records(records=[record], fields=[field], events=[event] if event else None)
    assert len(rows) == 1, rows
    return rows[0]


def request_write_back(participant, *, opted_out=True, capture) -> None:
    """What messaging does when it records a STOP (or a START): flag it in its transaction; the
    task runs after the commit (inline: q2 is in sync mode in tests)."""
    with capture(execute=True), transaction.atomic():
        participants.participant_optout_write_back_request(
            participant_id=participant.pk, opted_out=opted_out
        )


# --- Reading: the sync --------------------------------------------------------------------
def test_a_participant_opted_out_in_redcap_is_never_textable(mapped_project, researcher):
    people = synced(mapped_project, researcher)
    kai = people[KAI]
    assert kai.redcap_opted_out and kai.consented and kai.issue == "" and kai.phone
    assert not kai.is_textable
    assert people[AVERY].is_textable and not people[AVERY].redcap_opted_out
    assert {p.record_id for p in people.values() if p.redcap_opted_out} == {KAI, WREN}
    ready = selectors.participants_for_project(project=mapped_project, show="ready")
    assert KAI not in {p.record_id for p in ready}
    assert all(p.is_textable for p in ready)
    opted_out = selectors.participants_for_project(project=mapped_project, show="opted_out")
    assert {p.record_id for p in opted_out} == {KAI, WREN}
    counts = selectors.participant_counts(project=mapped_project)
    assert counts["opted_out"] == 2
    assert counts["ready"] == len(ready)


def test_unticking_the_opt_out_in_redcap_makes_the_participant_textable_again(
    mapped_project, researcher
):
    synced(mapped_project, researcher)
    links.redcap_client_for(mapped_project).import_records([{"record_id": KAI, "optout___1": "0"}])
    kai = synced(mapped_project, researcher)[KAI]
    assert not kai.redcap_opted_out and kai.is_textable


def test_without_an_opt_out_field_nobody_is_marked_opted_out(linked_project, researcher):
    mapping.field_mapping_save(
        project=linked_project, actor=researcher, data={**MAPPING, "optout_field": ""}
    )
    people = synced(linked_project, researcher)
    assert not any(p.redcap_opted_out for p in people.values())
    assert people[KAI].is_textable


def test_the_opt_out_value_must_be_one_of_the_fields_codes(linked_project, researcher):
    with pytest.raises(ValidationError) as exc:
        mapping.field_mapping_save(
            project=linked_project, actor=researcher, data={**MAPPING, "optout_value": "2"}
        )
    assert exc.value.message_dict["optout_value"] == [
        "“2” is not one of the coded values of optout: 1 (Stop texting me)."
    ]


def test_the_opt_out_field_is_among_the_fields_a_sync_exports(mapped_project):
    assert "optout" in FieldMapping.objects.get(project=mapped_project).redcap_fields


# --- Writing back -------------------------------------------------------------------------
def test_a_stop_is_written_to_the_checkbox_and_audited(
    mapped_project, researcher, django_capture_on_commit_callbacks
):
    avery = synced(mapped_project, researcher)[AVERY]
    assert redcap_row(mapped_project, AVERY)["optout___1"] == "0"
    request_write_back(avery, capture=django_capture_on_commit_callbacks)
    assert redcap_row(mapped_project, AVERY)["optout___1"] == "1"
    avery.refresh_from_db()
    assert avery.optout_write_pending == "" and avery.redcap_opted_out
    event = AuditEvent.objects.get(action="participant.optout_written_to_redcap")
    assert event.message == "Record 1: opt-out written to REDCap, optout___1 = “1”."
    # The next sync reads it back: still opted out, nothing flips.
    assert synced(mapped_project, researcher)[AVERY].redcap_opted_out


def test_writing_back_twice_is_harmless(
    mapped_project, researcher, django_capture_on_commit_callbacks
):
    avery = synced(mapped_project, researcher)[AVERY]
    request_write_back(avery, capture=django_capture_on_commit_callbacks)
    before = store.rows(SANDBOX_PROJECTS[101])
    request_write_back(avery, capture=django_capture_on_commit_callbacks)
    assert participants.participant_optout_write_back(participant_id=avery.pk) is True
    assert store.rows(SANDBOX_PROJECTS[101]) == before
    assert AuditEvent.objects.filter(action="participant.optout_written_to_redcap").count() == 1
    avery.refresh_from_db()
    assert avery.optout_write_pending == ""


def test_a_start_clears_the_opt_out_in_redcap(
    mapped_project, researcher, django_capture_on_commit_callbacks
):
    kai = synced(mapped_project, researcher)[KAI]
    request_write_back(kai, opted_out=False, capture=django_capture_on_commit_callbacks)
    assert redcap_row(mapped_project, KAI)["optout___1"] == "0"
    kai.refresh_from_db()
    assert not kai.redcap_opted_out and kai.is_textable
    assert AuditEvent.objects.filter(action="participant.optin_written_to_redcap").exists()


def test_a_yes_no_opt_out_field_gets_its_coded_value_and_an_opt_in_empties_it(
    linked_project, researcher, django_capture_on_commit_callbacks
):
    # The sandbox's "withdrawn" yes/no field stands in for a yes/no opt-out field.
    data = {**MAPPING, "optout_field": "withdrawn", "optout_value": "1", "withdrawn_logic": ""}
    mapping.field_mapping_save(project=linked_project, actor=researcher, data=data)
    avery = synced(linked_project, researcher)[AVERY]
    request_write_back(avery, capture=django_capture_on_commit_callbacks)
    assert redcap_row(linked_project, AVERY, "withdrawn")["withdrawn"] == "1"
    request_write_back(avery, opted_out=False, capture=django_capture_on_commit_callbacks)
    assert redcap_row(linked_project, AVERY, "withdrawn")["withdrawn"] == ""


def test_with_no_opt_out_field_mapped_nothing_is_written_and_the_log_says_so(
    linked_project, researcher, caplog, django_capture_on_commit_callbacks
):
    mapping.field_mapping_save(
        project=linked_project, actor=researcher, data={**MAPPING, "optout_field": ""}
    )
    avery = synced(linked_project, researcher)[AVERY]
    before = store.rows(SANDBOX_PROJECTS[101])
    with caplog.at_level(logging.INFO, logger="projects.services.participants"):
        request_write_back(avery, capture=django_capture_on_commit_callbacks)
    assert store.rows(SANDBOX_PROJECTS[101]) == before
    assert "maps no opt-out field" in caplog.text and "record(s) 1 " in caplog.text
    avery.refresh_from_db()
    assert avery.optout_write_pending == ""
    assert not AuditEvent.objects.filter(action__startswith="participant.opt").exists()


def test_while_redcap_is_down_the_opt_out_waits_and_the_15_minute_sync_writes_it(
    mapped_project, researcher, caplog, django_capture_on_commit_callbacks
):
    people = synced(mapped_project, researcher)
    avery, kai = people[AVERY], people[KAI]
    instance = mapped_project.redcap_instance
    real_url = instance.api_url
    # Nothing listens on port 9 of this machine: connection refused, as when REDCap is down.
    RedcapInstance.objects.filter(pk=instance.pk).update(
        api_url="http://127.0.0.1:9/sandbox/redcap/api/"
    )
    with caplog.at_level(logging.WARNING, logger="projects.services.participants"):
        request_write_back(avery, capture=django_capture_on_commit_callbacks)
        # STOP, then START, while REDCap is down: the latest wish is the one written.
        request_write_back(kai, capture=django_capture_on_commit_callbacks)
        request_write_back(kai, opted_out=False, capture=django_capture_on_commit_callbacks)
    assert "stays pending and the 15-minute sync tries again" in caplog.text
    assert dict(
        Participant.objects.filter(pk__in=[avery.pk, kai.pk]).values_list(
            "record_id", "optout_write_pending"
        )
    ) == {AVERY: "out", KAI: "in"}
    assert selectors.participant_counts(project=mapped_project)["optout_pending"] == 2
    assert participants.optout_write_backs_retry() == 2  # still down: both still wait

    RedcapInstance.objects.filter(pk=instance.pk).update(api_url=real_url)
    tasks.participant_sync_all()
    assert redcap_row(mapped_project, AVERY)["optout___1"] == "1"
    assert redcap_row(mapped_project, KAI)["optout___1"] == "0"
    assert not Participant.objects.exclude(optout_write_pending="").exists()


def test_a_pending_opt_out_is_written_by_the_projects_own_sync_before_it_reads(
    mapped_project, researcher
):
    avery = synced(mapped_project, researcher)[AVERY]
    Participant.objects.filter(pk=avery.pk).update(optout_write_pending="out")  # task was lost
    assert synced(mapped_project, researcher)[AVERY].redcap_opted_out
    assert redcap_row(mapped_project, AVERY)["optout___1"] == "1"


def test_a_record_gone_from_redcap_is_never_created_by_a_write_back(mapped_project, researcher):
    synced(mapped_project, researcher)
    ghost = ParticipantFactory(project=mapped_project, record_id="999", optout_write_pending="out")
    assert participants.participant_optout_write_back(participant_id=ghost.pk) is True
    assert not store.record_exists(SANDBOX_PROJECTS[101], "999")
    ghost.refresh_from_db()
    assert ghost.optout_write_pending == ""


@pytest.fixture
def longitudinal_project(sandbox_instance, researcher):
    project = ProjectFactory(
        redcap_instance=sandbox_instance, redcap_project_id=102, owner=researcher
    )
    links.redcap_link_set(project=project, token=LONGITUDINAL_TOKEN, actor=researcher)
    mapping.field_mapping_save(
        project=project, actor=researcher, data={**MAPPING, "event": "baseline_arm_1"}
    )
    return project


def test_a_longitudinal_project_writes_the_opt_out_in_the_mapped_event(
    longitudinal_project, researcher, django_capture_on_commit_callbacks
):
    avery = synced(longitudinal_project, researcher)[AVERY]
    request_write_back(avery, capture=django_capture_on_commit_callbacks)
    row = redcap_row(longitudinal_project, AVERY, event="baseline_arm_1")
    assert row["redcap_event_name"] == "baseline_arm_1" and row["optout___1"] == "1"
    events = {e for r, e, _ in store.rows(SANDBOX_PROJECTS[102]) if r == AVERY}
    assert events == {"baseline_arm_1", "week_1_arm_1"}  # no event row was made up
