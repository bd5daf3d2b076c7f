import datetime

from django.core.checks import Error
from django.test import override_settings

from billing.apps import check_quota_unit
from billing.charts import daily_chart, gauge, nice_ceiling
from billing.models import Account, Plan, UsagePeriod
from billing.selectors import _split

NOV_1 = datetime.date(2026, 11, 1)


def period(**values) -> UsagePeriod:
    account = Account(name="Lab", plan=Plan(name="Basic", project_limit=4, monthly_messages=900))
    fields = {"start": NOV_1, "end": datetime.date(2026, 11, 30), "included": 900, "credits": 0}
    return UsagePeriod(account=account, **{**fields, **values})


def test_axis_tops_are_tidy_numbers():
    values = (0, 3, 7, 13, 30, 101, 240, 999, 7501)
    assert [nice_ceiling(v) for v in values] == [4, 4, 8, 16, 40, 120, 300, 1000, 8000]


def test_the_chart_has_a_bar_per_day_shades_the_days_to_come_and_flags_busy_days():
    days = [(NOV_1 + datetime.timedelta(days=i), 10 * i) for i in range(30)]
    chart = daily_chart(days=days, period=period(), today=datetime.date(2026, 11, 10))
    assert len(chart.bars) == 30
    assert chart.budget == 30  # 900 included over 30 days
    assert "bar-today" in chart.bars[9].css
    assert "bar-over" in chart.bars[4].css and "bar-over" not in chart.bars[2].css
    assert chart.bars[9].x < chart.future_x < chart.bars[10].x  # the 11th onwards is shaded
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.units == 290 and tallest.y >= chart.top


def test_a_past_month_has_no_days_to_come():
    days = [(NOV_1 + datetime.timedelta(days=i), 1) for i in range(30)]
    assert daily_chart(days=days, period=period(), today=None).future_x is None


def test_the_gauge_puts_credits_after_the_included_units():
    g = gauge(period(used=1000, credits=300))  # 900 included + 100 of 300 credits used
    assert (g.included, g.used_included, g.credits, g.used_credits) == (750, 750, 250, 83.3)
    assert g.tick_80 == 600
    assert gauge(period(included=0)).tick_80 is None


def test_credit_units_are_shared_in_whole_units_that_add_up():
    assert _split(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(_split(7, [5, 3, 0, 9])) == 7
    assert _split(0, [5, 5]) == [0, 0]


def test_a_misspelt_quota_unit_is_a_configuration_error():
    with override_settings(QUOTA_UNIT="sms"):
        [error] = check_quota_unit(None)
    assert isinstance(error, Error) and error.id == "billing.E001"
    assert check_quota_unit(None) == []
