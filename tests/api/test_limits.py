"""The rate limit: per token, with a clear 429 and Retry-After; other tokens are not affected."""

import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import reverse

from tests.api.conftest import call

pytestmark = pytest.mark.django_db


def _limits(per_token: int, anonymous: int = 100):
    return override_settings(
        RATE_LIMITS={
            **settings.RATE_LIMITS,
            "api": (per_token, 60),
            "api_anonymous": (anonymous, 60),
        }
    )


def test_a_token_over_its_limit_gets_429_with_retry_after_and_others_go_on(world):
    url = reverse("api-project-list")
    with _limits(3):
        for _ in range(3):
            assert call(world.tokens["editor"], "GET", url).status_code == 200
        response = call(world.tokens["editor"], "GET", url)
        assert response.status_code == 429
        assert 1 <= int(response["Retry-After"]) <= 60
        body = response.json()
        assert body["code"] == "throttled"
        assert "this token" in body["detail"] and "Retry-After" in body["detail"]
        assert call(world.tokens["viewer"], "GET", url).status_code == 200


def test_writes_count_against_the_same_limit_and_a_refused_one_writes_nothing(world):
    from messaging.models import MessageRule

    url = reverse("api-rule-list", args=[world.project.pk])
    data = {"name": "N", "kind": "reminder", "body": "Hi", "schedule": "manual"}
    with _limits(1):
        assert call(world.tokens["editor"], "POST", url, data).status_code == 201
        before = MessageRule.objects.count()
        assert call(world.tokens["editor"], "POST", url, data).status_code == 429
        assert MessageRule.objects.count() == before


def test_calls_without_a_token_are_limited_per_address(world):
    with _limits(100, anonymous=2):
        assert call(None, "GET", "/api/").status_code == 200
        assert call(None, "GET", "/api/").status_code == 200
        response = call(None, "GET", "/api/")
        assert response.status_code == 429
        assert "Retry-After" in response


def test_the_health_check_is_never_rate_limited(world):
    with _limits(1, anonymous=1):
        codes = {call(None, "GET", "/api/health/").status_code for _ in range(5)}
    assert 429 not in codes
