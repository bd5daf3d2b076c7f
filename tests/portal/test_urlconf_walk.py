"""Every route of the URLconf, generated: a visitor reaches only the public pages, and an
administrator who has typed only a password reaches nothing but the second-factor step."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

PASSWORD = "a-good-long-password"
# Pages anyone may open (the rest answer a visitor with the sign-in page, 401, 403, 404 or 405).
PUBLIC = {
    "login",
    "signup",
    "verify-email",
    "resend-verification",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "signin-unlock",
    "twilio-status",
    "twilio-inbound",
    "mosio-inbound",
    "api-schema",
    "api-root",
    "api-docs",
    "api-redoc",
    "api-health",
}
# 503 is the health check's own answer when the workers are not running (as in this test).
MAY_ANSWER_503 = {"api-health"}
# What an administrator with only a password may open.
SECOND_FACTOR_PAGES = {"two-factor-verify", "two-factor-setup", "logout"}


def _walk(patterns, prefix=""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def _concrete(route: str) -> str:
    route = route.replace("^", "").replace("$", "").replace("\\Z", "")
    route = re.sub(r"<int:[^>]+>", "999999", route)
    route = re.sub(r"<(?:str:|path:|slug:)?[^>]+>", "x", route)
    route = re.sub(r"\(\?P<[^>]+>[^)]*\)", "x", route)  # the admin's regex routes
    return "/" + route.lstrip("/")


ROUTES = sorted(
    {
        (_concrete(route), pattern.name or "")
        for route, pattern in _walk(get_resolver().url_patterns)
    }
)


def test_the_walk_finds_the_portal_and_the_admin():
    names = {name for _, name in ROUTES}
    assert {"dashboard", "login", "onboarding-queue", "audit-log", "two-factor-verify"} <= names
    assert any(url.startswith("/admin/") for url, _ in ROUTES)
    assert len(ROUTES) > 80


@pytest.mark.parametrize(("url", "name"), ROUTES, ids=[f"{n or '-'} {u}" for u, n in ROUTES])
def test_a_visitor_reaches_only_public_pages(client, url, name):
    response = client.get(url)
    if name == "sandbox-redcap-api":
        # The sandbox answers a GET as REDCap does: 501 with REDCap's error (docs/redcap.md).
        assert response.status_code == 501
        return
    assert response.status_code < 500 or (name in MAY_ANSWER_503 and response.status_code == 503)
    if name in PUBLIC or url.startswith(("/sandbox/", "/static/", "/favicon")):
        return
    if url == "/admin/logout/":
        return  # sends a visitor back to the admin's sign-in
    if response.status_code == 302:
        assert "/login/" in response.url, f"{url} redirects a visitor to {response.url}"
    else:
        assert response.status_code in (401, 403, 404, 405), f"{url} answered a visitor"


@pytest.mark.parametrize(("url", "name"), ROUTES, ids=[f"{n or '-'} {u}" for u, n in ROUTES])
def test_an_administrator_with_only_a_password_reaches_nothing_else(
    client, server_admin, url, name
):
    client.post("/accounts/login/", {"username": server_admin.email, "password": PASSWORD})
    assert "_auth_user_id" in client.session
    response = client.get(url)
    assert response.status_code < 500
    if name in SECOND_FACTOR_PAGES or url.startswith(("/sandbox/", "/webhooks/", "/favicon")):
        return
    assert response.status_code != 200, f"{url} opened without the second factor"
    if response.status_code == 302:
        assert "/accounts/two-factor/" in response.url or "/admin/login/" in response.url
