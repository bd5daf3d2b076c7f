"""Plan and credit-pack prices: set by administrators (may be empty), shown where owners choose."""

from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Plan
from tests.billing.test_admin import plan_form
from tests.factories import PlanFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def _change(client, plan: Plan, **changes):
    url = reverse("admin:billing_plan_change", args=[plan.pk])
    return client.post(url, plan_form(plan, **{"monthly_price": "", **changes}))


def test_an_administrator_gives_a_plan_a_monthly_price_and_a_pack_price(as_user, server_admin):
    basic = Plan.objects.get(name="Basic")

    response = _change(as_user(server_admin), basic, monthly_price="250", pack_price="49.50")

    assert response.status_code == 302
    basic.refresh_from_db()
    assert (basic.monthly_price, basic.pack_price) == (Decimal("250.00"), Decimal("49.50"))


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("monthly_price", "-5", "A price cannot be negative. Enter 0 or more."),
        ("pack_price", "-0.01", "A price cannot be negative. Enter 0 or more."),
        ("monthly_price", "$250", "Enter the price as a number, such as 250 or 49.50"),
        ("pack_price", "fifty", "Enter the price as a number, such as 250 or 49.50"),
    ],
)
def test_a_price_that_is_negative_or_not_a_number_is_refused_and_nothing_is_saved(
    as_user, server_admin, field, typed, message
):
    basic = Plan.objects.get(name="Basic")
    before = (basic.monthly_price, basic.pack_price, basic.project_limit)

    response = _change(as_user(server_admin), basic, project_limit=9, **{field: typed})

    assert response.status_code == 200
    assert message in response.content.decode()
    basic.refresh_from_db()
    assert (basic.monthly_price, basic.pack_price, basic.project_limit) == before


def test_prices_show_on_the_plan_change_and_credit_pack_pages(as_user, owner, account, plan):
    Plan.objects.filter(pk=plan.pk).update(monthly_price=Decimal("1250"), pack_price=Decimal("60"))
    PlanFactory(name="Plus", project_limit=10, monthly_messages=3000)  # seeded by a migration
    Plan.objects.filter(name="Plus").update(monthly_price=Decimal("300"))
    client = as_user(owner)

    plan_page = client.get(reverse("billing-account-detail", args=[account.pk])).content.decode()
    change = client.get(reverse("billing-plan-change-request", args=[account.pk])).content.decode()
    packs = client.get(reverse("billing-credit-pack-request", args=[account.pk])).content.decode()

    assert '<span id="plan-price">$1,250.00 a month</span>' in plan_page
    assert "1,000 messages · $60.00 a pack" in plan_page
    assert "Plus ($300.00 a month): up to 10 active projects, 3,000 a month" in change
    assert "plan ($1,250.00 a month) and has" in change
    assert '<strong id="pack-price">$60.00</strong> a pack' in packs


def test_a_plan_without_prices_shows_none(as_user, owner, account):
    client = as_user(owner)
    plan_page = client.get(reverse("billing-account-detail", args=[account.pk])).content.decode()
    packs = client.get(reverse("billing-credit-pack-request", args=[account.pk])).content.decode()
    assert 'id="plan-price"' not in plan_page and "a pack" not in plan_page
    assert 'id="pack-price"' not in packs


def test_a_currency_without_a_sign_here_is_written_after_the_amount(settings):
    from billing.templatetags.billing_extras import price

    settings.PRICE_CURRENCY = "CHF"
    assert price(Decimal("1250.5")) == "1,250.50 CHF"
    assert price(None) == ""


def test_the_change_plan_page_says_optional_once(as_user, owner, account):
    page = as_user(owner).get(reverse("billing-plan-change-request", args=[account.pk]))
    html = page.content.decode()
    assert "(optional) (optional)" not in html
    assert 'Why <span class="muted small">(optional)</span>' in html
