"""After a Data Entry Trigger: one read of the record from REDCap, its participant updated as the
sync would, and `projects.signals.record_saved` sent once per read.

Everything runs over real HTTP: the sandbox REDCap saves a record and posts its trigger to the
live server's address, which notes it; django-q2 (inline in tests) runs the drain and the read,
which calls the sandbox's API back. `redcap_calls` counts what the sandbox's API answered."""

import threading
from collections import Counter

import httpx
import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from projects import crypto
from projects.models import (
    DataEntryTrigger,
    FieldMapping,
    Participant,
    RecordRefresh,
    RedcapLink,
)
from projects.sandbox import entry, store, views
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.services import det, sync
from projects.signals import record_saved

DEMO = SANDBOX_PROJECTS[101]


@pytest.fixture
def redcap_calls(monkeypatch):
    """Every call the sandbox's API answers: (content, records asked for, filter logic)."""
    calls: list[tuple[str, tuple[str, ...], str]] = []
    lock = threading.Lock()

    def counting(content, method):
        def wrapper(request, project):
            with lock:
                calls.append(
                    (
                        content + (" import" if "data" in request.POST else ""),
                        tuple(views._array(request, "records")),
                        request.POST.get("filterLogic", ""),
                    )
                )
            return method(request, project)

        return wrapper

    for content, method in list(views.METHODS.items()):
        monkeypatch.setitem(views.METHODS, content, counting(content, method))
    return calls


@pytest.fixture
def hook():
    """What `record_saved` was sent with, each time (receivers run in the live server's
    threads)."""
    calls: list[dict] = []

    def receiver(sender, signal, **kwargs):
        calls.append(kwargs)

    record_saved.connect(receiver, weak=False, dispatch_uid="test-det-hook")
    yield calls
    record_saved.disconnect(dispatch_uid="test-det-hook")


@pytest.fixture
def det_project(mapped_project, researcher, live_server, settings):
    """The demo project, synced once, with its Data Entry Trigger pasted into the sandbox."""
    settings.DET_QUIET_SECONDS = 0.2
    sync.sync_run_start(project=mapped_project, actor=researcher)  # q2 inline: runs now
    trigger = det.data_entry_trigger_enable(project=mapped_project, actor=researcher)
    address = live_server.url + reverse("redcap-det", args=[trigger.secret])
    entry.det_url_set(DEMO, address, origins=[live_server.url])
    mapped_project.det_address = address
    return mapped_project


def _base(live_server) -> str:
    return live_server.url + "/sandbox/redcap/"


def _contact(record: str, **changes) -> dict:
    """The contact form's values for `record` as REDCap holds them, with `changes`."""
    values = next(v for r, _, v in store.rows(DEMO) if r == record)
    return {c: values[c] for c in entry.instrument_columns(DEMO, "contact")} | changes


def _save(live_server, record: str, **changes):
    return entry.record_save(
        DEMO,
        record=record,
        instrument="contact",
        values=_contact(record, **changes),
        status="2",
        username="coordinator",
        base_url=_base(live_server),
    )


def _snapshot(project) -> list[tuple]:
    return list(Participant.objects.filter(project=project).order_by("pk").values_list())


def test_a_save_in_redcap_updates_its_participant_and_is_announced_once_with_ids(
    det_project, live_server, hook, redcap_calls
):
    participant = Participant.objects.get(project=det_project, record_id="2")
    assert participant.phone == "+16155550102"
    assert _save(live_server, "2", phone="(615) 555-0199").result(timeout=60) == "200"
    participant.refresh_from_db()
    assert participant.phone == "+16155550199" and participant.phone_last4 == "0199"
    assert hook == [
        {
            "project_id": det_project.pk,
            "participant_id": participant.pk,
            "record_id": "2",
            "instrument": "contact",
            "event": "",
            "repeat_instance": 1,
            "saves": (("contact", "", 1),),
        }
    ]
    # One read of that record, one check of the withdrawn logic; no data dictionary, no sync.
    assert redcap_calls == [
        ("record", ("2",), ""),
        ("record", ("2",), "[withdrawn] = '1'"),
    ]
    assert not RecordRefresh.objects.exists()
    trigger = DataEntryTrigger.objects.get(project=det_project)
    assert trigger.last_post_at and trigger.last_read_at and not trigger.last_error


def test_without_withdrawn_logic_a_save_costs_one_redcap_call(
    det_project, live_server, hook, redcap_calls
):
    FieldMapping.objects.filter(project=det_project).update(withdrawn_logic="")
    assert _save(live_server, "3", first_name="Cass").result(timeout=60) == "200"
    assert redcap_calls == [("record", ("3",), "")]
    assert Participant.objects.get(project=det_project, record_id="3").first_name == "Cass"
    assert len(hook) == 1


