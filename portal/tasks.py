"""django-q2 tasks of the portal itself: thin, call services."""

from portal.services.database import database_statistics_refresh


def refresh_statistics() -> str:
    """Hourly: keep the query planner's statistics fresh as tables grow."""
    return database_statistics_refresh()
