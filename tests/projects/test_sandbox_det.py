"""The sandbox REDCap posts a Data Entry Trigger as REDCap does: after a save by a person (a data
entry form, a survey, a partial save, a new record), with REDCap's fields; never after an API
import; and only to this site (docs/redcap.md, "The Data Entry Trigger")."""

import html
import threading

import pytest
from django.urls import reverse

from projects.models import Participant
from projects.sandbox import entry, store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.sandbox.store import SandboxError
from projects.services import det, sync
from tests.factories import UserFactory

DEMO, LONGITUDINAL = SANDBOX_PROJECTS[101], SANDBOX_PROJECTS[102]


@pytest.fixture
def posted(monkeypatch):
    """The form fields of every post the live server's Data Entry Trigger address parsed."""
    seen: list[dict[str, str]] = []
    lock = threading.Lock()
    parse = det.det_post_parse

    def spy(data):
        with lock:
            seen.append({k: v[0] for k, v in data.items()})
        return parse(data)

    monkeypatch.setattr(det, "det_post_parse", spy)
    return seen


@pytest.fixture
def address(mapped_project, researcher, live_server, settings):
    settings.DET_QUIET_SECONDS = 0.1
    sync.sync_run_start(project=mapped_project, actor=researcher)
    trigger = det.data_entry_trigger_enable(project=mapped_project, actor=researcher)
    url = live_server.url + reverse("redcap-det", args=[trigger.secret])
    entry.det_url_set(DEMO, url, origins=[live_server.url])
    return url


def _base(live_server) -> str:
    return live_server.url + "/sandbox/redcap/"


def test_a_data_entry_save_posts_redcaps_fields(address, live_server, posted):
    future = entry.record_save(
        DEMO,
        record="2",
        instrument="baseline_survey",
        values={"bl_mood": "2", "bl_sleep_hours": "5", "bl_goal": "Sleep more"},
        status="1",
        username="coordinator",
        base_url=_base(live_server),
    )
    assert future.result(timeout=60) == "200"
    assert posted == [
        {
            "redcap_url": _base(live_server),
            "project_url": f"{_base(live_server)}redcap_v14.5.11/index.php?pid=101",
            "project_id": "101",
            "username": "coordinator",
            "record": "2",
            "instrument": "baseline_survey",
            "redcap_repeat_instance": "1",
            "redcap_repeat_instrument": "",
            "baseline_survey_complete": "1",
        }
    ]
    saved = next(v for r, _, v in store.rows(DEMO) if r == "2")
    assert (saved["bl_mood"], saved["bl_goal"], saved["baseline_survey_complete"]) == (
        "2",
        "Sleep more",
        "1",
    )


def test_a_longitudinal_post_names_its_event(address, live_server, posted):
    entry.det_url_set(LONGITUDINAL, address, origins=[live_server.url])
    future = entry.record_save(
        LONGITUDINAL,
        record="1",
        instrument="weekly_checkin",
        event="week_2_arm_1",
        values={"wk_goal_met": "1", "wk_servings": "3"},
        status="2",
        username="coordinator",
        base_url=_base(live_server),
    )
    assert future.result(timeout=60) == "404"  # PID 102 is not the address's project (101)
    assert posted[0]["redcap_event_name"] == "week_2_arm_1"
    assert posted[0]["weekly_checkin_complete"] == "2"


def test_a_survey_submitted_or_saved_for_later_posts_as_its_respondent(
    address, live_server, posted, client, mapped_project
):
    link = store.survey_link(
        DEMO, instrument="weekly_checkin", record="5", event="", base_url="/sandbox/redcap/surveys/"
    )
    query = link.split("?", 1)[1]
    client.post(f"/sandbox/redcap/surveys/?{query}", {"partial": "1"})
    _wait_for_deliveries(1)
    client.post(f"/sandbox/redcap/surveys/?{query}", {})
    _wait_for_deliveries(2)
    assert [(p["username"], p["weekly_checkin_complete"]) for p in posted] == [
        ("[survey respondent]", "0"),
        ("[survey respondent]", "2"),
    ]
    values = next(v for r, _, v in store.rows(DEMO) if r == "5")
    assert store.response_status(DEMO, values, "weekly_checkin") == 2


