"""In a real Chromium: an owner pauses a project from its Settings page (confirming the dialog),
every project page then says no texts go out, and the owner resumes it; an administrator
suspends it with a reason the team sees; participants opted out in REDCap have their own view."""

from pathlib import Path

import pytest
from playwright.sync_api import expect

from projects.models import Project
from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN
from projects.services import links, mapping, sync
from tests.e2e.helpers import pass_second_factor
from tests.e2e.test_project_setup_journey import PASSWORD, watch_for_browser_errors
from tests.factories import ProjectFactory, RedcapInstanceFactory, ServerAdminFactory, UserFactory
from tests.projects.conftest import MAPPING

SHOTS = Path("/tmp/shots")


def sign_in(page, base, email):
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, email)


@pytest.mark.django_db(transaction=True)
def test_an_owner_pauses_and_resumes_and_an_administrator_suspends(live_server, page):
    base = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    store.reset()
    instance = RedcapInstanceFactory(name="REDCap sandbox", api_url=f"{base}/sandbox/redcap/api/")
    owner = UserFactory(email="riley@uni.test", full_name="Riley Researcher")
    ServerAdminFactory(email="alex@uni.test", full_name="Alex Admin")
    project = ProjectFactory(
        title="Healthy Habits", redcap_instance=instance, redcap_project_id=101, owner=owner
    )
    links.redcap_link_set(project=project, token=DEMO_TOKEN, actor=owner)
    mapping.field_mapping_save(project=project, actor=owner, data=dict(MAPPING))
    sync.sync_run_start(project=project, actor=owner)
    errors = watch_for_browser_errors(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)

    # --- The owner pauses texting, with a reason, from the Settings page -----------------------
    sign_in(page, base, "riley@uni.test")
    page.goto(f"{base}/projects/{project.pk}/settings/")
    card = page.locator("#project-status")
    expect(card).to_contain_text("Texts go out as scheduled")
    expect(card.get_by_role("button", name="Suspend project")).to_have_count(0)
    page.screenshot(path=str(SHOTS / "status-1-settings-active.png"), full_page=True)
    card.get_by_label("Reason").fill("IRB amendment under review")
    card.get_by_role("button", name="Pause texting").click()
    expect(page.locator("#status-banner")).to_contain_text(
        "Texting is paused: no texts go out while this project is paused."
    )
    assert dialogs == ["Pause texting? No texts go out until an owner resumes the project."]
    expect(page.locator("#status-banner")).to_contain_text("Reason: IRB amendment under review")
    page.screenshot(path=str(SHOTS / "status-2-settings-paused.png"), full_page=True)

    # --- Every project page says so; the overview links to the Resume button ------------------
    page.goto(f"{base}/projects/{project.pk}/")
    banner = page.locator("#status-banner")
    expect(banner).to_contain_text("no texts go out while this project is paused")
    expect(page.get_by_text("opted out in REDCap")).to_be_visible()
    page.screenshot(path=str(SHOTS / "status-3-overview-paused.png"), full_page=True)
    page.goto(f"{base}/projects/{project.pk}/participants/?show=opted_out")
    expect(page.locator("#status-banner")).to_be_visible()
    expect(page.locator("#participants")).to_contain_text("Kai")
    page.screenshot(path=str(SHOTS / "status-4-participants-opted-out.png"), full_page=True)
    page.goto(f"{base}/projects/{project.pk}/")
    banner.get_by_role("link", name="Resume texting on the Settings page").click()
    page.get_by_role("button", name="Resume texting").click()
    expect(page.get_by_role("status").first).to_contain_text("texts go out again")
    expect(page.locator("#status-banner")).to_have_count(0)
    assert Project.objects.get(pk=project.pk).status == "active"

    # --- An administrator suspends it, with a reason the team then sees -----------------------
    sign_in(page, base, "alex@uni.test")
    page.goto(f"{base}/projects/{project.pk}/settings/")
    page.get_by_label("Reason for suspending").fill("The texts' wording was not IRB-approved.")
    page.get_by_role("button", name="Suspend project").click()
    expect(page.locator("#status-banner")).to_contain_text("Suspended by the server administrators")
    page.screenshot(path=str(SHOTS / "status-5-settings-suspended-admin.png"), full_page=True)
    sign_in(page, base, "riley@uni.test")
    page.goto(f"{base}/projects/{project.pk}/")
    expect(page.locator("#status-banner")).to_contain_text(
        "Reason: The texts' wording was not IRB-approved."
    )
    expect(page.locator("#status-banner")).to_contain_text("Contact the server administrators")
    page.screenshot(path=str(SHOTS / "status-6-overview-suspended-owner.png"), full_page=True)
    assert errors == []
