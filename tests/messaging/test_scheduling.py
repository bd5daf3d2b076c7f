import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.scheduling import (
    ScheduleSpec,
    SendWindow,
    first_occurrence,
    local_to_utc,
    occurrences_between,
    zone,
)

UTC = datetime.UTC
NY = zone("America/New_York")
LA = zone("America/Los_Angeles")
TEN = datetime.time(10, 0)


def utc(*args):
    return datetime.datetime(*args, tzinfo=UTC)


def test_ten_am_local_stays_ten_am_across_the_spring_dst_change():
    # DST began in the US on Sunday 2026-03-08.
    before = local_to_utc(datetime.date(2026, 3, 7), TEN, NY)
    after = local_to_utc(datetime.date(2026, 3, 9), TEN, NY)
    assert before == utc(2026, 3, 7, 15, 0)  # EST, UTC-5
    assert after == utc(2026, 3, 9, 14, 0)  # EDT, UTC-4


def test_ten_am_local_stays_ten_am_across_the_fall_dst_change():
    # DST ended on Sunday 2026-11-01.
    assert local_to_utc(datetime.date(2026, 10, 31), TEN, NY) == utc(2026, 10, 31, 14, 0)
    assert local_to_utc(datetime.date(2026, 11, 2), TEN, NY) == utc(2026, 11, 2, 15, 0)


def test_a_time_in_the_spring_gap_moves_forward_and_a_repeated_time_takes_the_first():
    gap = local_to_utc(datetime.date(2026, 3, 8), datetime.time(2, 30), NY)
    assert gap.astimezone(NY).hour == 3  # 02:30 does not exist; it becomes 03:30 EDT
    repeated = local_to_utc(datetime.date(2026, 11, 1), datetime.time(1, 30), NY)
    assert repeated == utc(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)


def test_recurring_weekly_occurrences_in_a_window_with_dst_inside():
    spec = ScheduleSpec(
        kind="recurring",
        send_time=TEN,
        recur_days=(0,),  # Mondays
        start_date=datetime.date(2026, 3, 1),
        until_date=datetime.date(2026, 3, 31),
    )
    occ = occurrences_between(spec, tz=NY, start=utc(2026, 3, 1), end=utc(2026, 4, 1))
    assert [o.key for o in occ] == [
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
        "2026-03-30",
    ]
    assert occ[0].due_at.hour == 15 and occ[1].due_at.hour == 14


def test_recurring_stops_after_max_occurrences():
    spec = ScheduleSpec(
        kind="recurring", send_time=TEN, start_date=datetime.date(2026, 5, 1), max_occurrences=3
    )
    occ = occurrences_between(spec, tz=NY, start=utc(2026, 4, 1), end=utc(2026, 6, 1))
    assert [o.key for o in occ] == ["2026-05-01", "2026-05-02", "2026-05-03"]


def test_relative_occurrence_uses_the_participants_date_and_time_zone():
    spec = ScheduleSpec(kind="relative", send_time=TEN, date_field="enrollment_date", offset_days=7)
    dates = {"enrollment_date": "2026-06-01"}
    ny = occurrences_between(spec, tz=NY, start=utc(2026, 6, 1), end=utc(2026, 6, 30), dates=dates)
    la = occurrences_between(spec, tz=LA, start=utc(2026, 6, 1), end=utc(2026, 6, 30), dates=dates)
    assert ny[0].due_at == utc(2026, 6, 8, 14, 0)
    assert la[0].due_at == utc(2026, 6, 8, 17, 0)
    assert ny[0].key == "enrollment_date+7:2026-06-08"
    assert (
        occurrences_between(spec, tz=NY, start=utc(2026, 6, 1), end=utc(2026, 6, 30), dates={})
        == []
    )


def test_windows_do_not_overlap_so_no_occurrence_is_produced_twice():
    spec = ScheduleSpec(
        kind="recurring",
        send_time=TEN,
        start_date=datetime.date(2026, 1, 1),
        until_date=datetime.date(2026, 12, 31),
    )
    edges = [utc(2026, 1, 1) + datetime.timedelta(hours=7 * i) for i in range(0, 1300)]
    keys = []
    for start, end in zip(edges, edges[1:], strict=False):
        keys += [o.key for o in occurrences_between(spec, tz=NY, start=start, end=end)]
    assert len(keys) == len(set(keys))
    assert len(keys) == 365


@given(
    hour=st.integers(min_value=0, max_value=23),
    minute=st.integers(min_value=0, max_value=59),
    day=st.dates(min_value=datetime.date(2025, 1, 1), max_value=datetime.date(2030, 12, 31)),
    tzname=st.sampled_from(
        [
            "America/New_York",
            "America/Chicago",
            "America/Phoenix",
            "Pacific/Honolulu",
            "Europe/London",
        ]
    ),
)
def test_local_to_utc_round_trips_except_in_the_spring_gap(hour, minute, day, tzname):
    tz = zone(tzname)
    at = datetime.time(hour, minute)
    local = local_to_utc(day, at, tz).astimezone(tz)
    assert local.date() == day
    assert local.time() >= at  # equal, or moved forward out of a DST gap


def test_quiet_hours_window_and_next_opening():
    window = SendWindow(datetime.time(9), datetime.time(20), frozenset(range(6)))  # Mon-Sat
    # Saturday 2026-12-05 21:30 in New York: closed; Sunday is off; opens Monday 09:00 local.
    late_saturday = utc(2026, 12, 6, 2, 30)
    assert not window.allows(late_saturday, NY)
    assert window.next_opening(late_saturday, NY) == utc(2026, 12, 7, 14, 0)
    # 03:00 on a Tuesday: opens at 09:00 the same day.
    night = utc(2026, 12, 8, 8, 0)
    assert window.next_opening(night, NY) == utc(2026, 12, 8, 14, 0)
    # Open now: released at once.
    noon = utc(2026, 12, 8, 17, 0)
    assert window.allows(noon, NY) and window.next_opening(noon, NY) == noon
    # The same instant is night in New York and evening in Los Angeles.
    assert window.allows(utc(2026, 12, 9, 3, 0), LA) and not window.allows(
        utc(2026, 12, 9, 3, 0), NY
    )


def test_first_occurrence_of_a_once_schedule():
    spec = ScheduleSpec(kind="once", send_time=TEN, once_date=datetime.date(2026, 7, 4))
    assert first_occurrence(spec, tz=NY) == utc(2026, 7, 4, 14, 0)


@pytest.mark.parametrize("kind", ["manual", "recurring"])
def test_schedules_without_dates_have_no_occurrences(kind):
    spec = ScheduleSpec(kind=kind, send_time=TEN)
    assert occurrences_between(spec, tz=NY, start=utc(2026, 1, 1), end=utc(2027, 1, 1)) == []
