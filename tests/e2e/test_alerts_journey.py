"""One journey in a real Chromium: an owner sets up an alert to the study team in the message
form ("when REDCap logic becomes true"), pastes the Data Entry Trigger address into the sandbox
REDCap, a participant's weekly check-in is saved there with a high pain score, and within
seconds the team member's alert e-mail and the participant's follow-up text appear."""

import datetime
import time
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from messaging.models import Message, MessageRule
from messaging.services import rules
from projects.models import DataEntryTrigger, Membership
from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN
from projects.services import links, mapping, sync
from tests.e2e.test_project_setup_journey import watch_for_browser_errors
from tests.factories import (
    ALWAYS_OPEN,
    MembershipFactory,
    ProjectFactory,
    ProviderLinkFactory,
    RedcapInstanceFactory,
    UsagePeriodFactory,
    UserFactory,
)
from tests.projects.conftest import MAPPING

SHOTS = Path("/tmp/shots/issue-14b")
PASSWORD = "a-good-long-password"  # UserFactory's


@pytest.mark.django_db(transaction=True)
def test_a_high_pain_score_saved_in_redcap_alerts_the_team_and_texts_a_follow_up(
    live_server, page, settings
):
    store.reset()
    base = live_server.url
    settings.SITE_URL = base
    settings.DET_QUIET_SECONDS = 0.3
    SHOTS.mkdir(parents=True, exist_ok=True)
    instance = RedcapInstanceFactory(name="REDCap sandbox", api_url=f"{base}/sandbox/redcap/api/")
    owner = UserFactory(email="riley@uni.test", full_name="Riley Researcher")
    nurse = UserFactory(email="nora@uni.test", full_name="Nora Nurse")
    project = ProjectFactory(
        title="Healthy Habits",
        redcap_instance=instance,
        redcap_project_id=101,
        owner=owner,
        **ALWAYS_OPEN,
    )
    MembershipFactory(project=project, user=nurse, role=Membership.Role.VIEWER)
    ProviderLinkFactory(project=project, provider="twilio")
    UsagePeriodFactory(account=project.account)
    links.redcap_link_set(project=project, token=DEMO_TOKEN, actor=owner)
    mapping.field_mapping_save(project=project, actor=owner, data=dict(MAPPING))
    sync.sync_run_start(project=project, actor=owner)
    # The participant's own follow-up (made by the service: the journey is the alert's form).
    follow_up = rules.rule_save(
        project=project,
        actor=owner,
        data={
            "kind": "follow_up",
            "name": "Sorry about the pain",
            "body": "Hi [first_name], sorry you are in pain today. A study nurse will call you.",
            "trigger": "logic",
            "trigger_logic": "[wk_pain] >= '8'",
            "logic_repeat": "every",
        },
    )
    rules.rule_set_status(rule=follow_up, status="active", actor=owner)
    errors = watch_for_browser_errors(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill("riley@uni.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # --- The alert, in the message form: only the chosen trigger's options show ----------
    page.goto(f"{base}/projects/{project.pk}/messages/new/")
    page.get_by_label("Alert", exact=True).check()
    page.get_by_label("Name").fill("High pain")
    page.get_by_label("Alert the study team instead of texting the participant").check()
    page.get_by_label("Nora Nurse").check()
    expect(
        page.get_by_text("E-mails to the team do not count against the texts quota")
    ).to_be_visible()
    page.get_by_label("Text", exact=True).fill(
        "Participant [record_id] reported pain [wk_pain] — please call."
    )
    expect(page.get_by_label("Trigger logic", exact=True)).to_be_hidden()
    page.get_by_label("When REDCap logic becomes true").check()
    expect(page.get_by_label("Trigger logic", exact=True)).to_be_visible()
    expect(page.locator("#id_date_field")).to_be_hidden()
    page.get_by_label("Trigger logic", exact=True).fill("[wk_pain] >= '8'")
    page.get_by_label("Once per repeat instance").check()  # the check-in is not repeating
    page.get_by_label("Every time it becomes true again").check()
    expect(page.locator("#recipient-count-value")).not_to_have_text("counting…")
    page.screenshot(path=str(SHOTS / "alerts-1-form.png"), full_page=True)
    page.get_by_role("button", name="Save and activate").click()
    expect(page.locator("#rule-status")).to_have_text("Active")
    alert = MessageRule.objects.get(name="High pain")
    assert alert.notify_team and list(alert.alert_members.all()) == [nurse]

    # --- The Data Entry Trigger address, pasted into the sandbox REDCap ----------
    page.goto(f"{base}/projects/{project.pk}/redcap/")
    card = page.get_by_role("region", name="Instant updates from REDCap")
    card.get_by_role("button", name="Create the address for REDCap").click()
    address = page.locator("#det-address").inner_text().strip()
    assert DataEntryTrigger.objects.get(project=project).secret in address
    page.get_by_role("link", name="Open the sandbox's Project Setup").click()
    page.get_by_label("Data Entry Trigger").fill(address)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Data Entry Trigger saved.")

    # --- Record 2's weekly check-in is saved with pain 9 ----------
    mail.outbox.clear()
    page.goto(f"{base}/sandbox/redcap/projects/101/entry/?record=2&instrument=weekly_checkin")
    page.get_by_label("How bad is your pain today").fill("9")
    page.get_by_role("button", name="Save & Stay").click()
    expect(page.get_by_role("status")).to_contain_text("The Data Entry Trigger was posted.")
    saved = time.monotonic()

    # --- Within seconds: the nurse's e-mail, and the participant's follow-up ----------
    texts = Message.objects.filter(rule=follow_up)
    # Sent: the sender records what the provider accepted a moment later (sender.RECORD_WAIT).
    while not (mail.outbox and texts.filter(status="sent").exists()):
        assert time.monotonic() - saved < 15, "no alert e-mail and follow-up sent within 15 s"
        page.wait_for_timeout(200)
    (email,) = mail.outbox
    assert email.to == ["nora@uni.test"]
    assert email.body == "Participant 2 reported pain 9 — please call."
    assert "555" not in email.body  # never the participant's phone
    (text,) = texts
    assert text.participant.record_id == "2" and text.status == "sent"
    page.goto(f"{base}/projects/{project.pk}/log/")
    expect(page.locator("table").first).to_contain_text("Sorry about the pain")
    page.screenshot(path=str(SHOTS / "alerts-2-log.png"), full_page=True)

    # --- The forward calendar of the project ----------
    today = timezone.localdate()
    weekly = rules.rule_save(
        project=project,
        actor=owner,
        data={
            "kind": "reminder",
            "name": "Weekly check-in",
            "body": "Hi [first_name], time for this week's check-in: [survey-link]",
            "instrument": "weekly_checkin",
            "trigger": "recurring",
            "recur_days": [0, 3],
            "start_date": today,
            "until_date": today + datetime.timedelta(days=60),
            "stop_when_complete": True,
        },
    )
    rules.rule_set_status(rule=weekly, status="active", actor=owner)
    page.goto(f"{base}/projects/{project.pk}/messages/calendar/")
    expect(page.get_by_role("heading", name="Next 14 days")).to_be_visible()
    expect(page.locator("#calendar-entries")).to_contain_text("Weekly check-in")
    expect(page.locator("#calendar-summary")).to_contain_text("left this period")
    page.screenshot(path=str(SHOTS / "alerts-3-calendar.png"), full_page=True)
    assert errors == []
