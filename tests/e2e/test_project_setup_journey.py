"""One journey in a real Chromium: an owner links REDCap (the sandbox) and the SMS provider (the
sandbox phone simulator), maps the fields, runs a sync, watches its progress, and sees the
participants and the records that were skipped, with the reasons."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from projects.models import FieldMapping, Participant, ProviderLink, RedcapLink, SyncRun
from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN, LONGITUDINAL_TOKEN, REDCAP_VERSION
from tests.factories import ProjectFactory, RedcapInstanceFactory, UserFactory

SHOTS = Path("/tmp/shots")
PASSWORD = "a-good-long-password"  # UserFactory's


def watch_for_browser_errors(page) -> list[str]:
    """JavaScript errors and console errors (a CSP refusal is one), favicon 404s aside."""
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))

    def on_console(message):
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            errors.append(f"console: {message.text} at {message.location.get('url')}")

    page.on("console", on_console)
    return errors


@pytest.mark.django_db(transaction=True)
def test_an_owner_sets_up_a_project_and_sees_its_participants(live_server, page):
    base = live_server.url
    SHOTS.mkdir(parents=True, exist_ok=True)
    store.reset()
    instance = RedcapInstanceFactory(name="REDCap sandbox", api_url=f"{base}/sandbox/redcap/api/")
    owner = UserFactory(email="riley@uni.test", full_name="Riley Researcher")
    project = ProjectFactory(
        title="Healthy Habits", redcap_instance=instance, redcap_project_id=101, owner=owner
    )
    errors = watch_for_browser_errors(page)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill("riley@uni.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{base}/projects/{project.pk}/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Healthy Habits")
    setup = page.get_by_role("region", name="Finish setting up")
    expect(setup).to_be_visible()
    expect(setup.get_by_role("link")).to_have_text(
        ["Link REDCap", "Link the SMS provider", "Map the fields", "Sync participants"]
    )
    page.screenshot(path=str(SHOTS / "setup-1-overview.png"), full_page=True)

    # --- 1. REDCap: a token of another project is refused, naming it; then the right one --------
    setup.get_by_role("link", name="Link REDCap").click()
    expect(page.get_by_label("REDCap server")).to_have_value(str(instance.pk))
    page.get_by_label("API token").fill(LONGITUDINAL_TOKEN)
    page.get_by_role("button", name="Link", exact=True).click()
    expect(page.locator("#redcap-form")).to_contain_text("This token belongs to REDCap project 102")
    page.screenshot(path=str(SHOTS / "setup-2-redcap-wrong-project.png"), full_page=True)
    page.get_by_label("API token").fill(DEMO_TOKEN)
    page.get_by_role("button", name="Link", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(
        f"REDCap linked: “Demo: Healthy Habits Study” (REDCap {REDCAP_VERSION}). "
        "Next, link the SMS provider."
    )
    expect(page.get_by_text(f"••••{DEMO_TOKEN[-4:]}")).to_be_visible()
    expect(page.get_by_text(DEMO_TOKEN)).to_have_count(0)
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Connected to REDCap {REDCAP_VERSION}: project 101, “Demo: Healthy Habits Study”."
    )
    page.screenshot(path=str(SHOTS / "setup-3-redcap-linked.png"), full_page=True)
    assert RedcapLink.objects.get(project=project).token == DEMO_TOKEN

    # --- 2. The SMS provider: the sandbox phone simulator --------------------------------------
    page.get_by_role("navigation", name="Set-up").get_by_role(
        "link", name="2. SMS provider"
    ).click()
    provider = page.get_by_role("group", name="Provider")
    expect(page.get_by_label("Mosio API key")).to_be_visible()  # Mosio is the default choice
    provider.get_by_role("radio", name="Twilio").check()
    expect(page.get_by_label("Mosio API key")).to_be_hidden()
    expect(page.get_by_label("Twilio account SID")).to_be_visible()
    provider.get_by_role("radio", name="Sandbox phone simulator").check()
    expect(page.get_by_label("Twilio account SID")).to_be_hidden()
    expect(page.get_by_text("The sandbox needs no credentials")).to_be_visible()
    page.get_by_label("Send rate (segments per second)").fill("5")
    page.get_by_role("button", name="Link and check").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Sandbox phone simulator linked and checked. Next, map the REDCap fields."
    )
    expect(page.locator("dl.facts")).to_contain_text("5 segments per second")
    page.screenshot(path=str(SHOTS / "setup-4-provider.png"), full_page=True)
    assert ProviderLink.objects.get(project=project).provider == "sandbox"

    # --- 3. The fields, from REDCap's data dictionary ------------------------------------------
    page.get_by_role("navigation", name="Set-up").get_by_role("link", name="3. Fields").click()
    page.get_by_label("Mobile phone field").select_option("phone")
    page.get_by_label("SMS-consent field").select_option("sms_consent")
    page.get_by_label("Value that means “consented”").fill("1")
    page.get_by_label("“Withdrawn” logic").fill("[withdrawn] = '1'")
    page.get_by_label("First-name field").select_option("first_name")
    page.get_by_label("Time-zone field").select_option("tz")
    page.get_by_label("Opt-out field").select_option("optout")
    expect(page.get_by_label("Value that means “opted out”")).to_have_value("1")
    page.get_by_role("group", name="Date fields for schedules").get_by_role(
        "checkbox", name="enrollment_date — Enrollment date"
    ).check()
    page.get_by_label("Project time zone").select_option("America/Chicago")
    page.screenshot(path=str(SHOTS / "setup-5-fields.png"), full_page=True)
    page.get_by_role("button", name="Save mapping").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Fields mapped. Next, sync the participants."
    )
    expect(page.get_by_text("No participants yet")).to_be_visible()
    saved = FieldMapping.objects.get(project=project)
    assert (saved.time_zone_field, saved.optout_field, saved.optout_value) == ("tz", "optout", "1")

    # --- 4. The sync, and its progress ----------------------------------------------------------
    page.get_by_role("button", name="Sync from REDCap now").click()
    progress = page.locator("#sync-progress")
    expect(progress.locator("progress")).to_have_attribute("value", "100")
    expect(progress.locator("[data-field=status_display]")).to_have_text("Finished")
    expect(progress.locator("[data-field=processed]")).to_have_text("25")
    expect(progress.locator("[data-field=total]")).to_have_text("25")
    expect(progress.locator("[data-field=created]")).to_have_text("25")
    expect(progress.locator("[data-field=skipped]")).to_have_text("7")
    page.screenshot(path=str(SHOTS / "setup-6-sync-finished.png"), full_page=True)

    # The sync ran inline (django-q2 sync mode in tests), so replay it as a worker would report
    # it: the page polls the JSON and follows the run to its end.
    run = SyncRun.objects.get(project=project)
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.RUNNING, processed=10, created_count=10, skipped_count=3
    )
    page.reload()
    expect(progress).to_have_attribute("data-done", "0")
    expect(progress.locator("[data-field=status_display]")).to_have_text("Running")
    expect(progress.locator("progress")).to_have_js_property("value", 40)
    expect(progress.get_by_text("You can leave this page; the sync goes on.")).to_be_visible()
    page.screenshot(path=str(SHOTS / "setup-7-sync-running.png"), full_page=True)
    SyncRun.objects.filter(pk=run.pk).update(processed=20, created_count=20, skipped_count=5)
    expect(progress.locator("[data-field=processed]")).to_have_text("20")
    expect(progress.locator("progress")).to_have_js_property("value", 80)
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRun.Status.SUCCEEDED, processed=25, created_count=25, skipped_count=7
    )
    expect(progress.locator("[data-field=status_display]")).to_have_text("Finished")
    expect(progress.locator("[data-field=status_display]")).to_have_class(
        re.compile(r"badge-succeeded")
    )
    expect(progress).to_have_attribute("data-done", "1")  # polling stopped
    expect(progress.locator("[data-field=skipped]")).to_have_text("7")

    # --- 5. The participants, and the records that could not be used ---------------------------
    progress.get_by_role("link", name="See participants").click()
    filters = page.get_by_role("navigation", name="Which participants")
    # 16: Kai (record 11) is consented, but opted out in REDCap.
    expect(filters.get_by_role("link", name=re.compile(r"^Ready"))).to_contain_text("16")
    table = page.locator("#participants")
    expect(table.locator("tbody tr")).to_have_count(16)
    expect(table).not_to_contain_text("Kai")
    expect(table).to_contain_text("Avery")
    expect(table).to_contain_text("•••-•••-0101")
    expect(table).not_to_contain_text("615")  # no area code: only the last 4 digits are shown
    page.screenshot(path=str(SHOTS / "setup-8-participants.png"), full_page=True)

    filters.get_by_role("link", name=re.compile(r"^Not usable")).click()
    expect(table.locator("tbody tr")).to_have_count(7)
    for reason in (
        "No phone number",
        "Phone number is not valid",
        "No consent to texts",
        "Unknown time zone",
    ):
        expect(table.get_by_text(reason, exact=True).first).to_be_visible()
    expect(table).to_contain_text("“Mars/Olympus” is not a time-zone name")
    page.screenshot(path=str(SHOTS / "setup-9-not-usable.png"), full_page=True)

    filters.get_by_role("link", name=re.compile(r"^Withdrawn")).click()
    expect(table.locator("tbody tr")).to_have_count(1)
    expect(table).to_contain_text("Noel")

    filters.get_by_role("link", name=re.compile(r"^Opted out in REDCap")).click()
    expect(table.locator("tbody tr")).to_have_count(2)  # Kai, and Wren (who never consented)
    expect(table.locator("tbody tr").first).to_contain_text("Kai")

    page.get_by_label("Find").fill("Casey")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No participant matches this view.")).to_be_visible()
    filters.get_by_role("link", name=re.compile(r"^All")).click()
    page.get_by_label("Find").fill("Casey")
    page.get_by_role("button", name="Search").click()
    expect(table.locator("tbody tr")).to_have_count(1)

    # --- The overview now shows a set-up project ------------------------------------------------
    page.get_by_role("navigation", name="Project").get_by_role("link", name="Overview").click()
    expect(page.get_by_role("region", name="Finish setting up")).to_have_count(0)
    people = page.get_by_role("region", name="Participants")
    expect(people.locator(".stat")).to_have_text(["16", "7", "1", "2"])
    expect(people.get_by_role("link", name="records not usable")).to_have_attribute(
        "href", f"/projects/{project.pk}/participants/?show=not_usable"
    )
    page.screenshot(path=str(SHOTS / "setup-10-overview.png"), full_page=True)

    assert Participant.objects.filter(project=project).count() == 25
    assert errors == []
