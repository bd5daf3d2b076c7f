"""Issue 16 in a real Chromium: every page the newcomer fixes touched, as each role meets it, at
1280 px and at 390 px (a phone). Each page is screenshotted at both widths into
/tmp/shots/issue-16/ (to look at), and at 390 px the page itself never scrolls sideways: wide
tables scroll inside their card."""

import datetime
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import Plan
from billing.services import quota_reserve
from messaging.models import Message
from messaging.services import rules
from messaging.services.provider_links import provider_link_save
from portal.models import OnboardingRequest
from portal.services import onboarding
from projects.models import Participant
from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN, SANDBOX_PROJECTS
from projects.services import links, mapping, sync
from tests.e2e.helpers import pass_second_factor
from tests.factories import (
    AccountFactory,
    CreditPackRequestFactory,
    OnboardingRequestFactory,
    PlanChangeRequestFactory,
    PlanFactory,
    ProjectFactory,
    RedcapInstanceFactory,
    ServerAdminFactory,
    UserFactory,
)
from tests.projects.conftest import MAPPING

SHOTS = Path("/tmp/shots/issue-16")
PASSWORD = "a-good-long-password"  # UserFactory's
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth + 1"
# What sticks out past the window's right edge (outside any scrolling box), to name in a failure.
STICKING_OUT = """
[...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
  .filter((el) => !(el.parentElement && el.parentElement.closest(".table-wrap")))
  .slice(-6)
  .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className ? "." + el.className.split(" ").join(".")
     : "") + " " + Math.round(el.getBoundingClientRect().right))
"""