def test_a_withdrawal_or_lost_consent_in_redcap_stops_texts_within_the_save(
    det_project, live_server
):
    assert Participant.objects.get(project=det_project, record_id="1").is_textable
    _save(live_server, "1", withdrawn="1").result(timeout=60)
    _save(live_server, "3", sms_consent="0").result(timeout=60)
    one = Participant.objects.get(project=det_project, record_id="1")
    three = Participant.objects.get(project=det_project, record_id="3")
    assert one.withdrawn and not one.is_textable
    # As the sync: without consent the number is not kept (minimum necessary).
    assert three.issue == Participant.Issue.NO_CONSENT and three.phone_encrypted == ""


def test_a_new_record_saved_in_redcap_becomes_a_participant(det_project, live_server, hook):
    record = str(store.next_record_id(DEMO))
    future = entry.record_save(
        DEMO,
        record=record,
        instrument="contact",
        values={"first_name": "Zed", "phone": "(615) 555-0188", "sms_consent": "1"},
        status="0",  # a partial save posts too
        username="coordinator",
        base_url=_base(live_server),
    )
    assert future.result(timeout=60) == "200"
    created = Participant.objects.get(project=det_project, record_id=record)
    assert created.phone == "+16155550188" and created.is_textable
    assert [c["participant_id"] for c in hook] == [created.pk]


def test_a_forged_post_for_a_record_whose_values_differ_changes_nothing(
    det_project, hook, redcap_calls
):
    before = _snapshot(det_project)
    response = httpx.post(
        det_project.det_address,
        data={
            "project_id": "101",
            "record": "3",
            "instrument": "contact",
            "username": "attacker",
            "contact_complete": "2",
            "phone": "+15550000000",
            "sms_consent": "0",
            "withdrawn": "1",
            "optout___1": "1",
            "first_name": "Mallory",
            "redcap_url": "http://169.254.169.254/",
        },
        timeout=60,
    )
    assert response.status_code == 200
    assert _snapshot(det_project) == before  # every field, updated_at included
    assert [(c, r) for c, r, _ in redcap_calls] == [("record", ("3",)), ("record", ("3",))]
    # The record was read again, so the hook says so, with ids only: a receiver reads what it
    # needs from REDCap, never from the post.
    assert len(hook) == 1 and hook[0]["record_id"] == "3"
    assert set(hook[0]) == {
        "project_id",
        "participant_id",
        "record_id",
        "instrument",
        "event",
        "repeat_instance",
        "saves",
    }


def test_a_forged_post_for_a_record_redcap_does_not_have_creates_nothing(
    det_project, hook, redcap_calls
):
    before = _snapshot(det_project)
    response = httpx.post(
        det_project.det_address,
        data={"project_id": "101", "record": "999", "instrument": "contact"},
        timeout=60,
    )
    assert response.status_code == 200
    assert _snapshot(det_project) == before
    assert not Participant.objects.filter(record_id="999").exists()
    assert hook == []
    assert redcap_calls == [("record", ("999",), "")]  # one read, nothing found, nothing more


def test_an_api_import_posts_no_trigger_and_reads_nothing(det_project, live_server, redcap_calls):
    from projects.services.links import redcap_client_for

    redcap_client_for(det_project).import_records([{"record_id": "4", "first_name": "Imported"}])
    # A save after it posts (and is read); the import before it posted nothing.
    _save(live_server, "5").result(timeout=60)
    assert [d.record for d in entry.deliveries(DEMO)] == ["5"]
    assert [c for c, records, _ in redcap_calls if "4" in records] == []


def test_a_burst_of_100_saves_of_one_record_makes_one_read_and_one_announcement(
    det_project, live_server, hook, redcap_calls, settings
):
    # Generous windows for a loaded machine: the burst must not pause 3 s between two saves.
    settings.DET_QUIET_SECONDS = 3.0
    settings.DET_MAX_WAIT_SECONDS = 120.0
    futures = [_save(live_server, "1", first_name=f"Avery {n}") for n in range(100)]
    answers = Counter(f.result(timeout=180) for f in futures)
    assert answers == {"200": 100}
    reads = [records for content, records, logic in redcap_calls if content == "record"]
    assert redcap_calls == [
        ("record", ("1",), ""),  # the one read of the record
        ("record", ("1",), "[withdrawn] = '1'"),  # and its withdrawn check
    ], reads
    assert len(hook) == 1 and hook[0]["saves"] == (("contact", "", 1),)
    assert Participant.objects.get(project=det_project, record_id="1").first_name == "Avery 99"
    assert not RecordRefresh.objects.exists()


