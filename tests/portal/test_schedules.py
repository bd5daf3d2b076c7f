"""Every app's periodic tasks are registered the same way after migrate (portal/schedules.py)."""

import pytest
from django.apps import apps
from django_q.models import Schedule

from portal.schedules import schedules_declared, schedules_ensure

pytestmark = pytest.mark.django_db

EXPECTED = {
    "messaging.tasks.dispatch": (Schedule.MINUTES, 1),
    "messaging.tasks.retention_purge": (Schedule.DAILY, None),
    "messaging.tasks.mosio_poll": (Schedule.MINUTES, 1),
    "messaging.tasks.reply_digest": (Schedule.DAILY, None),
    "messaging.tasks.conversations_tick": (Schedule.MINUTES, 1),
    "projects.tasks.participant_sync_all": (Schedule.MINUTES, 15),
    "billing.tasks.usage_periods_start": (Schedule.MINUTES, 15),
    "portal.tasks.refresh_statistics": (Schedule.HOURLY, None),
}


def test_migrate_registers_every_apps_schedule_once_with_its_interval():
    assert {spec["func"] for spec in schedules_declared()} == set(EXPECTED)
    for func, (kind, minutes) in EXPECTED.items():
        (schedule,) = Schedule.objects.filter(func=func)
        assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == (kind, minutes, -1)


def test_a_missing_schedule_comes_back_and_an_edited_one_is_kept():
    Schedule.objects.filter(func="messaging.tasks.dispatch").delete()
    Schedule.objects.filter(func="projects.tasks.participant_sync_all").update(minutes=30)
    assert schedules_ensure(sender=None, apps=apps) == 1
    assert Schedule.objects.get(func="messaging.tasks.dispatch").minutes == 1
    assert Schedule.objects.get(func="projects.tasks.participant_sync_all").minutes == 30
    assert schedules_ensure(sender=None, apps=apps) == 0
