"""One journey in a real Chromium: an editor sets up a reminder and an invitation on the sandbox
project, watches the preview count segments, sends the invitation now, sees the progress fill and
sees the texts on the phone simulator."""

import datetime
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from messaging.models import Message, MessageRule
from projects.models import Membership, Participant
from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN
from projects.services import links, mapping, sync
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    RedcapInstanceFactory,
    UserFactory,
)
from tests.projects.conftest import MAPPING

SHOTS = Path("/tmp/shots")
PASSWORD = "a-good-long-password"  # UserFactory's


@pytest.mark.django_db(transaction=True)
def test_an_editor_sends_a_survey_invitation_and_sees_it_on_the_phones(live_server, page, settings):
    from messaging.services.provider_links import provider_link_save

    store.reset()
    settings.SMS_GATEWAY_OVERRIDE = ""  # the project's own (sandbox) provider delivers
    SHOTS.mkdir(parents=True, exist_ok=True)
    owner = UserFactory(email="owner@uni.test")
    editor = UserFactory(email="editor@uni.test", full_name="Eddie Editor")
    instance = RedcapInstanceFactory(api_url=live_server.url + "/sandbox/redcap/api/")
    project = ProjectFactory(
        redcap_instance=instance,
        redcap_project_id=101,
        owner=owner,
        title="Healthy Habits",
        send_window_start=datetime.time(0, 0),
        send_window_end=datetime.time(23, 59, 59),
        send_days=list(range(7)),
    )
    MembershipFactory(project=project, user=editor, role=Membership.Role.EDITOR)
    links.redcap_link_set(project=project, token=DEMO_TOKEN, actor=owner)
    provider_link_save(
        project=project, provider="sandbox", config={}, rate_per_second=50, actor=owner
    )
    mapping.field_mapping_save(project=project, actor=owner, data=dict(MAPPING))
    sync.sync_run_start(project=project, actor=owner)
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
    page.get_by_label("Reminder").check()
    page.get_by_label("Name").fill("Week-one reminder")
    page.get_by_label("Text", exact=True).fill(
        "Hi [first_name], one week in! Check in here: [survey-link]"
    )
    page.locator("#id_instrument").select_option("weekly_checkin")
    page.get_by_label("Relative to a REDCap date").check()
    page.get_by_label("Days after (negative: before)").fill("7")
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
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send now").click()
    expect(page.get_by_role("heading", level=2)).to_contain_text(f"{ready} participants")
    expect(page.locator("[data-field=sent]")).to_have_text(str(ready))
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
