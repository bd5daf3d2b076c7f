"""In Chromium: an owner sees the account's usage, asks for a credit pack, an administrator approves
it, and the owner's gauge shows the credits.

Set SCREENSHOTS_DIR to keep full-page screenshots of the pages on the way.
"""

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from billing.models import AccountMembership
from billing.services import quota_reserve
from tests.e2e.helpers import pass_second_factor
from tests.factories import (
    AccountFactory,
    PlanFactory,
    ProjectFactory,
    ServerAdminFactory,
    UserFactory,
)

PASSWORD = "a-good-long-password"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def sign_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, email)
    expect(page.get_by_role("link", name=email)).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_an_owner_asks_for_credits_and_sees_them_once_an_administrator_approves(
    live_server, page: Page
):
    owner = UserFactory(email="riley@uni.test", full_name="Riley Researcher")
    admin = ServerAdminFactory(email="alex@uni.test", full_name="Alex Admin")
    member = UserFactory(email="mel@uni.test")
    plan = PlanFactory(name="Basic", project_limit=4, monthly_messages=1000, pack_size=1000)
    account = AccountFactory(name="Sleep Lab", plan=plan, owners=[owner])
    AccountMembership.objects.create(account=account, user=member)
    sleep = ProjectFactory(account=account, title="Sleep and Mood", owner=owner)
    steps = ProjectFactory(account=account, title="Step Count Pilot", owner=owner)
    assert quota_reserve(project=sleep, units=610)
    assert quota_reserve(project=steps, units=240)
    base = live_server.url

    # The owner sees this month's usage on the account page.
    sign_in(page, base, owner.email)
    page.get_by_role("link", name="Usage & billing").click()
    page.get_by_role("link", name="Sleep Lab").click()
    expect(page.locator("#gauge-used")).to_have_text("850")
    expect(page.locator("#gauge-included")).to_have_text("1,000")
    expect(page.locator("#gauge-credits")).to_have_text("0")
    expect(page.locator("#project-usage")).to_contain_text("Sleep and Mood")
    expect(page.locator(".quota-banner")).to_contain_text("has used 85%")
    shot(page, "billing-account-before")

    # ... and asks for two credit packs.
    page.get_by_role("link", name="Request credit packs").first.click()
    page.get_by_label("Number of packs").fill("2")
    page.get_by_label("Note for the administrators").fill("Recruitment is ahead of plan.")
    page.get_by_role("button", name="Send the request").click()
    expect(page.locator(".flash")).to_contain_text("Asked for 2 packs (2,000 messages)")
    expect(page.locator("#credit-packs")).to_contain_text("Waiting for review")
    sign_out(page)

    # An administrator approves it from the review list.
    sign_in(page, base, admin.email)
    page.goto(f"{base}/billing/admin/review/")
    row = page.locator("#pending-credit-packs tbody tr").filter(has_text="Sleep Lab")
    expect(row).to_contain_text("2,000")
    shot(page, "billing-review")
    row.get_by_label("Note to the owners").fill("Charged to the lab's recharge account.")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator(".flash")).to_contain_text("Approved the credit packs for “Sleep Lab”")
    expect(page.get_by_text("No credit packs waiting")).to_be_visible()
    page.goto(f"{base}/billing/admin/accounts/")
    shot(page, "billing-admin-accounts")
    sign_out(page)

    # The owner's gauge shows the credits.
    sign_in(page, base, owner.email)
    page.goto(f"{base}/billing/accounts/{account.pk}/")
    expect(page.locator("#gauge-credits")).to_have_text("2,000")
    expect(page.locator("#credit-packs")).to_contain_text("Approved")
    expect(page.locator("#projection")).to_have_text(re.compile(r"\S"))
    shot(page, "billing-account-after")
