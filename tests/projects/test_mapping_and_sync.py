import pytest
from django.core.exceptions import ValidationError
from django_q.models import Schedule

from projects.crypto import encrypt
from projects.models import FieldMapping, Participant, SyncRun
from projects.redcap import RedcapClient
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.services import links, mapping, sync
from tests.projects.conftest import MAPPING

Issue = Participant.Issue


def test_mapping_is_validated_against_the_data_dictionary(linked_project, researcher):
    bad = {**MAPPING, "phone_field": "mobile_nr", "consent_value": "yes", "date_fields": ["tz"]}
    with pytest.raises(ValidationError) as exc:
        mapping.field_mapping_save(project=linked_project, actor=researcher, data=bad)
    errors = exc.value.message_dict
    assert "not a field in this project's data dictionary" in errors["phone_field"][0]
    assert "is not one of the coded values of sms_consent" in errors["consent_value"][0]
    assert "not a date field" in errors["date_fields"][0]
    assert not FieldMapping.objects.exists()


def test_withdrawn_logic_redcap_rejects_is_refused_with_its_message(linked_project, researcher):
    with pytest.raises(ValidationError) as exc:
        mapping.field_mapping_save(
            project=linked_project,
            actor=researcher,
            data={**MAPPING, "withdrawn_logic": "[withdrawn] = = '1'"},
        )
    assert "withdrawn_logic" in exc.value.message_dict
    assert not FieldMapping.objects.exists()


def test_sync_upserts_participants_and_lists_unusable_records_with_reasons(
    mapped_project, researcher, settings
):
    settings.PARTICIPANT_SYNC_BATCH_SIZE = 7  # several batches over the ~25 demo records
    run = sync.sync_run_start(project=mapped_project, actor=researcher)  # q2 sync mode: runs now
    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    records = store.rows(SANDBOX_PROJECTS[101])
    assert run.total == len({r for r, _, _ in records}) == run.processed
    people = {p.record_id: p for p in Participant.objects.filter(project=mapped_project)}
    assert len(people) == run.total
    issues = {p.issue for p in people.values()}
    assert {
        Issue.NO_PHONE,
        Issue.INVALID_PHONE,
        Issue.NO_CONSENT,
        Issue.UNKNOWN_TIME_ZONE,
    } <= issues
    assert run.skipped_count == sum(1 for p in people.values() if p.issue)
    ready = [p for p in people.values() if p.is_textable]
    assert ready and all(p.phone.startswith("+1") and len(p.phone) == 12 for p in ready)
    # Minimum necessary: a record that cannot be texted keeps no number, name or dates (every
    # sandbox record has a first name, so a name kept would show here).
    unusable = [p for p in people.values() if p.issue]
    assert unusable and all(
        (p.phone_encrypted, p.phone_last4, p.first_name, p.dates) == ("", "", "", {})
        for p in unusable
    )
    assert all(p.first_name for p in ready)
    assert any(p.withdrawn for p in people.values())
    assert any(p.dates.get("enrollment_date") for p in ready)


def test_a_second_sync_changes_nothing_and_gone_records_are_marked_not_deleted(
    mapped_project, researcher
):
    sync.sync_run_start(project=mapped_project, actor=researcher)
    first = {p.record_id: p.phone_encrypted for p in Participant.objects.all()}
    project = SANDBOX_PROJECTS[101]
    victim = next(iter(first))
    with store._lock:  # delete the record inside the sandbox, as REDCap users can
        rows = store._project_rows(project)
        for key in [k for k in rows if k[0] == victim]:
            del rows[key]
    run = sync.sync_run_start(project=mapped_project, actor=researcher)
    run.refresh_from_db()
    assert run.updated_count == 0  # nothing else changed
    assert run.created_count == 0
    assert run.gone_count == 1
    gone = Participant.objects.get(project=mapped_project, record_id=victim)
    assert gone.in_redcap is False
    assert {p.record_id: p.phone_encrypted for p in Participant.objects.all()} == first


def test_sync_refuses_to_start_before_link_and_mapping(sandbox_project, linked_project, researcher):
    with pytest.raises(ValidationError) as exc:
        sync.sync_run_start(project=linked_project, actor=researcher)
    assert "Map the phone and consent fields" in str(exc.value)


def test_a_duplicated_sync_task_does_nothing(mapped_project, researcher):
    run = SyncRun.objects.create(project=mapped_project, requested_by=researcher)
    assert sync.sync_run_execute(run_id=run.pk) is not None
    assert sync.sync_run_execute(run_id=run.pk) is None  # already claimed
    assert Participant.objects.count() > 0


