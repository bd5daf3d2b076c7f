"""The forward calendar (docs/sending.md, "The forward calendar"): it predicts exactly what the
dispatcher then queues, applies the sending hours and the stop conditions, sets the cost against
what the plan has left, and costs the same number of queries whatever the number of
participants."""

import datetime

import pytest
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.forecast import forward_calendar
from messaging.models import Message, MessageRule
from messaging.services import outbox
from tests.factories import (
    FieldMappingFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    UsagePeriodFactory,
)

UTC = datetime.UTC
T0 = datetime.datetime(2026, 10, 25, 13, 7, tzinfo=UTC)  # a week before the US fall-back
ZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", ""]

rule_strategy = st.fixed_dictionaries(
    {
        "trigger": st.sampled_from(["once", "recurring", "relative", "relative_h", "invitation"]),
        "hour": st.integers(0, 23),
        "minute": st.sampled_from([0, 15, 30, 45]),
        "day": st.integers(-3, 16),
        "days": st.lists(st.integers(0, 6), max_size=7, unique=True),
        "times": st.one_of(st.none(), st.integers(1, 6)),
        "offset": st.integers(-40, 40),
        "every": st.integers(1, 5),
        "count": st.integers(1, 5),
        "max_sends": st.one_of(st.none(), st.integers(1, 3)),
    }
)
people_strategy = st.lists(
    st.tuples(st.sampled_from(ZONES), st.integers(-20, 20), st.integers(0, 23)),
    min_size=1,
    max_size=4,
)


def _rule(project, actor, spec, invitation):
    day = (T0 + datetime.timedelta(days=spec["day"])).date()
    fields = dict(
        project=project,
        created_by=actor,
        status=MessageRule.Status.ACTIVE,
        send_time=datetime.time(spec["hour"], spec["minute"]),
        materialized_through=T0,
        grace=datetime.timedelta(days=60),  # the dispatcher runs once, at the end
        max_sends=spec["max_sends"],
    )
    trigger = spec["trigger"]
    if trigger == "once":
        return MessageRuleFactory(schedule="once", once_date=day, **fields)
    if trigger == "recurring":
        return MessageRuleFactory(
            schedule="recurring",
            start_date=day,
            recur_days=spec["days"],
            until_date=day + datetime.timedelta(days=10) if spec["times"] is None else None,
            max_occurrences=spec["times"],
            **fields,
        )
    if trigger == "relative":
        return MessageRuleFactory(
            schedule="relative", date_field="visit", offset_days=spec["offset"] // 4, **fields
        )
    if trigger == "relative_h":
        return MessageRuleFactory(
            schedule="manual",
            trigger="relative",
            date_field="visit",
            offset=spec["offset"] * 7,
            offset_unit="hours",
            **fields,
        )
    return MessageRuleFactory(
        schedule="manual",
        trigger="invitation",
        anchor_rule=invitation,
        repeat_every_days=spec["every"],
        repeat_count=spec["count"],
        **fields,
    )


@pytest.mark.django_db
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rules=st.lists(rule_strategy, min_size=1, max_size=3), people=people_strategy)
def test_the_calendars_texts_are_exactly_what_the_dispatcher_then_queues(researcher, rules, people):
    with transaction.atomic():
        project = ProjectFactory(owner=researcher, time_zone="America/New_York")
        FieldMappingFactory(project=project, date_fields=["visit"])
        invitation = MessageRuleFactory(
            project=project, kind="invitation", schedule="manual", created_by=researcher
        )
        for i, (tz, day, hour) in enumerate(people):
            visit = (T0 + datetime.timedelta(days=day)).strftime("%Y-%m-%d")
            p = ParticipantFactory(
                project=project,
                record_id=str(i + 1),
                time_zone=tz,
                dates={"visit": f"{visit} {hour:02d}:30" if i % 2 else visit},
            )
            if i % 2 == 0:  # half of them were invited, some time before T0
                sent = T0 - datetime.timedelta(hours=3 * day % 50 + 1)
                Message.objects.create(
                    project=project,
                    participant=p,
                    rule=invitation,
                    kind="invitation",
                    occurrence="x",
                    dedup_key=f"i{p.pk}",
                    due_at=sent,
                    not_before=sent,
                    status="delivered",
                    sent_at=sent,
                )
        for spec in rules:
            _rule(project, researcher, spec, invitation)
        cal = forward_calendar(project=project, now=T0, check_redcap=False)
        outbox.dispatch(now=cal.end)
        queued = sorted(
            (m.participant_id, m.rule_id, m.due_at)
            for m in Message.objects.filter(project=project, status="queued")
        )
        predicted = sorted((e.participant_id, e.rule_id, e.due_at) for e in cal.entries)
        assert predicted == queued
        transaction.set_rollback(True)


