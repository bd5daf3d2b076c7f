"""In Chromium: the API's documentation draws itself from this site's own files under the site's
content security policy (nothing refused, nothing from elsewhere), and Swagger UI's "Try it out"
calls the API with a token.

Set SCREENSHOTS_DIR to keep screenshots of both pages."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from portal.services.profile import api_token_create
from tests.factories import ProjectFactory, UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def _watch(page: Page, base: str) -> list[str]:
    """Collect what the browser refused or fetched from elsewhere."""
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" or "Content Security Policy" in m.text
            else None
        ),
    )
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on(  # a request the policy blocks fails; one that finished left this site
        "requestfinished",
        lambda r: (
            problems.append(f"outside request: {r.url}")
            if not r.url.startswith((base, "data:", "blob:"))
            else None
        ),
    )
    return problems


def _shot(page: Page, name: str) -> None:
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


def test_swagger_ui_draws_the_api_and_tries_a_call_with_a_token(live_server, page: Page):
    user = UserFactory(email="integrator@uni.test")
    project = ProjectFactory(owner=user, title="Sleep and Mood")
    key = api_token_create(user=user, scope="read")
    base = live_server.url
    problems = _watch(page, base)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/api/docs/")
    expect(page.get_by_text("StudyText API").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/api/projects/").first).to_be_visible()
    _shot(page, "api-docs-swagger")

    page.get_by_role("button", name="Authorize").click()
    dialog = page.locator(".dialog-ux")
    token_scheme = dialog.locator(".auth-container").filter(has_text="tokenAuth")
    token_scheme.locator("input[type=text]").fill(f"Token {key}")
    token_scheme.get_by_role("button", name="Apply credentials").click()
    dialog.get_by_role("button", name="Close").first.click()
    list_projects = page.locator("#operations-projects-projects_list")
    list_projects.locator(".opblock-summary").click()
    list_projects.get_by_role("button", name="Try it out").click()
    list_projects.get_by_role("button", name="Execute").click()
    status = list_projects.locator(".live-responses-table .response .response-col_status")
    expect(status).to_have_text("200")
    body = list_projects.locator(".live-responses-table .response .microlight").first
    expect(body).to_contain_text(project.title)
    assert problems == []


# ReDoc's menu shows the Redocly logo from Redocly's own server: the page's policy refuses it
# (and the stylesheet hides the link), so nothing is fetched from elsewhere.
REDOCLY_LOGO = "cdn.redoc.ly/redoc/logo-mini.svg"


def test_redoc_draws_the_reference_from_this_site(live_server, page: Page):
    base = live_server.url
    problems = _watch(page, base)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{base}/api/redoc/")
    expect(page.get_by_role("heading", name="StudyText API").first).to_be_visible()
    expect(page.get_by_text("Send a rule's text now").first).to_be_attached()
    _shot(page, "api-docs-redoc")
    page.set_viewport_size({"width": 390, "height": 844})
    _shot(page, "api-docs-redoc-phone")
    assert [p for p in problems if REDOCLY_LOGO not in p or "outside request" in p] == []
