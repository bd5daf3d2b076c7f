"""A text survey in a real Chromium on the seeded demo project: an editor creates it (the form
lists what is asked and what cannot be, and the worst-case cost), sends it now, a participant
takes it on the phone simulator with one answer that does not fit and one branch, and the team
sees the answers in the sandbox REDCap, the completed status and the results page."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from messaging.models import Conversation, MessageRule
from portal import demo
from projects.models import Membership, Participant, Project, SyncRun
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.services import sync
from tests.e2e.helpers import pass_second_factor
from tests.factories import ALWAYS_OPEN, MembershipFactory, UserFactory

SHOTS = Path("/tmp/shots")
PASSWORD = "a-good-long-password"  # UserFactory's


@pytest.mark.django_db(transaction=True)
def test_an_editor_runs_a_text_survey_and_sees_the_answers_in_redcap(live_server, page, settings):
    store.reset()
    settings.SMS_GATEWAY_OVERRIDE = ""  # the project's own (sandbox) provider delivers
    settings.SITE_URL = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    demo.seed(password="demo-password-for-tests")
    project = Project.objects.get(redcap_project_id=demo.DEMO_PID)
    sync.sync_run_execute(run_id=SyncRun.objects.get(project=project).pk)
    Project.objects.filter(pk=project.pk).update(**ALWAYS_OPEN)
    editor = UserFactory(email="editor@uni.test", full_name="Eddie Editor")
    MembershipFactory(project=project, user=editor, role=Membership.Role.EDITOR)
    person = (
        Participant.objects.filter(project=project, issue="", withdrawn=False, consented=True)
        .order_by("pk")
        .first()
    )

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail").fill(editor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, editor.email)

    # --- The editor creates the text survey ---------------------------------------------------
    page.goto(f"{live_server.url}/projects/{project.pk}/messages/new/")
    page.get_by_label("Text survey").check()
    expect(page.locator("#text-survey-settings")).to_be_visible()
    page.get_by_label("Name").fill("Check-in by text")
    page.get_by_label("Text", exact=True).fill("Hi [first_name], a few questions from the study.")
    page.locator("#id_instrument").select_option("text_checkin")
    page.get_by_label("Chosen records").check()
    page.get_by_label("Records", exact=True).fill(person.record_id)
    page.get_by_label("Only when sent by hand").check()
    page.get_by_label("Closing text").fill("Thank you, that is all!")
    page.get_by_label("When time is up").fill("The check-in has closed. Thank you.")
    # Before saving: what will be asked, what cannot be, the most it can cost.
    page.get_by_role("button", name="Check the instrument").click()
    check = page.locator("#text-survey-check")
    expect(check).to_contain_text("Worst case per participant:")
    expect(check).to_contain_text("file upload")
    page.screenshot(path=str(SHOTS / "text-survey-form.png"), full_page=True)
    page.get_by_role("button", name="Save and activate").click()
    expect(page.locator("#rule-status")).to_have_text("Active")
    facts = page.locator("#text-survey-fields")
    expect(facts).to_contain_text("Worst case per participant:")
    expect(facts).to_contain_text("tc_photo")  # refused, named
    expect(facts).to_contain_text("file upload")
    page.screenshot(path=str(SHOTS / "text-survey-rule.png"), full_page=True)
    rule = MessageRule.objects.get(name="Check-in by text")

    # --- Sent now --------------------------------------------------------------------------------
    page.get_by_role("link", name="Send now").click()
    page.get_by_role("button", name="Send only to those who have not received it").click()
    expect(page.get_by_role("heading", level=2)).to_contain_text("1 participant")

    # --- The participant answers on the phone simulator ---------------------------------------
    page.goto(f"{live_server.url}/projects/{project.pk}/phones/")
    card = page.locator(f"#phone-{person.record_id}")
    expect(card).to_contain_text("Did you go for a walk this week?")

    def answer(text: str, then: str) -> None:
        box = page.locator(f"#reply-{person.pk}")
        box.fill(text)
        box.press("Enter")
        expect(page.locator(f"#phone-{person.record_id}")).to_contain_text(then)

    answer("Yes", "On how many days did you walk?")  # the branch
    answer("9", "must be within")  # does not fit: the reason and the question again
    answer("3", "I felt rested most mornings.")
    answer("true", "How was your mood this week?")
    answer("4", "Which activity did you do most?")
    conversation = Conversation.objects.get(rule=rule)
    for _ in range(30):
        conversation.refresh_from_db()
        if not conversation.is_open:
            break
        field = conversation.current_field
        asked = conversation.texts
        box = page.locator(f"#reply-{person.pk}")
        box.fill("8" if field == "tc_sleep_hours" else "skip")
        box.press("Enter")
        page.wait_for_function(
            "() => document.readyState === 'complete'",
        )
        conversation.refresh_from_db()
        assert conversation.texts > asked or not conversation.is_open
    expect(page.locator(f"#phone-{person.record_id}")).to_contain_text("Thank you, that is all!")
    page.screenshot(path=str(SHOTS / "text-survey-phone.png"), full_page=True)
    assert conversation.state == Conversation.State.COMPLETED

    # --- The team sees the answers in REDCap (the sandbox) ------------------------------------
    page.goto(
        f"{live_server.url}/sandbox/redcap/projects/{demo.DEMO_PID}/entry/"
        f"?record={person.record_id}&instrument=text_checkin"
    )
    expect(page.locator("[name=tc_walk_days]")).to_have_value("3")
    expect(page.locator("[name=tc_sleep_hours]")).to_have_value("8")
    page.screenshot(path=str(SHOTS / "text-survey-redcap.png"), full_page=True)
    row = next(
        r
        for r in store.export_records(SANDBOX_PROJECTS[101], records=[person.record_id])
        if not r.get("redcap_repeat_instrument")
    )
    assert row["tc_walked"] == "1" and row["tc_mood"] == "4"
    assert row["text_checkin_complete"] == "2"

    # --- The completed status and the results page --------------------------------------------
    page.goto(f"{live_server.url}/projects/{project.pk}/participants/{person.pk}/")
    surveys = page.locator("#text-surveys")
    expect(surveys).to_contain_text("Completed")
    expect(surveys).to_contain_text("How was your mood this week?")
    page.goto(f"{live_server.url}/projects/{project.pk}/messages/{rule.pk}/results/")
    expect(page.locator("#completion-rate")).to_have_text("100%")
    expect(page.locator("#completed")).to_have_text("1")
    expect(page.locator("svg[aria-label='Answers to tc_mood']")).to_be_visible()
    page.screenshot(path=str(SHOTS / "text-survey-results.png"), full_page=True)
