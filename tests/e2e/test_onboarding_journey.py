"""One journey in a real Chromium: sign up, request, changes requested, resubmit, approval."""

import re
from pathlib import Path

import pytest
from django.core import mail
from playwright.sync_api import expect

from portal.models import OnboardingRequest
from projects.models import Project
from tests.e2e.helpers import pass_second_factor
from tests.factories import PlanFactory, RedcapInstanceFactory, ServerAdminFactory

SHOTS = Path("/tmp/shots")
PASSWORD = "a-long-study-passphrase"
ADMIN_PASSWORD = "a-good-long-password"  # UserFactory's


def sign_in(page, base_url, email, password):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, email)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


# Transactional (the live server sees committed data). Other transactional tests flush the
# database, seeded plans included, so this one makes the plans it offers itself.
@pytest.mark.django_db(transaction=True)
def test_a_researcher_gets_texting_approved_after_one_round_of_changes(
    live_server, page, browser, settings
):
    settings.SITE_URL = live_server.url  # the links in e-mails point at this server
    base = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    PlanFactory(name="Basic", project_limit=4, monthly_messages=1000)
    PlanFactory(name="Plus", project_limit=10, monthly_messages=3000, sort_order=1)
    RedcapInstanceFactory(name="University REDCap")
    RedcapInstanceFactory(name="Retired REDCap", is_active=False)
    admin = ServerAdminFactory(email="alex@uni.test", full_name="Alex Admin")

    # --- The researcher signs up and confirms the address ---------------------------------------
    page.goto(f"{base}/accounts/signup/")
    page.get_by_label("Your name").fill("Riley Researcher")
    page.get_by_label("E-mail (your institutional address)").fill("Riley@Uni.test")
    page.get_by_label("Time zone").select_option("America/Chicago")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()
    expect(page.get_by_text("riley@uni.test")).to_be_visible()

    # Unconfirmed: sign-in is refused with the reason.
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill("riley@uni.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Confirm your e-mail address first")

    [verification] = [m for m in mail.outbox if m.to == ["riley@uni.test"]]
    link = re.search(r"https?://\S+/accounts/verify/\S+", verification.body).group(0)
    assert link.startswith(base)
    page.goto(link)
    expect(page.get_by_role("status")).to_contain_text("Your e-mail address is confirmed.")
    sign_in(page, base, "riley@uni.test", PASSWORD)

    # --- ... and files a complete request ------------------------------------------------------
    page.get_by_role("link", name="Request texting for a project").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Request texting for a REDCap project"
    )
    server = page.get_by_label("REDCap server")
    expect(server.locator("option", has_text="Retired REDCap")).to_have_count(0)
    server.select_option(label="University REDCap")
    page.get_by_label("REDCap project id (PID)").fill("4242")
    page.get_by_label("Project title").fill("Sleep and Mood")
    page.get_by_label("PI name").fill("Dr. Ada Lovelace")
    page.get_by_label("PI e-mail").fill("ada@uni.test")
    page.get_by_label("IRB protocol number").fill("IRB-2026-0001")
    irb = page.get_by_role("group", name="Is texting approved by the IRB?")
    irb.get_by_role("radio", name="Pending IRB approval").check()
    page.get_by_label("Study summary").fill("Weekly mood surveys for 100 adults over 12 weeks.")
    page.get_by_label("Expected participants").fill("100")
    page.get_by_label("Expected outbound messages per month").fill("400")
    kinds = page.get_by_role("group", name="Messages you plan to send")
    kinds.get_by_role("checkbox", name="Survey invitations").check()
    kinds.get_by_role("checkbox", name="Reminders").check()
    kinds.get_by_role("checkbox", name="Two-way replies").check()
    page.get_by_role("group", name="Billing account").get_by_role(
        "radio", name="A new account"
    ).check()
    expect(page.get_by_label("Existing account")).to_be_hidden()
    page.get_by_label("Name of the new account").fill("Sleep Lab")
    plan = page.get_by_label("Plan of the new account")
    plan.select_option(label="Plus (10 projects, 3,000/month)")
    page.get_by_label("Time zone of the new account").select_option("America/Chicago")
    page.get_by_label("Message text will contain no protected health information").check()
    page.get_by_label("Participants' consent to receive texts is collected").check()
    page.screenshot(path=str(SHOTS / "request-form.png"), full_page=True)
    page.get_by_role("button", name="Submit for review").click()

    expect(page.locator("#request-status")).to_have_text("Submitted")
    expect(page.get_by_role("status")).to_contain_text("Request submitted.")
    request_url = page.url
    obj = OnboardingRequest.objects.get()
    assert (obj.requester.email, obj.redcap_project_id, obj.irb_status) == (
        "riley@uni.test",
        4242,
        "pending",
    )
    assert obj.message_kinds == ["invitation", "reminder", "two_way"]
    assert (obj.new_account_name, obj.new_account_plan.name) == ("Sleep Lab", "Plus")
    assert any(m.to == [admin.email] for m in mail.outbox)

    # --- An administrator, in another browser, asks for changes --------------------------------
    admin_context = browser.new_context()
    admin_page = admin_context.new_page()
    sign_in(admin_page, base, admin.email, ADMIN_PASSWORD)
    expect(admin_page.locator("#pending-count")).to_have_text("1")
    nav = admin_page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Review queue").click()
    admin_page.locator("#queue").get_by_role("link", name="Sleep and Mood").click()
    admin_page.screenshot(path=str(SHOTS / "request-page-review.png"), full_page=True)
    decision = admin_page.get_by_role("group", name="Decision")
    decision.get_by_role("radio", name="Ask for changes").check()
    admin_page.get_by_label("Note to the researcher").fill(
        "Please give the IRB approval date and who sends the texts."
    )
    admin_page.get_by_role("button", name="Record decision").click()
    expect(admin_page.get_by_role("status")).to_contain_text("Sent back for changes.")
    expect(admin_page.locator("#request-status")).to_have_text("Changes requested")

    # --- The researcher sees the note, edits and resubmits -------------------------------------
    page.goto(request_url)
    expect(page.locator("#request-status")).to_have_text("Changes requested")
    note = "Please give the IRB approval date and who sends the texts."
    expect(page.get_by_text(note)).to_have_count(2)  # the note and the history line
    page.screenshot(path=str(SHOTS / "request-page-changes-requested.png"), full_page=True)
    page.get_by_role("link", name="Edit").click()
    page.get_by_role("radio", name="Approved by the IRB", exact=True).check()
    page.get_by_label("Study summary").fill(
        "Weekly mood surveys for 100 adults over 12 weeks. IRB approved on March 2, 2026; "
        "the study coordinator sends the texts."
    )
    page.get_by_role("button", name="Resubmit").click()
    expect(page.locator("#request-status")).to_have_text("Submitted")
    # The edit form kept everything the researcher did not touch.
    obj.refresh_from_db()
    assert obj.irb_status == "approved"
    assert obj.message_kinds == ["invitation", "reminder", "two_way"]
    assert (obj.new_account_name, obj.new_account_plan.name) == ("Sleep Lab", "Plus")
    assert (obj.new_account_time_zone, obj.pi_email) == ("America/Chicago", "ada@uni.test")
    page.get_by_label("Add a comment").fill("Done: the approval date is in the summary.")
    page.get_by_role("button", name="Post comment").click()
    expect(page.get_by_role("status")).to_contain_text("Comment posted.")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "request-page.png"), full_page=True)

    # --- The administrator approves ------------------------------------------------------------
    admin_page.reload()
    expect(admin_page.get_by_text("Done: the approval date is in the summary.")).to_be_visible()
    admin_page.get_by_role("group", name="Decision").get_by_role("radio", name="Approve").check()
    admin_page.get_by_label("Note to the researcher").fill("Welcome aboard.")
    admin_page.get_by_role("button", name="Record decision").click()
    expect(admin_page.get_by_role("status")).to_contain_text(
        "Approved. Project “Sleep and Mood” is created."
    )
    admin_page.screenshot(path=str(SHOTS / "request-page-admin.png"), full_page=True)
    admin_context.close()

    # --- The researcher sees the new project on the dashboard ----------------------------------
    page.get_by_role("link", name="Dashboard").click()
    projects = page.get_by_role("region", name="Your projects")
    expect(projects.get_by_role("link", name="Sleep and Mood")).to_be_visible()
    expect(projects).to_contain_text("PID 4242 · University REDCap")
    expect(projects).to_contain_text("Sleep Lab")
    requests = page.get_by_role("region", name="Your requests")
    expect(requests).to_contain_text("Approved")
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    project = Project.objects.get()
    assert project.memberships.get().user.email == "riley@uni.test"
    assert project.account.plan.name == "Plus"
    projects.get_by_role("link", name="Sleep and Mood").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sleep and Mood")
    page.screenshot(path=str(SHOTS / "project-page.png"), full_page=True)
