"""The administrator's dashboard counts every queue waiting for them, each linking to it."""

import pytest
from django.urls import reverse

from billing.models import CreditPackRequest
from tests.factories import (
    AccountFactory,
    CreditPackRequestFactory,
    OnboardingRequestFactory,
    PlanChangeRequestFactory,
)

pytestmark = pytest.mark.django_db


def _stat(html: str, stat_id: str) -> str:
    return html.split(f'id="{stat_id}">')[1].split("<")[0]


def test_the_dashboard_counts_waiting_credit_packs_and_plan_changes_beside_requests(
    as_user, server_admin
):
    OnboardingRequestFactory()
    for _ in range(3):
        CreditPackRequestFactory()
    CreditPackRequestFactory(status=CreditPackRequest.Status.APPROVED)  # decided: not waiting
    PlanChangeRequestFactory(account=AccountFactory())
    PlanChangeRequestFactory(account=AccountFactory())

    html = as_user(server_admin).get(reverse("dashboard")).content.decode()

    assert (_stat(html, "pending-count"), _stat(html, "credit-pack-count")) == ("1", "3")
    assert _stat(html, "plan-change-count") == "2"
    assert "3 credit-pack requests waiting" not in html  # the number is the stat above
    assert "credit-pack requests waiting" in html and "plan changes waiting" in html
    assert f'href="{reverse("billing-review")}#packs-h"' in html
    assert f'href="{reverse("billing-review")}#plans-h"' in html
    assert f'href="{reverse("onboarding-queue")}"' in html


def test_the_anchors_the_dashboard_links_to_exist_on_the_billing_review_page(as_user, server_admin):
    html = as_user(server_admin).get(reverse("billing-review")).content.decode()
    assert 'id="packs-h"' in html and 'id="plans-h"' in html


def test_researchers_see_no_queue_counts(as_user, researcher):
    CreditPackRequestFactory()
    html = as_user(researcher).get(reverse("dashboard")).content.decode()
    assert 'id="credit-pack-count"' not in html and 'id="plan-change-count"' not in html
