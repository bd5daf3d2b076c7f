"""Who may call what, generated from the URLconf: every API route and method has a policy here, so
a new route cannot forget its check, and each policy is tried as the owner, an editor, a viewer,
an outsider (404: nothing says the object exists) and anonymously (401)."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.api.conftest import PERSONAS

pytestmark = pytest.mark.django_db

OK = "ok"  # allowed: 2xx, or 400 when the body is not a valid one (the access check passed)

# What each persona gets, per kind of route.
PUBLIC = {p: 200 for p in PERSONAS}
MINE = {"anonymous": 401, "outsider": 200, "viewer": 200, "editor": 200, "owner": 200}
PROJECT_READ = {"anonymous": 401, "outsider": 404, "viewer": 200, "editor": 200, "owner": 200}
PROJECT_WRITE = {"anonymous": 401, "outsider": 404, "viewer": 403, "editor": OK, "owner": OK}
ACCOUNT_READ = PROJECT_READ  # the editor and the viewer are members of the billing account
ACCOUNT_OWNER = {"anonymous": 401, "outsider": 404, "viewer": 403, "editor": 403, "owner": OK}
OWN_READ = {"anonymous": 401, "outsider": 404, "viewer": 404, "editor": 404, "owner": 200}
OWN_WRITE = {"anonymous": 401, "outsider": 404, "viewer": 404, "editor": 404, "owner": OK}

POLICY = {
    ("api-root", "GET"): PUBLIC,
    ("api-schema", "GET"): PUBLIC,
    ("api-docs", "GET"): PUBLIC,
    ("api-redoc", "GET"): PUBLIC,
    ("api-health", "GET"): None,  # public; 200 or 503 by the state of the workers (test_health)
    ("api-project-list", "GET"): MINE,
    ("api-project-detail", "GET"): PROJECT_READ,
    ("api-participant-list", "GET"): PROJECT_READ,
    ("api-participant-detail", "GET"): PROJECT_READ,
    ("api-participant-opt-out", "POST"): PROJECT_WRITE,
    ("api-participant-opt-in", "POST"): PROJECT_WRITE,
    ("api-participant-text", "POST"): PROJECT_WRITE,
    ("api-rule-list", "GET"): PROJECT_READ,
    ("api-rule-list", "POST"): PROJECT_WRITE,
    ("api-rule-detail", "GET"): PROJECT_READ,
    ("api-rule-detail", "PATCH"): PROJECT_WRITE,
    ("api-rule-activate", "POST"): PROJECT_WRITE,
    ("api-rule-pause", "POST"): PROJECT_WRITE,
    ("api-rule-archive", "POST"): PROJECT_WRITE,
    ("api-rule-send-now", "POST"): PROJECT_WRITE,
    ("api-send-detail", "GET"): PROJECT_READ,
    ("api-message-list", "GET"): PROJECT_READ,
    ("api-message-detail", "GET"): PROJECT_READ,
    ("api-reply-list", "GET"): PROJECT_READ,
    ("api-inbox-list", "GET"): PROJECT_READ,
    ("api-inbox-read", "POST"): PROJECT_WRITE,
    ("api-inbox-review", "POST"): PROJECT_WRITE,
    ("api-survey-results", "GET"): PROJECT_READ,
    ("api-account-list", "GET"): MINE,
    ("api-account-usage", "GET"): ACCOUNT_READ,
    ("api-account-periods", "GET"): ACCOUNT_READ,
    ("api-credit-pack-request-list", "GET"): ACCOUNT_READ,
    ("api-credit-pack-request-list", "POST"): ACCOUNT_OWNER,
    ("api-onboarding-request-list", "GET"): MINE,
    ("api-onboarding-request-list", "POST"): {**{p: OK for p in PERSONAS}, "anonymous": 401},
    ("api-onboarding-request-detail", "GET"): OWN_READ,
    ("api-onboarding-request-detail", "PATCH"): OWN_WRITE,
    ("api-onboarding-request-submit", "POST"): OWN_WRITE,
    ("api-onboarding-request-withdraw", "POST"): OWN_WRITE,
    ("api-onboarding-comment-list", "GET"): OWN_READ,
    ("api-onboarding-comment-list", "POST"): OWN_WRITE,
}
NOT_ROUTES = {"api-not-found"}  # the JSON 404 for every other address under /api/


def _api_routes():
    """(name, method, view class) of every route under /api/, from the URLconf itself."""
    api = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and str(p.pattern) == "api/"
    )
    for pattern in api.url_patterns:
        assert isinstance(pattern, URLPattern)
        if pattern.name in NOT_ROUTES:
            continue
        view = pattern.callback.cls
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                yield pattern.name, method.upper()


ROUTES = sorted(set(_api_routes()))


def test_every_api_route_and_method_has_an_access_policy():
    assert set(ROUTES) == set(POLICY), (
        "Give each new API route a policy (and drop the policies of removed ones): "
        f"missing {sorted(set(ROUTES) - set(POLICY))}, stale {sorted(set(POLICY) - set(ROUTES))}"
    )


def _url(world, name: str) -> str:
    params = get_resolver().reverse_dict.getlist(name)[0][0][0][1]
    return reverse(name, kwargs={k: world.kwargs[k] for k in params})


@pytest.mark.parametrize(("name", "method"), ROUTES, ids=[f"{m} {n}" for n, m in ROUTES])
def test_each_persona_gets_what_the_policy_says(world, api, name, method):
    expected = POLICY[(name, method)]
    url = _url(world, name)
    got = {}
    for persona in PERSONAS:  # the ones who may not write go first: nothing changes for them
        response = api(persona, method, url, {})
        got[persona] = response.status_code
        if response["Content-Type"].startswith("application/json"):
            assert "detail" in response.json() or response.status_code < 300
    if expected is None:
        assert all(code in (200, 503) for code in got.values()), got
        return
    for persona, want in expected.items():
        code = got[persona]
        if want == OK:
            assert code < 300 or code == 400, f"{persona}: {code}"
        else:
            assert code == want, f"{method} {url} as {persona}: {code}, expected {want}"


def test_an_outsiders_lists_show_nothing_of_the_project(world, api):
    for name in ("api-project-list", "api-account-list", "api-onboarding-request-list"):
        results = api("outsider", "GET", reverse(name)).json()["results"]
        ids = {row["id"] for row in results}
        assert world.project.pk not in ids or name != "api-project-list"
        assert world.account.pk not in ids or name != "api-account-list"
        assert world.onboarding.pk not in ids or name != "api-onboarding-request-list"
        assert ids  # their own things are there


def test_a_token_on_another_users_project_gets_404_for_every_project_route(world, api):
    mine, theirs = f"/projects/{world.project.pk}/", f"/projects/{world.outsider_project.pk}/"
    checked = 0
    for name, method in ROUTES:
        url = _url(world, name)
        if mine not in url:
            continue
        # The editor's own token, on a project they are not in: the same route, another id.
        assert api("editor", method, url.replace(mine, theirs), {}).status_code == 404, url
        checked += 1
    assert checked >= 15