def test_a_redcap_failure_fails_the_run_in_words(mapped_project, researcher):
    from projects.models import RedcapLink

    RedcapLink.objects.filter(project=mapped_project).update(token_encrypted=encrypt("0" * 32))
    run = sync.sync_run_start(project=mapped_project, actor=researcher)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "token" in run.error.lower()


def test_the_sync_runs_every_15_minutes(db):
    schedule = Schedule.objects.get(name="participant-sync-all")
    assert schedule.func == "projects.tasks.participant_sync_all"
    assert schedule.minutes == 15


def test_the_sync_asks_redcap_for_the_mapped_fields_only_and_in_batches(
    mapped_project, researcher, settings, monkeypatch
):
    exports = []
    export = RedcapClient._export_records

    def spy(self, **kwargs):
        exports.append(kwargs)
        return export(self, **kwargs)

    monkeypatch.setattr(RedcapClient, "_export_records", spy)
    settings.PARTICIPANT_SYNC_BATCH_SIZE = 7
    dictionary = {f["field_name"] for f in SANDBOX_PROJECTS[101].metadata}
    mapped = {"record_id", "phone", "sms_consent", "tz", "first_name", "optout", "enrollment_date"}
    assert mapped < dictionary  # the demo holds more than the mapping names (e.g. "withdrawn")

    run = sync.sync_run_start(project=mapped_project, actor=researcher)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    listings = [e for e in exports if not e.get("records")]
    batches = [e for e in exports if e.get("records")]
    # The record ids (all, then the withdrawn ones by REDCap's own logic): the id field alone.
    assert [e["fields"] for e in listings] == [["record_id"], ["record_id"]]
    assert listings[1]["filter_logic"] == "[withdrawn] = '1'"
    # The records themselves: the mapped fields and nothing else, at most 7 records a call.
    assert all(set(e["fields"]) == mapped for e in batches)
    assert [len(e["records"]) for e in batches] == [7, 7, 7, run.total - 21]
    participant = Participant.objects.filter(project=mapped_project, issue="").first()
    assert set(participant.dates) == {"enrollment_date"}


def test_a_longitudinal_project_syncs_from_its_mapped_event_end_to_end(
    longitudinal_project, researcher, monkeypatch
):
    """PID 102: the contact form (phone, consent, time zone...) is in the baseline event only;
    records 1 and 2 also have a week-1 row (their weekly check-in) where those fields are blank."""
    project = longitudinal_project
    # Record 3 withdraws, on its baseline row, through the REDCap API.
    links.redcap_client_for(project).import_records(
        [{"record_id": "3", "redcap_event_name": "baseline_arm_1", "withdrawn": "1"}]
    )
    # The mapping names the event (and REDCap checks the withdrawn logic within it).
    mapping.field_mapping_save(
        project=project, actor=researcher, data={**MAPPING, "event": "baseline_arm_1"}
    )
    exports = []
    export = RedcapClient._export_records

    def spy(self, **kwargs):
        exports.append(kwargs)
        return export(self, **kwargs)

    monkeypatch.setattr(RedcapClient, "_export_records", spy)

    run = sync.sync_run_start(project=project, actor=researcher)

    run.refresh_from_db()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.total, run.processed, run.created_count) == (6, 6, 6)
    # Every export of the sync (ids, withdrawn ids, the records) asked for the mapped event only.
    assert len(exports) == 3
    assert all(e["events"] == ["baseline_arm_1"] for e in exports)
    assert exports[1]["filter_logic"] == "[withdrawn] = '1'"
    people = {p.record_id: p for p in Participant.objects.filter(project=project)}
    assert sorted(people) == ["1", "2", "3", "4", "5", "6"]
    # Records 1 and 2 are read once, from their baseline row: not "no phone" from week 1.
    assert sorted(r for r, p in people.items() if p.is_textable) == ["1", "2", "4", "5"]
    assert people["3"].withdrawn and people["3"].issue == ""
    assert not any(p.withdrawn for r, p in people.items() if r != "3")
    assert people["6"].issue == Issue.NO_PHONE  # Finley has no number
    avery = people["1"]
    assert (avery.first_name, avery.time_zone, avery.phone) == (
        "Avery",
        "America/Chicago",
        "+16155550101",
    )
    baseline = {r: v for r, e, v in store.rows(SANDBOX_PROJECTS[102]) if e == "baseline_arm_1"}
    assert baseline["1"]["enrollment_date"]
    assert avery.dates == {"enrollment_date": baseline["1"]["enrollment_date"]}
