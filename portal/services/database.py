"""Database upkeep that the query planner depends on (see docs/architecture.md, "Statistics")."""

from django.db import connections


def database_statistics_refresh(*, using: str = "default") -> str:
    """Refresh the planner's statistics, so that it keeps choosing the indexes the pages were
    built for as tables grow (without them SQLite may start a join from the wrong table).

    SQLite: a full ``ANALYZE`` (about a second per million texts; a sampled one, with
    ``analysis_limit``, guesses rows-per-value so badly on a table that holds one big project
    that the planner then picks the wrong index). PostgreSQL: nothing to do, its autovacuum
    daemon re-analyses tables as they change. Returns what was done, for the task's result."""
    connection = connections[using]
    if connection.vendor != "sqlite":
        return f"{connection.vendor}: statistics are kept by autovacuum"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA analysis_limit=0")
        cursor.execute("ANALYZE")
    return "sqlite: analysed"