def _sign_in(page, base, user):
    page.context.clear_cookies()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, user.email)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _both(page, name: str) -> None:
    """Screenshot the page as it is at 1280 px, then at 390 px (where it must not scroll
    sideways), and go back to 1280 px."""
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(SHOTS / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(50)
    if not page.evaluate(NO_SIDEWAYS_SCROLL):
        width = page.evaluate("document.documentElement.scrollWidth")
        culprits = page.evaluate(STICKING_OUT)
        pytest.fail(f"{name}: the page is {width} px wide at 390 px: {culprits}")
    page.screenshot(path=str(SHOTS / f"{name}-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def _scene(base):
    """Plans with prices, an administrator, a researcher with a billing account, the demo
    project linked to the sandbox and synced, a project for a REDCap id the sandbox does not
    know, and waiting billing requests."""
    PlanFactory(name="Basic", project_limit=4, monthly_messages=1000)
    PlanFactory(name="Plus", project_limit=10, monthly_messages=3000, sort_order=1)
    Plan.objects.filter(name="Basic").update(monthly_price=Decimal("250"), pack_price=Decimal("60"))
    Plan.objects.filter(name="Plus").update(monthly_price=Decimal("600"))
    admin = ServerAdminFactory(email="alex@uni.test", full_name="Alex Admin")
    owner = UserFactory(
        email="riley@uni.test", full_name="Riley Researcher", time_zone="America/Chicago"
    )
    account = AccountFactory(
        name="Healthy Habits Lab", plan=Plan.objects.get(name="Basic"), owners=[owner]
    )
    instance = RedcapInstanceFactory(name="Sandbox REDCap", api_url=f"{base}/sandbox/redcap/api/")
    project = ProjectFactory(
        account=account,
        redcap_instance=instance,
        redcap_project_id=101,
        owner=owner,
        title="Healthy Habits",
        always_open=True,
    )
    links.redcap_link_set(project=project, token=DEMO_TOKEN, actor=owner)
    provider_link_save(
        project=project, provider="sandbox", config={}, rate_per_second=50, actor=owner
    )
    mapping.field_mapping_save(project=project, actor=owner, data=dict(MAPPING))
    sync.sync_run_start(project=project)  # as the 15-minute schedule does: no one pressed it
    walking = ProjectFactory(
        account=account,
        redcap_instance=instance,
        redcap_project_id=5001,
        owner=owner,
        title="Walking Study",
    )
    assert quota_reserve(project=project, units=120)
    CreditPackRequestFactory(account=account, requested_by=owner, packs=2)
    PlanChangeRequestFactory(account=AccountFactory(name="Sleep Lab"), requested_by=owner)
    return admin, owner, account, project, walking, instance


@pytest.mark.django_db(transaction=True)
def test_the_pages_the_newcomer_fixes_touched_read_well_at_1280_and_390_px(
    live_server, page, settings
):
    store.reset()
    builtin = dict(SANDBOX_PROJECTS)
    settings.SMS_GATEWAY_OVERRIDE = ""  # the sandbox provider delivers to the phone simulator
    SHOTS.mkdir(parents=True, exist_ok=True)
    base = live_server.url
    admin, owner, account, project, walking, instance = _scene(base)
    try:
        _onboarding(page, base, admin, owner, instance)
        _administrator(page, base, admin)
        _billing(page, base, owner, account)
        _project(page, base, owner, project, walking)
        _everywhere(page, base, admin, owner)
    finally:
        SANDBOX_PROJECTS.clear()
        SANDBOX_PROJECTS.update(builtin)


def _onboarding(page, base, admin, owner, instance):
    # 1. An incomplete draft's "Submit for review": each missing field marked on the form.
    draft = OnboardingRequestFactory(
        requester=owner,
        redcap_instance=instance,
        redcap_project_id=7001,
        project_title="Sleep Diary",
        status=OnboardingRequest.Status.DRAFT,
        submitted_at=None,
        pi_name="",
        summary="",
        message_kinds=[],
    )
    _sign_in(page, base, owner)
    page.goto(f"{base}/requests/{draft.pk}/")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator(".flash")).to_contain_text("complete the marked fields")
    expect(page.locator("#field-pi_name.has-error")).to_contain_text("Enter the PI's name.")
    expect(page.locator("#field-summary.has-error")).to_be_visible()
    expect(page.locator("#field-message_kinds.has-error")).to_be_visible()
    _both(page, "01-request-missing-fields")

    # 4. A submitted request: the IRB letter attached; a PDF name with other content refused.
    request = OnboardingRequestFactory(
        requester=owner,
        redcap_instance=instance,
        redcap_project_id=7002,
        project_title="Walking for Health",
        status=OnboardingRequest.Status.DRAFT,
        submitted_at=None,
        pi_name="Dr. Ada Lovelace",
        expected_participants=120,
    )
    onboarding.onboarding_request_submit(onboarding_request=request, actor=owner)
    page.goto(f"{base}/requests/{request.pk}/")
    files = page.locator("#attachment-form")
    files.get_by_label("Attach a file").set_input_files(
        files=[{"name": "IRB letter.pdf", "mimeType": "application/pdf", "buffer": b"PK\x03\x04"}]
    )
    files.get_by_role("button", name="Attach", exact=True).click()
    expect(page.locator("#field-file")).to_contain_text(
        "“IRB letter.pdf” is named as a PDF but is not one"
    )
    page.locator("#attachment-form").get_by_label("Attach a file").set_input_files(
        files=[{"name": "IRB approval letter.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    page.locator("#attachment-form").get_by_role("button", name="Attach", exact=True).click()
    expect(page.locator("#attachments")).to_contain_text("IRB approval letter.pdf")
    _both(page, "02-request-with-file")

    # 2. The administrator asks for changes without a note: refused, the decision kept.
    _sign_in(page, base, admin)
    page.goto(f"{base}/requests/{request.pk}/")
    page.get_by_role("radio", name="Ask for changes").check()
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator("#field-note")).to_contain_text("Tell the researcher what to change.")
    expect(page.get_by_role("radio", name="Ask for changes")).to_be_checked()
    _both(page, "03-decision-kept")
    page.get_by_label("Note to the researcher").fill("Please name the real PI and 80 people.")
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator("#request-status")).to_have_text("Changes requested")

    # 3. Resubmitted with changes: the administrator sees each one, old → new.
    onboarding.onboarding_request_update(
        onboarding_request=request,
        actor=owner,
        data={"pi_name": "Dr. Grace Hopper", "expected_participants": 80},
        submit=True,
    )
    page.goto(f"{base}/requests/{request.pk}/")
    changes = page.locator("#changes")
    expect(changes).to_contain_text("Changed since the last submission")
    expect(changes.locator("tr", has_text="PI name")).to_contain_text("Dr. Ada Lovelace")
    expect(changes.locator("tr", has_text="PI name")).to_contain_text("Dr. Grace Hopper")
    _both(page, "04-request-changes")

    # 5. Approved: the e-mail links to the new project (tests/portal/test_emails.py).
    page.get_by_role("radio", name="Approve").check()
    page.get_by_role("button", name="Record decision").click()
    expect(page.locator(".flash")).to_contain_text("Approved.")


def _administrator(page, base, admin):
    # 11. The dashboard counts every queue waiting for an administrator.
    page.goto(f"{base}/")
    expect(page.locator("#credit-pack-count")).to_have_text("1")
    expect(page.locator("#plan-change-count")).to_have_text("1")
    _both(page, "05-admin-dashboard")
    page.get_by_role("link", name="Review plan changes →").click()
    expect(page.locator("#plans-h")).to_be_visible()
    _both(page, "06-billing-review")
    # 16. The audit log in the site's date-and-time format.
    page.goto(f"{base}/audit/")
    expect(page.locator("table")).to_contain_text(re.compile(r"[A-Z][a-z]{2} \d+, \d{4} \d+:\d{2}"))
    _both(page, "07-audit-log")


def _billing(page, base, owner, account):
    # 12, 14. Prices on the plan, change-plan and credit-pack pages; "(optional)" said once.
    _sign_in(page, base, owner)
    page.goto(f"{base}/billing/accounts/{account.pk}/")
    expect(page.locator("#plan-price")).to_have_text("$250.00 a month")
    _both(page, "08-account-plan")
    page.goto(f"{base}/billing/accounts/{account.pk}/plan-change/new/")
    expect(page.get_by_text("Plus ($600.00 a month): up to 10 active projects")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("(optional) (optional)")
    _both(page, "09-change-plan")
    page.goto(f"{base}/billing/accounts/{account.pk}/credit-packs/new/")
    expect(page.locator("#pack-price")).to_have_text("$60.00")
    _both(page, "10-credit-packs")


def _project(page, base, owner, project, walking):
    # 6. The scheduled sync says so.
    run = project.sync_runs.get()
    page.goto(f"{base}/projects/{project.pk}/participants/sync/{run.pk}/")
    expect(page.locator("#sync-started")).to_contain_text("Scheduled sync, started")
    _both(page, "11-sync-scheduled")
    # 9. Participants in REDCap's order.
    page.goto(f"{base}/projects/{project.pk}/participants/")
    _both(page, "12-participants")

    # 7. The text box to one participant: the preview, its cost and the limit, no silent cut.
    person = Participant.objects.filter(project=project, issue="").order_by("pk").first()
    page.goto(f"{base}/projects/{project.pk}/participants/{person.pk}/")
    box = page.get_by_label("Text", exact=True)
    box.fill("Hi [first_name]! " + "Please fill in today's diary. " * 56)
    expect(box).to_have_value(re.compile(r".{1650,}", re.S))  # the paste is whole
    expect(page.locator("#adhoc-preview-warning")).to_contain_text(
        "Too long: carriers refuse texts over 1,600 characters."
    )
    expect(page.locator("#adhoc-preview-cost")).to_contain_text("1 message")
    _both(page, "13-participant-too-long")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#field-body")).to_contain_text("carriers refuse texts over 1,600")

    # 8. "Send a test to my phone": add the phone, confirm it with the code from the simulator.
    rule = rules.rule_save(
        project=project,
        actor=owner,
        data={
            "kind": "invitation",
            "name": "Weekly diary",
            "body": "Hi [first_name], your diary for this week: [survey-link]",
            "instrument": "baseline_survey",
            "event": "",
            "recipients": "all",
            "filter_logic": "",
            "record_ids": [],
            "schedule": "manual",
            "send_time": datetime.time(10, 0),
            "once_date": None,
            "recur_days": [],
            "start_date": timezone.localdate(),
            "until_date": None,
            "max_occurrences": None,
            "date_field": "",
            "offset_days": 0,
            "stop_when_complete": False,
            "max_sends": None,
        },
    )
    page.goto(f"{base}/projects/{project.pk}/messages/{rule.pk}/")
    page.get_by_role("link", name="add your own mobile number").click()
    _both(page, "14-my-phone")
    page.get_by_label("Your mobile number").fill("(615) 555-0199")
    page.get_by_role("button", name="Text me a code").click()
    expect(page.locator(".flash")).to_contain_text("A code is on its way to •••-•••-0199")
    page.goto(f"{base}/projects/{project.pk}/phones/")
    own = page.locator("#own-phone")
    expect(own).to_contain_text("Your StudyText code is")
    _both(page, "15-simulator-own-phone")
    code = re.search(r"code is (\d{6})", own.inner_text()).group(1)
    page.go_back()
    page.get_by_label("The code we texted you").fill(code)
    page.get_by_role("button", name="Confirm my phone").click()
    expect(page.locator(".flash")).to_contain_text("Your phone is confirmed.")
    record_2 = Participant.objects.get(project=project, record_id="2")
    page.locator("#test-participant").select_option(value=str(record_2.pk))
    page.get_by_role("button", name="Send to •••-•••-0199").click()
    expect(page.locator(".flash")).to_contain_text("Test sent to your phone (•••-•••-0199)")
    _both(page, "16-rule-test-sent")
    # ... and from the form's preview, the text being written.
    page.goto(f"{base}/projects/{project.pk}/messages/{rule.pk}/edit/")
    page.locator("#preview-participant").select_option(index=1)
    expect(page.locator("#preview-text")).to_contain_text("Hi Avery, your diary for this week")
    page.get_by_role("button", name="Send a test to my phone").click()
    expect(page.locator("#preview-test-result")).to_contain_text("Test sent to your phone")
    _both(page, "17-rule-form-test")
    assert Message.objects.filter(kind="test", status="sent").count() == 3  # code + 2 tests

    # 8, 17. The log marks tests; it and the overview fit a phone.
    page.goto(f"{base}/projects/{project.pk}/log/")
    expect(page.locator("#log .badge-test")).to_have_count(3)
    _both(page, "18-log-with-tests")
    page.goto(f"{base}/projects/{project.pk}/")
    _both(page, "19-overview")

    # 10. A project the sandbox does not know: created there, its token shown to the owner.
    page.goto(f"{base}/projects/{walking.pk}/redcap/")
    expect(page.locator("#sandbox-offer")).to_contain_text("has no project 5001 yet")
    _both(page, "20-redcap-sandbox-offer")
    page.get_by_role("button", name="Create project 5001 in the sandbox").click()
    token = page.locator("#sandbox-token").inner_text()
    assert re.fullmatch(r"[0-9A-F]{32}", token)
    page.locator("#redcap-form").get_by_label("API token").fill(token)
    page.locator("#redcap-form").get_by_role("button", name="Link").click()
    expect(page.locator(".flash")).to_contain_text("REDCap linked: “Walking Study”")
    _both(page, "21-redcap-sandbox-linked")


def _everywhere(page, base, admin, owner):
    page.goto(f"{base}/accounts/profile/")
    expect(page.locator("#own-phone-card")).to_contain_text("•••-•••-0199")
    _both(page, "22-profile-phone")
    page.goto(f"{base}/")
    _both(page, "23-researcher-dashboard")
