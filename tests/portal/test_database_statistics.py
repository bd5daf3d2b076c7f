"""The planner's statistics are kept fresh by an hourly task (SQLite: ANALYZE; PostgreSQL:
autovacuum), registered by migrate."""

import pytest
from django.db import connection
from django_q.models import Schedule

from portal.tasks import refresh_statistics

pytestmark = pytest.mark.django_db


def test_migrate_registers_the_hourly_statistics_task():
    schedule = Schedule.objects.get(name="portal-database-statistics")
    assert schedule.func == "portal.tasks.refresh_statistics"
    assert schedule.schedule_type == Schedule.HOURLY and schedule.repeats == -1


def test_the_task_analyses_sqlite_and_leaves_postgresql_to_autovacuum():
    from django.utils import timezone

    from messaging.models import Message
    from tests.factories import ParticipantFactory

    person = ParticipantFactory()
    for n in range(3):
        Message.objects.create(
            project=person.project,
            participant=person,
            occurrence=str(n),
            dedup_key=f"stats-{n}",
            due_at=timezone.now(),
            not_before=timezone.now(),
        )
    result = refresh_statistics()
    if connection.vendor != "sqlite":
        assert "autovacuum" in result
        return
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM sqlite_stat1")
        refresh_statistics()
        cursor.execute("SELECT idx FROM sqlite_stat1 WHERE tbl = 'messaging_message'")
        indexes = {row[0] for row in cursor.fetchall()}
    assert {"message_project_due", "message_project_status", "message_rule_due"} <= indexes
