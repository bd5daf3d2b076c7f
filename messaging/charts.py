"""The overview's "texts sent per day" chart: geometry only, drawn by
templates/messaging/_texting_summary.html with shapes and CSS classes (no JavaScript, no style
attributes), as billing's usage chart is."""

import datetime

from billing.charts import DailyChart, bar, nice_ceiling


def sent_per_day_chart(
    *, days: list[tuple[datetime.date, int]], today: datetime.date | None = None
) -> DailyChart:
    """A bar a day; every other day labelled, back from today's (the first with its month, as
    the first of a month); today's bar in the brand colour and labelled "today"."""
    chart = DailyChart(width=640, height=190, left=36, right=8, top=12, bottom=28)
    plot_w = chart.plot_right - chart.left
    chart.peak = max((n for _, n in days), default=0)
    chart.total = sum(n for _, n in days)
    top = nice_ceiling(chart.peak)
    chart.y_ticks = [
        (round(chart.plot_bottom - chart.plot_height * i / 4, 1), round(top * i / 4))
        for i in range(5)
    ]
    slot = plot_w / max(len(days), 1)
    last = len(days) - 1
    for i, (day, n) in enumerate(days):
        x = chart.left + slot * i
        css = "bar bar-today" if day == today else "bar"
        chart.bars.append(bar(chart, x=x, slot=slot, top=top, day=day, units=n, css=css))
        if (last - i) % 2 == 0:  # always label today, then every other day back from it
            if day == today:
                label = "today"
            elif i <= 1 or day.day <= 2:
                label = day.strftime("%b %-d")
            else:
                label = str(day.day)
            chart.x_labels.append((round(x + slot / 2, 1), label))
    return chart


def forecast_chart(*, days) -> DailyChart:
    """The forward calendar's chart: a bar a day of the texts that will go (`forecast.Day`),
    every other day labelled, the first with its month."""
    chart = DailyChart(width=640, height=170, left=36, right=8, top=12, bottom=28)
    plot_w = chart.plot_right - chart.left
    chart.peak = max((d.texts for d in days), default=0)
    chart.total = sum(d.texts for d in days)
    top = nice_ceiling(chart.peak)
    chart.y_ticks = [
        (round(chart.plot_bottom - chart.plot_height * i / 4, 1), round(top * i / 4))
        for i in range(5)
    ]
    slot = plot_w / max(len(days), 1)
    for i, d in enumerate(days):
        x = chart.left + slot * i
        chart.bars.append(bar(chart, x=x, slot=slot, top=top, day=d.day, units=d.texts, css="bar"))
        if i % 2 == 0:
            label = d.day.strftime("%b %-d") if i == 0 or d.day.day <= 2 else str(d.day.day)
            chart.x_labels.append((round(x + slot / 2, 1), label))
    return chart
