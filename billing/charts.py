"""Geometry for the server-side SVG charts (no JavaScript, no chart library, CSP-safe: the
templates draw shapes with attributes and CSS classes, never style attributes)."""

import datetime
import math
from dataclasses import dataclass, field

from billing.models import UsagePeriod

# Axis tops that split into four whole-number steps: 4, 8, 12, 16, 20, 40, 60, 80, 100, 120, ...
_TOPS = sorted(
    {4, 8}
    | {
        round(m * 10**k)
        for k in range(1, 10)
        for m in (1.2, 1.6, 2, 3, 4, 6, 8, 10)
        if round(m * 10**k) % 4 == 0
    }
)


def nice_ceiling(value: float) -> int:
    """The smallest tidy axis top (four whole-number steps) that is at least `value`."""
    for top in _TOPS:
        if top >= value:
            return top
    return math.ceil(value / 4) * 4


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: datetime.date
    units: int
    css: str


@dataclass
class DailyChart:
    width: int = 760
    height: int = 240
    left: int = 48
    right: int = 12
    top: int = 16
    bottom: int = 30
    bars: list[Bar] = field(default_factory=list)
    y_ticks: list[tuple[float, int]] = field(default_factory=list)  # (y, value)
    x_labels: list[tuple[float, str]] = field(default_factory=list)  # (x, text)
    budget_y: float | None = None  # the even daily pace that uses exactly the included units
    budget: float = 0
    total: int = 0
    peak: int = 0
    future_x: float | None = None  # where the days still to come begin (shaded)

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_height(self) -> int:
        return self.plot_bottom - self.top

    @property
    def future_width(self) -> float:
        return round(self.plot_right - self.future_x, 1) if self.future_x is not None else 0


def bar(
    chart: DailyChart, *, x: float, slot: float, top: int, day: datetime.date, units: int, css: str
) -> Bar:
    """The bar for one day: centred in its slot, 70% of its width, scaled to the axis top."""
    height = round(chart.plot_height * units / top, 1)
    return Bar(
        x=round(x + slot * 0.15, 1),
        y=round(chart.plot_bottom - height, 1),
        width=round(slot * 0.7, 1),
        height=height,
        day=day,
        units=units,
        css=css,
    )


def daily_chart(
    *, days: list[tuple[datetime.date, int]], period: UsagePeriod, today: datetime.date | None
) -> DailyChart:
    chart = DailyChart()
    plot_w = chart.plot_right - chart.left
    plot_h = chart.plot_bottom - chart.top
    chart.budget = period.included / period.days if period.days else 0
    chart.peak = max((units for _, units in days), default=0)
    chart.total = sum(units for _, units in days)
    top = nice_ceiling(max(chart.peak, chart.budget * 1.15))

    def y_of(value: float) -> float:
        return round(chart.plot_bottom - plot_h * value / top, 1)

    chart.y_ticks = [(y_of(top * i / 4), round(top * i / 4)) for i in range(5)]
    if chart.budget:
        chart.budget_y = y_of(chart.budget)
    slot = plot_w / max(len(days), 1)
    for i, (day, units) in enumerate(days):
        x = chart.left + slot * i
        css = "bar"
        if today is not None and day == today:
            css = "bar bar-today"
        elif today is not None and day > today:
            css = "bar bar-future"
            if chart.future_x is None:
                chart.future_x = round(x, 1)
        if chart.budget and units > chart.budget:
            css += " bar-over"
        chart.bars.append(bar(chart, x=x, slot=slot, top=top, day=day, units=units, css=css))
        if day.day == 1 or day.day % 5 == 0:
            chart.x_labels.append((round(x + slot / 2, 1), str(day.day)))
    return chart


@dataclass
class Gauge:
    """A horizontal bar 1000 units wide: included units, then credits after them."""

    used_included: float
    included: float
    used_credits: float
    credits: float
    tick_80: float | None
    has_credits: bool


def gauge(period: UsagePeriod) -> Gauge:
    capacity = period.capacity
    if capacity == 0:
        return Gauge(0, 1000, 0, 0, None, False)
    scale = 1000 / max(capacity, period.used)
    included_w = period.included * scale
    return Gauge(
        used_included=round(period.included_used * scale, 1),
        included=round(included_w, 1),
        used_credits=round(period.credits_used * scale, 1),
        credits=round(period.credits * scale, 1),
        tick_80=round(included_w * 0.8, 1) if period.included else None,
        has_credits=period.credits > 0,
    )