def _wait_for_deliveries(n: int, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while len(entry.deliveries(DEMO)) < n:
        assert time.monotonic() < deadline, "the sandbox did not post its trigger"
        time.sleep(0.05)


def test_an_api_import_posts_nothing(address, mapped_project, live_server, posted):
    from projects.services.links import redcap_client_for

    redcap_client_for(mapped_project).import_records([{"record_id": "4", "first_name": "Api"}])
    entry.record_save(
        DEMO,
        record="6",
        instrument="contact",
        values={"first_name": "Finley"},
        status="2",
        username="coordinator",
        base_url=_base(live_server),
    ).result(timeout=60)
    assert [p["record"] for p in posted] == ["6"]


def test_a_refused_value_saves_nothing_and_posts_nothing(address, live_server, posted):
    before = store.rows(DEMO)
    with pytest.raises(SandboxError, match="must be a number"):
        entry.record_save(
            DEMO,
            record="2",
            instrument="baseline_survey",
            values={"bl_sleep_hours": "lots"},
            status="0",
            username="coordinator",
            base_url=_base(live_server),
        )
    assert store.rows(DEMO) == before and entry.deliveries(DEMO) == [] and posted == []


def test_the_sandbox_posts_only_to_this_site(live_server, db):
    for url in (
        "http://169.254.169.254/latest/meta-data/",
        "https://elsewhere.example.org/det",
        "http://user:pw@" + live_server.url.split("://")[1] + "/x",
        "ftp://127.0.0.1/x",
    ):
        with pytest.raises(SandboxError, match="only to this site"):
            entry.det_url_set(DEMO, url, origins=[live_server.url])
    assert entry.det_url(DEMO) == ""


# --- The sandbox's pages ------------------------------------------------------------------------
def test_the_project_setup_page_sets_the_trigger_and_refuses_other_sites(
    as_user, researcher, address
):
    client = as_user(researcher)
    page = reverse("sandbox-redcap-project", args=[101])
    response = client.post(page, {"det_url": "https://evil.example/steal"})
    assert response.status_code == 200
    assert "only to this site" in response.content.decode()
    assert entry.det_url(DEMO) == address  # unchanged
    response = client.post(page, {"det_url": ""})
    assert response.status_code == 302 and entry.det_url(DEMO) == ""
    response = client.post(page, {"det_url": "http://testserver/webhooks/redcap/abc/"})
    assert response.status_code == 302
    assert entry.det_url(DEMO) == "http://testserver/webhooks/redcap/abc/"


def test_the_sandboxs_people_pages_need_a_signed_in_user(client, db):
    for url in (
        reverse("sandbox-redcap-project", args=[101]),
        reverse("sandbox-redcap-entry", args=[101]) + "?record=1&instrument=contact",
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_data_entry_page_saves_and_posts_and_shows_refusals(
    as_user, researcher, address, live_server, posted
):
    client = as_user(researcher)
    url = reverse("sandbox-redcap-entry", args=[101]) + "?record=3&instrument=contact"
    page = client.get(url).content.decode()
    assert 'name="phone"' in page and "Casey" in page and 'name="optout___1"' in page
    refused = client.post(
        url,
        {"first_name": "Casey", "phone": "6155550103", "enrollment_date": "soon", "status": "2"},
    )
    assert (
        "Not saved: enrollment_date “soon”: The value must be a date in the format Y-M-D."
        in html.unescape(refused.content.decode())
    )
    assert entry.deliveries(DEMO) == []
    saved = client.post(
        url,
        {"first_name": "Casey", "phone": "(615) 555-0166", "sms_consent": "1", "status": "2"},
        follow=True,
    )
    assert "Record 3 saved. The Data Entry Trigger was posted." in saved.content.decode()
    _wait_for_deliveries(1)
    assert posted[-1]["record"] == "3" and posted[-1]["username"] == researcher.email
    _wait_until(lambda: Participant.objects.get(record_id="3").phone_last4 == "0166")


def _wait_until(condition, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_unknown_sandbox_projects_records_and_forms_are_404(as_user, researcher, db):
    client = as_user(researcher)
    entry_url = reverse("sandbox-redcap-entry", args=[101])
    assert client.get(reverse("sandbox-redcap-project", args=[999])).status_code == 404
    assert client.get(entry_url + "?record=1&instrument=nope").status_code == 404
    assert client.get(entry_url + "?instrument=contact").status_code == 404
    longitudinal = reverse("sandbox-redcap-entry", args=[102])
    assert (
        client.get(
            longitudinal + "?record=1&instrument=weekly_checkin&event=baseline_arm_1"
        ).status_code
        == 404
    )


def test_the_sandboxs_pages_are_gone_when_it_is_off(as_user, settings, db):
    settings.SANDBOX_ENABLED = False
    client = as_user(UserFactory())
    assert client.get(reverse("sandbox-redcap-project", args=[101])).status_code == 404
