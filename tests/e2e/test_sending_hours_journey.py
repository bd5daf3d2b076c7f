"""In a real Chromium, on the seeded demo project: a send waits outside the sending hours (the
log says until when, in each participant's time); the administrator widens the hours; the
waiting texts go out without anyone touching them; a second "Send now" offers to text only those
who have not received it."""

from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from messaging.models import Message, MessageRule
from portal import demo
from projects.models import Project, ProviderLink, SyncRun
from projects.sandbox import store
from projects.services import sync
from tests.e2e.helpers import pass_second_factor

SHOTS = Path("/tmp/shots/issue-9")
PASSWORD = "demo-password-for-tests"


def sign_in(page, live_server, email: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, email)


@pytest.mark.django_db(transaction=True)
def test_widened_sending_hours_release_the_waiting_send_and_a_second_send_texts_only_new_ones(
    live_server, page, settings
):
    store.reset()
    settings.SMS_GATEWAY_OVERRIDE = ""  # the project's own (sandbox) provider delivers
    settings.SITE_URL = live_server.url  # where the seeded sandbox REDCap instance points
    SHOTS.mkdir(parents=True, exist_ok=True)
    demo.seed(password=PASSWORD)
    project = Project.objects.get(redcap_project_id=demo.DEMO_PID)
    sync.sync_run_execute(run_id=SyncRun.objects.get(project=project).pk)
    ProviderLink.objects.filter(project=project).update(rate_per_second=50)
    # Arrangement: the hours are closed for every participant now (from Puerto Rico to
    # Honolulu, nobody is on one of these days), whenever the test runs.
    today = timezone.now().weekday()
    closed = [d for d in range(7) if d not in {(today - 1) % 7, today, (today + 1) % 7}]
    Project.objects.filter(pk=project.pk).update(send_days=closed, send_bounds_days=closed)
    rule = MessageRule.objects.create(
        project=project,
        kind=MessageRule.Kind.REMINDER,
        name="Diary reminder",
        body="Hi [first_name], please fill in today's sleep diary.",
        schedule=MessageRule.Schedule.MANUAL,
        status=MessageRule.Status.ACTIVE,
        created_by=project.memberships.get().user,
    )
    page.set_viewport_size({"width": 1280, "height": 900})

    # --- The owner sends; outside the hours the texts wait ------------------------------------
    sign_in(page, live_server, demo.RESEARCHER_EMAIL)
    page.goto(f"{live_server.url}/projects/{project.pk}/messages/{rule.pk}/")
    page.get_by_role("link", name="Send now").click()
    expect(page.locator("#count-received")).to_contain_text("0 already received")
    ready = int(page.locator("#send-counts strong").first.inner_text())
    assert ready > 5
    page.get_by_role("button", name="Send only to those who have not received it").click()
    expect(page.locator("[data-field=queued]")).to_have_text(str(ready))
    expect(page.locator("[data-field=sent]")).to_have_text("0")
    page.goto(f"{live_server.url}/projects/{project.pk}/log/")
    waiting = page.locator("#log td", has_text="participant time (sending hours)")
    expect(waiting.first).to_contain_text("Waits until")
    page.screenshot(path=str(SHOTS / "log-waits-until.png"), full_page=True)
    # One of them is cancelled by hand: that participant will not have received it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel").first.click()
    expect(page.locator(".flash")).to_contain_text("cancelled")
    page.goto(f"{live_server.url}/projects/{project.pk}/")
    expect(page.locator("#next-waits")).to_contain_text("participant time")
    # The owner cannot widen the hours past the administrators' bounds.
    page.goto(f"{live_server.url}/projects/{project.pk}/settings/")
    expect(page.get_by_role("heading", name="Sending hours", exact=True)).to_be_visible()
    page.locator(f"#hours-form input[type=checkbox][value='{today}']").check()
    page.get_by_role("button", name="Save sending hours").click()
    expect(page.locator("#hours-form")).to_contain_text("Choose sending hours inside those")
    assert Message.objects.filter(project=project, status="sent").count() == 0

    # --- The administrator widens the bounds and the hours: the texts go by themselves --------
    sign_in(page, live_server, demo.ADMIN_EMAIL)
    page.goto(f"{live_server.url}/projects/{project.pk}/settings/")
    bounds = page.locator("#bounds-form")
    # Bounds and hours from midnight: the texts go out whatever the time of day this test runs.
    bounds.get_by_label("Earliest, participant time").fill("00:00")
    bounds.get_by_label("Latest, participant time").fill("23:59")
    for day in range(7):
        bounds.locator(f"input[type=checkbox][value='{day}']").check()
    page.get_by_role("button", name="Save bounds").click()
    expect(bounds).to_contain_text("47 CFR 64.1200(c)(1)")  # asked to confirm, nothing saved
    bounds.get_by_label("I confirm texts may go out before 8 a.m.").check()
    page.get_by_role("button", name="Save bounds").click()
    expect(page.locator(".flash")).to_contain_text("Bounds saved.")
    hours = page.locator("#hours-form")
    hours.get_by_label("Earliest, participant time").fill("00:00")
    hours.get_by_label("Latest, participant time").fill("23:59")
    for day in range(7):
        hours.locator(f"input[type=checkbox][value='{day}']").check()
    page.get_by_role("button", name="Save sending hours").click()
    expect(hours).to_contain_text("47 CFR 64.1200(c)(1)")  # asked to confirm, nothing saved
    hours.get_by_label("I confirm texts may go out before 8 a.m.").check()
    page.get_by_role("button", name="Save sending hours").click()
    expect(page.locator(".flash")).to_contain_text("Sending hours saved.")
    page.screenshot(path=str(SHOTS / "settings-sending-hours.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "settings-sending-hours-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Nobody touched the texts: the change released them and the sender sent them.
    send = rule.sends.get()
    page.goto(f"{live_server.url}/projects/{project.pk}/sends/{send.pk}/")
    expect(page.locator("[data-field=sent]")).to_have_text(str(ready - 1), timeout=30_000)
    assert not Message.objects.filter(project=project, status="queued").exists()

    # --- A second "Send now" offers only those who have not received it ----------------------
    page.goto(f"{live_server.url}/projects/{project.pk}/messages/{rule.pk}/send/")
    expect(page.locator("#count-received")).to_contain_text(f"{ready - 1} already received")
    only_new = page.get_by_role("button", name="Send only to those who have not received it (1)")
    expect(only_new).to_be_visible()
    expect(page.locator("details.send-again summary")).to_contain_text("Send it again")
    page.screenshot(path=str(SHOTS / "send-now-again.png"), full_page=True)
    only_new.click()
    second = rule.sends.order_by("-pk").first()
    expect(page.locator("[data-field=sent]")).to_have_text("1", timeout=30_000)
    assert second.total == 1
    sent = Message.objects.filter(project=project, rule=rule, status="sent")
    assert sent.count() == ready
    assert len(set(sent.values_list("participant_id", flat=True))) == ready  # one each
