"""One journey in a real Chromium: an owner creates the project's Data Entry Trigger address,
pastes it into the sandbox REDCap's Project Setup, changes a participant's phone number on a
REDCap data entry form, and sees the new number on the Participants page within seconds: no
sync pressed, no 15-minute wait."""

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from projects.models import DataEntryTrigger, Participant
from projects.sandbox.data import DEMO_TOKEN
from projects.services import links, mapping, sync
from tests.e2e.test_project_setup_journey import watch_for_browser_errors
from tests.factories import ProjectFactory, RedcapInstanceFactory, UserFactory
from tests.projects.conftest import MAPPING

SHOTS = Path("/tmp/shots/issue-14a")
PASSWORD = "a-good-long-password"  # UserFactory's


@pytest.mark.django_db(transaction=True)
def test_an_owner_pastes_the_address_into_redcap_and_a_save_shows_within_seconds(
    live_server, page, settings
):
    base = live_server.url
    settings.SITE_URL = base  # the address the page shows is this server's
    settings.DET_QUIET_SECONDS = 0.3
    SHOTS.mkdir(parents=True, exist_ok=True)
    instance = RedcapInstanceFactory(name="REDCap sandbox", api_url=f"{base}/sandbox/redcap/api/")
    owner = UserFactory(email="riley@uni.test", full_name="Riley Researcher")
    project = ProjectFactory(
        title="Healthy Habits", redcap_instance=instance, redcap_project_id=101, owner=owner
    )
    links.redcap_link_set(project=project, token=DEMO_TOKEN, actor=owner)
    mapping.field_mapping_save(project=project, actor=owner, data=dict(MAPPING))
    sync.sync_run_start(project=project, actor=owner)
    assert Participant.objects.get(project=project, record_id="2").phone_last4 == "0102"
    errors = watch_for_browser_errors(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill("riley@uni.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    # --- StudyText: the address, with where to paste it -------------------------------------
    page.goto(f"{base}/projects/{project.pk}/redcap/")
    card = page.get_by_role("region", name="Instant updates from REDCap")
    card.get_by_role("button", name="Create the address for REDCap").click()
    expect(page.get_by_role("status")).to_contain_text("The address is ready.")
    card = page.get_by_role("region", name="Instant updates from REDCap")
    expect(card).to_contain_text("Additional customizations")
    expect(card).to_contain_text("A REDCap project has one Data Entry Trigger.")
    address = page.locator("#det-address").inner_text().strip()
    secret = DataEntryTrigger.objects.get(project=project).secret
    assert address == f"{base}/webhooks/redcap/{secret}/"
    page.screenshot(path=str(SHOTS / "det-1-address.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "det-1-address-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # --- The sandbox REDCap: Project Setup → Data Entry Trigger --------------------------------
    page.get_by_role("link", name="Open the sandbox's Project Setup").click()
    page.get_by_label("Data Entry Trigger").fill(address)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Data Entry Trigger saved.")

    # --- A coordinator changes record 2's phone on its data entry form --------------------------
    row = page.locator("#records tbody tr").filter(
        has=page.get_by_role("cell", name="2", exact=True)
    )
    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Contact and consent")
    page.get_by_label("Mobile phone").fill("(615) 555-0199")
    page.get_by_role("button", name="Save & Stay").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Record 2 saved. The Data Entry Trigger was posted."
    )
    page.screenshot(path=str(SHOTS / "det-2-sandbox-data-entry.png"), full_page=True)

    # --- StudyText shows the new number within seconds ----------------------------------------
    started = time.monotonic()
    page.goto(f"{base}/projects/{project.pk}/participants/")
    while "0199" not in page.locator("table").first.inner_text():
        assert time.monotonic() - started < 15, "the save did not reach StudyText in 15 s"
        page.wait_for_timeout(300)
        page.reload()
    expect(page.get_by_text("•••-•••-0199")).to_be_visible()
    assert Participant.objects.get(project=project, record_id="2").phone == "+16155550199"

    page.goto(f"{base}/sandbox/redcap/projects/101/")
    expect(page.locator("#det-deliveries")).to_contain_text("200")
    page.screenshot(path=str(SHOTS / "det-3-sandbox-project-setup.png"), full_page=True)
    page.goto(f"{base}/projects/{project.pk}/redcap/")
    expect(page.locator("#det-last-post")).not_to_contain_text("none yet")
    page.screenshot(path=str(SHOTS / "det-4-address-after-a-post.png"), full_page=True)
    assert errors == []