@pytest.fixture
def project(researcher):
    project = ProjectFactory(
        owner=researcher,
        time_zone="America/New_York",
        send_window_start=datetime.time(9),
        send_window_end=datetime.time(17),
        send_days=[0, 1, 2, 3, 4],
    )
    FieldMappingFactory(project=project, date_fields=["visit"])
    UsagePeriodFactory(account=project.account)
    return project


def _people(project, n, start=0):
    for i in range(start, start + n):
        ParticipantFactory(project=project, record_id=str(i + 1), time_zone="America/Chicago")


def test_sending_hours_move_a_text_and_a_stop_condition_takes_it_off(project, researcher):
    _people(project, 1)
    rule = MessageRuleFactory(
        project=project,
        created_by=researcher,
        schedule="recurring",
        start_date=datetime.date(2026, 10, 24),  # Saturday
        until_date=datetime.date(2026, 10, 30),
        send_time=datetime.time(7, 0),  # before the sending hours open (9:00 Chicago)
        materialized_through=T0,
        max_sends=3,
    )
    cal = forward_calendar(project=project, rule=rule, now=T0, check_redcap=False)
    goes = [(e.goes_at.astimezone(datetime.UTC).strftime("%a %H:%M"), e.skip) for e in cal.entries]
    # Sat/Sun texts wait for Monday 9:00 Chicago (14:00 UTC), weekdays for 9:00.
    assert goes[0] == ("Mon 14:00", "")
    assert [s for _, s in goes].count("") == 3
    assert goes[-1][1] == "already texted 3 times"
    assert cal.texts == 3 and cal.skipped == len(goes) - 3
    assert cal.units == 3 and cal.remaining is not None


def test_the_calendars_queries_do_not_grow_with_the_participants(
    project, researcher, django_assert_max_num_queries
):
    MessageRuleFactory(
        project=project,
        created_by=researcher,
        schedule="recurring",
        start_date=datetime.date(2026, 10, 26),
        until_date=datetime.date(2026, 11, 30),
        materialized_through=T0,
        max_sends=5,
    )
    MessageRuleFactory(
        project=project,
        created_by=researcher,
        schedule="relative",
        date_field="visit",
        offset_days=1,
        materialized_through=T0,
    )
    _people(project, 3)
    with django_assert_max_num_queries(12) as few:
        small = forward_calendar(project=project, now=T0, check_redcap=False)
    _people(project, 40, start=3)
    with django_assert_max_num_queries(len(few.captured_queries)):
        big = forward_calendar(project=project, now=T0, check_redcap=False)
    assert big.texts > small.texts


def test_the_calendar_page_shows_the_days_the_chart_and_the_quota(
    project, researcher, as_user, django_assert_max_num_queries
):
    rule = MessageRuleFactory(
        project=project,
        created_by=researcher,
        name="Daily check-in",
        schedule="recurring",
        start_date=datetime.date(2026, 1, 1),
        until_date=datetime.date(2027, 12, 31),
    )
    _people(project, 5)
    client = as_user(researcher)
    url = reverse("message-calendar", args=[project.pk])
    with django_assert_max_num_queries(40) as few:
        client.get(url)
    _people(project, 30, start=5)
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = client.get(url).content.decode()
    assert "Next 14 days" in page and "<svg" in page and "Daily check-in" in page
    assert "left this period" in page
    page = client.get(reverse("rule-calendar", args=[project.pk, rule.pk])).content.decode()
    assert "Daily check-in" in page


def test_the_calendar_takes_off_participants_who_completed_the_survey(mapped_project, researcher):
    from projects.services import sync

    sync.sync_run_start(project=mapped_project, actor=researcher)
    rule = MessageRuleFactory(
        project=mapped_project,
        created_by=researcher,
        schedule="recurring",
        instrument="weekly_checkin",
        stop_when_complete=True,
        start_date=datetime.date(2026, 10, 26),
        until_date=datetime.date(2026, 10, 26),
        materialized_through=T0,
    )
    cal = forward_calendar(project=mapped_project, rule=rule, now=T0)
    skipped = {e.record_id for e in cal.entries if e.skip == "completed the survey"}
    assert skipped == {"1", "20", "21"}  # they completed the weekly check-in (the seed)
    assert cal.texts == len(cal.entries) - 3 > 0