def test_each_coalesced_burst_and_each_record_is_announced_once(
    det_project, live_server, hook, settings
):
    # Generous windows for a loaded machine: a burst must not pause 3 s between two saves.
    settings.DET_QUIET_SECONDS = 3.0
    settings.DET_MAX_WAIT_SECONDS = 120.0
    first = [_save(live_server, "1", first_name=f"A{n}") for n in range(5)]
    first += [_save(live_server, "2", first_name=f"B{n}") for n in range(5)]
    assert {f.result(timeout=60) for f in first} == {"200"}
    assert sorted(c["record_id"] for c in hook) == ["1", "2"]
    second = [_save(live_server, "1", first_name=f"C{n}") for n in range(3)]
    assert {f.result(timeout=60) for f in second} == {"200"}
    assert sorted(c["record_id"] for c in hook) == ["1", "1", "2"]


def test_saves_that_arrive_during_a_read_are_read_again_after_it(
    det_project, researcher, hook, redcap_calls
):
    trigger = det_project.data_entry_trigger
    post = det.DetPost(
        project_id=101, record="2", instrument="contact", event="", repeat_instance=None
    )
    cache.add(det.LEASE_KEY, "someone else", timeout=60)  # no drain runs on its own here
    row = det.det_post_accept(trigger=trigger, post=post)
    RecordRefresh.objects.filter(pk=row.pk).update(due_at=timezone.now())
    assert det._claim_due(timezone.now()) == [row.pk]
    later = det.DetPost(
        project_id=101, record="2", instrument="baseline_survey", event="", repeat_instance=None
    )
    det.det_post_accept(trigger=trigger, post=later)  # saved again while the read runs
    det.record_refresh_execute(refresh_id=row.pk)
    assert [c["instrument"] for c in hook] == ["contact"]
    row.refresh_from_db()
    assert row.status == RecordRefresh.Status.WAITING and row.saves == [
        ["baseline_survey", "", None]
    ]
    cache.delete(det.LEASE_KEY)
    det.refresh_drain()
    assert [c["instrument"] for c in hook] == ["contact", "baseline_survey"]
    assert not RecordRefresh.objects.exists()


def test_a_second_drain_leaves_at_once_while_one_runs(det_project):
    cache.add(det.LEASE_KEY, "another drain", timeout=60)
    assert det.refresh_drain() == 0


def test_a_read_whose_task_was_lost_is_taken_up_again(det_project, hook):
    long_ago = timezone.now() - timezone.timedelta(seconds=det.LOST_READ + 5)
    RecordRefresh.objects.create(
        project=det_project,
        record_id="2",
        status=RecordRefresh.Status.READING,
        due_at=long_ago,
        last_post_at=long_ago,
        claimed_at=long_ago,
        reading_saves=[["contact", "", None]],
    )
    assert det.refresh_drain() == 1
    assert [c["record_id"] for c in hook] == ["2"]
    assert not RecordRefresh.objects.exists()


def test_when_redcap_refuses_the_read_the_owner_sees_why_and_the_sync_catches_up(
    det_project, live_server, hook, monkeypatch
):
    monkeypatch.setattr(det, "RETRY_SECONDS", 0)
    wrong = "0" * 32
    RedcapLink.objects.filter(project=det_project).update(token_encrypted=crypto.encrypt(wrong))
    before = _snapshot(det_project)
    assert _save(live_server, "2", phone="(615) 555-0177").result(timeout=60) == "200"
    assert _snapshot(det_project) == before and hook == []
    assert not RecordRefresh.objects.exists()  # tried twice, then left to the 15-minute sync
    trigger = DataEntryTrigger.objects.get(project=det_project)
    assert "REDCap refused the API token" in trigger.last_error and trigger.last_error_at


def test_a_receiver_that_fails_does_not_stop_the_read_or_other_receivers(
    det_project, live_server, hook
):
    def broken(sender, **kwargs):
        raise RuntimeError("a receiver's bug")

    record_saved.connect(broken, weak=False, dispatch_uid="test-broken")
    try:
        assert _save(live_server, "2", first_name="Bee").result(timeout=60) == "200"
    finally:
        record_saved.disconnect(dispatch_uid="test-broken")
    assert Participant.objects.get(project=det_project, record_id="2").first_name == "Bee"
    assert len(hook) == 1
