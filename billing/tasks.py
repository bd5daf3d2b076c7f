"""django-q2 tasks for billing. Thin: they call the services."""

from billing import services


def usage_periods_start() -> int:
    """Start the new month's usage period of every account whose month has turned in its time
    zone, so `period_started` releases held messages soon after midnight even when nothing is
    being sent. Scheduled every 15 minutes (billing.apps declares the schedule)."""
    return services.usage_periods_start_due()
