"""One journey in a real Chromium on the seeded sandbox project (the demo `make run` seeds): an
editor creates a reminder relative to the enrollment date and a survey invitation, watches the
preview count segments, sends the invitation now, sees the progress view fill as the sender works
and sees the texts on the phone simulator."""

import re
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.utils.module_loading import import_string
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage
from playwright.sync_api import expect

from messaging.models import Message, MessageRule
from portal import demo
from projects.models import Membership, Participant, Project, ProviderLink, SyncRun
from projects.sandbox import store
from projects.services import sync
from tests.factories import ALWAYS_OPEN, MembershipFactory, UserFactory

SHOTS = Path("/tmp/shots")
PASSWORD = "a-good-long-password"  # UserFactory's


def _run_queued_tasks() -> list[str]:
    """Do what a django-q2 worker does with the ORM queue: take each task and run it."""
    broker = get_broker()
    ran = []
    try:
        while tasks := broker.dequeue():
            for ack_id, payload in tasks:
                task = SignedPackage.loads(payload)
                broker.acknowledge(ack_id)
                import_string(task["func"])(*task["args"], **task["kwargs"])
                ran.append(task["func"])
    finally:
        connection.close()
    return ran


@pytest.mark.django_db(transaction=True)
def test_an_editor_sends_a_survey_invitation_and_sees_it_on_the_phones(
    live_server, page, settings, monkeypatch
):
    store.reset()
    settings.SMS_GATEWAY_OVERRIDE = ""  # the project's own (sandbox) provider delivers
    settings.SITE_URL = live_server.url  # where the seeded sandbox REDCap instance points
    SHOTS.mkdir(parents=True, exist_ok=True)
    demo.seed(password="demo-password-for-tests")
    project = Project.objects.get(redcap_project_id=demo.DEMO_PID)
    # The seed hands the first sync to the scheduler; run it as the cluster would, over HTTP.
    sync.sync_run_execute(run_id=SyncRun.objects.get(project=project).pk)
    # Arrangement the journey does not cover: a slower pace, so the progress view is seen
    # filling, and quiet hours opened so the test does not depend on the time of day.
    ProviderLink.objects.filter(project=project).update(rate_per_second=2)
    Project.objects.filter(pk=project.pk).update(**ALWAYS_OPEN)
    editor = UserFactory(email="editor@uni.test", full_name="Eddie Editor")
    MembershipFactory(project=project, user=editor, role=Membership.Role.EDITOR)
    ready = Participant.objects.filter(
        project=project, issue="", withdrawn=False, redcap_opted_out=False
    ).count()
    assert ready > 5

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail").fill(editor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/projects/{project.pk}/messages/")
    expect(page.get_by_text("No messages yet")).to_be_visible()

    # --- A reminder relative to the enrollment date -------------------------------------------
    page.get_by_role("link", name="New message").first.click()
    page.get_by_label("Reminder", exact=True).check()
    page.get_by_label("Name").fill("Week-one reminder")
    page.get_by_label("Text", exact=True).fill(
        "Hi [first_name], one week in! Check in here: [survey-link]"
    )
    page.locator("#id_instrument").select_option("weekly_checkin")
    page.get_by_label("Relative to a REDCap date").check()
    page.get_by_label("How long after (negative: before)").fill("7")
    page.locator("#id_date_field").select_option("enrollment_date")
    page.get_by_label("At (participant's local time)").fill("10:00")
    page.get_by_label("Stop once the participant has completed the survey").check()
    expect(page.locator("#preview-segments")).to_have_text("1")
    page.get_by_role("button", name="Save and activate").click()
    expect(page.locator("#rule-status")).to_have_text("Active")
    rule = MessageRule.objects.get(name="Week-one reminder")
    assert (
        rule.schedule == "relative"
        and rule.offset_days == 7
        and rule.date_field == "enrollment_date"
    )

    # --- A survey invitation, with the preview counting segments --------------------------------
    page.goto(f"{live_server.url}/projects/{project.pk}/messages/new/")
    page.get_by_label("Survey invitation").check()
    page.get_by_label("Name").fill("Baseline invitation")
    page.locator("#id_instrument").select_option("baseline_survey")
    page.get_by_label("Only when sent by hand").check()
    body = page.get_by_label("Text", exact=True)
    body.fill("Hi [first_name], please take our 2-minute survey: [survey-link]")
    expect(page.locator("#preview-encoding")).to_have_text("GSM-7")
    expect(page.locator("#preview-segments")).to_have_text("1")
    expect(page.locator("#preview-recipients")).to_have_text(str(ready))
    # One curly apostrophe switches the whole text to UCS-2: the preview says which character.
    body.fill("Hi [first_name], we’d love your answers: [survey-link]")  # ~95 UCS-2 units
    expect(page.locator("#preview-encoding")).to_contain_text("UCS-2")
    expect(page.locator("#preview-encoding")).to_contain_text("’")
    expect(page.locator("#preview-segments")).to_have_text("2")
    page.locator("#preview-participant").select_option(index=1)
    first_name = page.locator("#preview-participant option").nth(1).inner_text().split("— ")[-1]
    expect(page.locator("#preview-text")).to_contain_text(f"Hi {first_name}, we’d love")
    page.screenshot(path=str(SHOTS / "messaging-preview.png"), full_page=True)
    body.fill("Hi [first_name], please take our 2-minute survey: [survey-link]")
    expect(page.locator("#preview-segments")).to_have_text("1")
    page.get_by_role("button", name="Save and activate").click()
    expect(page.locator("#rule-status")).to_have_text("Active")

    # --- Send it now and watch the progress ----------------------------------------------------
    # Tasks go to django-q2's ORM queue, as with a running cluster, instead of running inline.
    monkeypatch.setattr(Conf, "SYNC", False)
    monkeypatch.setattr(Conf, "ORM", "default")
    page.get_by_role("link", name="Send now").click()
    expect(page.locator("#count-received")).to_contain_text("0 already received")
    page.get_by_role("button", name="Send only to those who have not received it").click()
    expect(page.get_by_role("heading", level=2)).to_contain_text(f"{ready} participants")
    expect(page.locator("#progress-label")).to_have_text(f"0 of {ready} done (0%)")
    page.screenshot(path=str(SHOTS / "messaging-progress-start.png"), full_page=True)
    ran = []
    worker = threading.Thread(target=lambda: ran.extend(_run_queued_tasks()))
    worker.start()
    # Part-way: the page has polled while the sender works through the queue at 2 a second.
    page.wait_for_function(
        "() => { const v = +document.querySelector('progress[data-field=percent]').value;"
        " return v > 0 && v < 100; }",
        timeout=30_000,
    )
    page.screenshot(path=str(SHOTS / "messaging-progress-midway.png"), full_page=True)
    expect(page.locator("[data-field=sent]")).to_have_text(str(ready), timeout=60_000)
    worker.join(60)
    assert not worker.is_alive()
    assert ran and set(ran) == {"messaging.tasks.send_queued"}
    expect(page.locator("progress[data-field=percent]")).to_have_attribute("value", "100")
    expect(page.get_by_role("heading", level=2)).to_contain_text(f"Done: {ready} participants")
    expect(page.locator("#progress-label")).to_have_text(f"{ready} of {ready} done (100%)")
    page.screenshot(path=str(SHOTS / "messaging-progress.png"), full_page=True)
    invitation = MessageRule.objects.get(name="Baseline invitation")
    assert Message.objects.filter(rule=invitation, status="sent").count() == ready

    # --- The texts are on the sandbox phones ---------------------------------------------------
    page.get_by_role("link", name="See the phones").click()
    first = (
        Participant.objects.filter(project=project, issue="", withdrawn=False)
        .order_by("pk")
        .first()
    )
    card = page.locator(f"#phone-{first.record_id}")
    expect(card).to_contain_text(f"Hi {first.first_name}, please take our 2-minute survey")
    expect(card.locator(".phone-screen a").first).to_have_attribute(
        "href", re.compile(r"/sandbox/redcap/surveys/\?s=")
    )
    page.screenshot(path=str(SHOTS / "messaging-phones.png"), full_page=True)
