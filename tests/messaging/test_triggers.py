"""Triggers (docs/sending.md, "Triggers"): their timing (DST included), REDCap logic that
becomes true (edge-triggered), follow-ups after a survey's completion, reminders anchored to the
invitation, the bad input each refuses, and existing rules keeping what they send."""

import datetime
import importlib
import zoneinfo

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils import timezone

from messaging.models import Message, MessageRule, TriggerState
from messaging.scheduling import ScheduleSpec, occurrences_between
from messaging.services import outbox, rules, triggers
from projects.models import Participant
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.services import sync
from tests.messaging.test_rules import data

UTC = datetime.UTC
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
Trigger, Unit, Repeat = MessageRule.Trigger, MessageRule.OffsetUnit, MessageRule.LogicRepeat
DEMO = SANDBOX_PROJECTS[101]


# --- Timing (pure) -----------------------------------------------------------------------------
def spec(**kw) -> ScheduleSpec:
    return ScheduleSpec(**{"kind": "relative", "send_time": datetime.time(10), **kw})


def test_relative_in_hours_is_an_exact_duration_across_the_spring_change():
    # 2026-03-08 is the US spring-forward day: 20:00 local the day before + 12 hours of real
    # time is 09:00 local (CDT), not 08:00.
    s = spec(date_field="visit", offset=12, offset_unit="hours")
    occ = occurrences_between(
        s,
        tz=CHICAGO,
        start=datetime.datetime(2026, 3, 1, tzinfo=UTC),
        end=datetime.datetime(2026, 3, 10, tzinfo=UTC),
        dates={"visit": "2026-03-07 20:00"},
    )
    assert [o.due_at.astimezone(CHICAGO).strftime("%m-%d %H:%M") for o in occ] == ["03-08 09:00"]
    assert occ[0].due_at == datetime.datetime(2026, 3, 8, 14, 0, tzinfo=UTC)


def test_relative_minutes_before_a_date_time():
    s = spec(date_field="visit", offset=-90, offset_unit="minutes")
    occ = occurrences_between(
        s,
        tz=NEW_YORK,
        start=datetime.datetime(2026, 6, 1, tzinfo=UTC),
        end=datetime.datetime(2026, 6, 30, tzinfo=UTC),
        dates={"visit": "2026-06-15 09:00"},
    )
    assert occ[0].due_at.astimezone(NEW_YORK).strftime("%H:%M") == "07:30"


def test_relative_in_days_keeps_the_time_of_day_and_its_old_key():
    s = spec(date_field="enrollment_date", offset_days=2, offset=2, send_time=datetime.time(9))
    occ = occurrences_between(
        s,
        tz=CHICAGO,
        start=datetime.datetime(2026, 3, 1, tzinfo=UTC),
        end=datetime.datetime(2026, 3, 10, tzinfo=UTC),
        dates={"enrollment_date": "2026-03-06"},
    )
    assert occ[0].due_at.astimezone(CHICAGO).strftime("%m-%d %H:%M") == "03-08 09:00"
    assert occ[0].key == "enrollment_date+2:2026-03-08"  # as before triggers: no twin


def test_reminders_follow_the_invitation_at_its_wall_clock_time_across_the_fall_change():
    # Invitation at 18:30 Chicago on Oct 30 2026 (CDT); every 2 days, 3 times: Nov 1 is the
    # fall-back day, and the reminders stay at 18:30 local.
    anchor = datetime.datetime(2026, 10, 30, 18, 30, tzinfo=CHICAGO).astimezone(UTC)
    s = ScheduleSpec(
        kind="invitation", send_time=datetime.time(10), repeat_every_days=2, repeat_count=3
    )
    occ = occurrences_between(
        s,
        tz=CHICAGO,
        start=anchor,
        end=anchor + datetime.timedelta(days=30),
        anchor=anchor,
    )
    local = [o.due_at.astimezone(CHICAGO).strftime("%m-%d %H:%M") for o in occ]
    assert local == ["11-01 18:30", "11-03 18:30", "11-05 18:30"]
    assert occ[0].due_at - anchor == datetime.timedelta(days=2, hours=1)  # CDT to CST
    assert len({o.key for o in occ}) == 3


def test_a_follow_up_n_days_after_completion_goes_at_the_local_time_of_day_across_dst():
    rule = MessageRule(offset=2, offset_unit=Unit.DAYS, send_time=datetime.time(9, 0))
    done = datetime.datetime(2026, 3, 7, 22, 15, tzinfo=CHICAGO).astimezone(UTC)
    due = triggers.completion_due(rule, done, CHICAGO)
    assert due.astimezone(CHICAGO).strftime("%m-%d %H:%M %Z") == "03-09 09:00 CDT"
    rule.offset, rule.offset_unit = 3, Unit.HOURS
    assert triggers.completion_due(rule, done, CHICAGO) - done == datetime.timedelta(hours=3)


def test_redcap_timestamps_are_read_in_the_projects_zone_and_not_completed_is_none():
    got = triggers.parse_redcap_timestamp("2026-07-01 14:30:05", NEW_YORK)
    assert got == datetime.datetime(2026, 7, 1, 18, 30, 5, tzinfo=UTC)
    assert triggers.parse_redcap_timestamp("[not completed]", NEW_YORK) is None
    assert triggers.parse_redcap_timestamp("", NEW_YORK) is None


# --- Bad input --------------------------------------------------------------------------------
def errors_of(project, actor, **overrides):
    with pytest.raises(ValidationError) as exc:
        rules.rule_save(project=project, actor=actor, data=data(**overrides))
    assert not MessageRule.objects.exists()
    return exc.value.message_dict


FOLLOW_UP = dict(
    kind="follow_up",
    trigger=Trigger.COMPLETION,
    instrument="baseline_survey",
    body="Thanks for the baseline, [first_name]! Check-in 2 is next week.",
    offset=3,
    offset_unit=Unit.DAYS,
    stop_when_complete=False,
)


@pytest.mark.parametrize("offset,words", [(0, "the moment of completion"), (-2, "before it")])
def test_a_follow_up_of_zero_or_negative_days_is_refused(mapped_project, researcher, offset, words):
    errors = errors_of(mapped_project, researcher, **{**FOLLOW_UP, "offset": offset})
    assert words in errors["offset"][0]
    assert "at least 1 day" in errors["offset"][0]


def test_a_follow_up_naming_a_non_survey_instrument_is_refused(mapped_project, researcher):
    errors = errors_of(mapped_project, researcher, **{**FOLLOW_UP, "instrument": "contact"})
    assert "contact is not a survey in REDCap" in errors["instrument"][0]
    assert "follow-up needs a survey" in errors["instrument"][0]


def test_logic_redcap_would_reject_is_refused_with_what_is_wrong(mapped_project, researcher):
    errors = errors_of(
        mapped_project,
        researcher,
        kind="alert",
        trigger=Trigger.LOGIC,
        trigger_logic="[wk_servings] >> 3",
        body="Please call us, [first_name].",
        instrument="",
        stop_when_complete=False,
    )
    assert errors["trigger_logic"][0].startswith("REDCap would not accept this logic:")


def test_logic_naming_a_field_redcap_lacks_is_refused_by_redcap(mapped_project, researcher):
    errors = errors_of(
        mapped_project,
        researcher,
        kind="alert",
        trigger=Trigger.LOGIC,
        trigger_logic="[no_such_field] = '1'",
        body="Please call us, [first_name].",
        instrument="",
        stop_when_complete=False,
    )
    assert errors["trigger_logic"][0].startswith("REDCap rejected this logic:")


def test_reminders_every_zero_days_or_zero_times_are_refused(mapped_project, researcher):
    invitation = rules.rule_save(
        project=mapped_project,
        actor=researcher,
        data=data(kind="invitation", name="Invite", schedule="manual"),
    )
    with pytest.raises(ValidationError) as exc:
        rules.rule_save(
            project=mapped_project,
            actor=researcher,
            data=data(
                name="Nudge",
                trigger=Trigger.INVITATION,
                anchor_rule=invitation,
                repeat_every_days=0,
                repeat_count=0,
            ),
        )
    errors = exc.value.message_dict
    assert "every 1 day or more" in errors["repeat_every_days"][0]
    assert "at least 1 reminder" in errors["repeat_count"][0]
    assert list(MessageRule.objects.all()) == [invitation]


def test_an_hours_offset_of_zero_from_a_date_time_is_refused(mapped_project, researcher):
    errors = errors_of(
        mapped_project,
        researcher,
        trigger=Trigger.RELATIVE,
        date_field="enrollment_date",
        offset=0,
        offset_unit=Unit.HOURS,
    )
    assert "0 hours after the date-time" in errors["offset"][0]


# --- Existing rules --------------------------------------------------------------------------
def test_the_migration_maps_each_schedule_to_the_same_trigger(mapped_project, researcher):
    made = {}
    for schedule in ("once", "recurring", "relative", "manual"):
        made[schedule] = MessageRule.objects.create(
            project=mapped_project,
            kind="reminder",
            name=schedule,
            body="Hi",
            created_by=researcher,
            schedule=schedule,
            offset_days=4,
        )
    # As the rows stood before the migration: no trigger, no offset.
    MessageRule.objects.update(trigger="", offset=0)
    migration = importlib.import_module("messaging.migrations.0010_triggers")
    migration.rules_to_triggers(apps, None)
    for schedule, rule in made.items():
        rule.refresh_from_db()
        assert (rule.trigger, rule.offset, rule.offset_unit) == (schedule, 4, "days")
        assert ScheduleSpec.from_rule(rule).kind == schedule
        assert ScheduleSpec.from_rule(rule).offset_days == 4


# --- REDCap logic becomes true ----------------------------------------------------------------
@pytest.fixture
def synced(mapped_project, researcher):
    sync.sync_run_start(project=mapped_project, actor=researcher)  # q2 sync mode: runs now
    return mapped_project


def logic_rule(project, actor, repeat=Repeat.ONCE, logic="[wk_servings] >= '15'"):
    rule = rules.rule_save(
        project=project,
        actor=actor,
        data=data(
            kind="alert",
            name="Too many servings",
            trigger=Trigger.LOGIC,
            trigger_logic=logic,
            logic_repeat=repeat,
            body="Hi [first_name], we saw your answer; we will call you.",
            instrument="",
            stop_when_complete=False,
        ),
    )
    return rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=actor)


def set_value(record: str, **values) -> None:
    store.import_records(DEMO, [{"record_id": record, **values}])


def evaluate(project, record="1"):
    p = Participant.objects.get(project=project, record_id=record)
    return triggers.triggers_evaluate(project_id=project.pk, participant_ids=[p.pk])


def test_logic_fires_once_when_it_becomes_true_and_not_again_while_true(synced, researcher):
    rule = logic_rule(synced, researcher)
    assert evaluate(synced).fired == 0  # false: nothing
    set_value("1", wk_servings="16")
    assert evaluate(synced).fired == 1
    assert evaluate(synced).fired == 0  # still true: no second text
    set_value("1", wk_servings="2")
    evaluate(synced)
    set_value("1", wk_servings="18")
    assert evaluate(synced).fired == 0  # "once per record": true again sends nothing more
    texts = Message.objects.filter(rule=rule)
    assert [(m.participant.record_id, m.occurrence, m.status) for m in texts] == [
        ("1", "logic", "queued")
    ]


def test_every_time_mode_fires_again_after_it_was_false(synced, researcher):
    rule = logic_rule(synced, researcher, repeat=Repeat.EVERY)
    for value in ("16", "16", "3", "17", "19", "1", "20"):
        set_value("1", wk_servings=value)
        evaluate(synced)
    assert sorted(Message.objects.filter(rule=rule).values_list("occurrence", flat=True)) == [
        "logic#1",
        "logic#2",
        "logic#3",
    ]
    state = TriggerState.objects.get(rule=rule)
    assert (state.is_true, state.fired) == (True, 3)


def test_a_saved_record_evaluates_its_triggers_through_the_signal(synced, researcher):
    """What the Data Entry Trigger's read sends (projects.signals.record_saved) reaches the
    evaluation task (q2 sync mode: inline)."""
    from projects.signals import record_saved

    rule = logic_rule(synced, researcher)
    set_value("2", wk_servings="19")
    p = Participant.objects.get(project=synced, record_id="2")
    record_saved.send(
        sender=Participant,
        project_id=synced.pk,
        participant_id=p.pk,
        record_id="2",
        instrument="weekly_checkin",
        event="",
        repeat_instance=None,
        saves=(),
    )
    assert Message.objects.filter(rule=rule, participant=p).count() == 1


def test_a_sync_evaluates_every_record(synced, researcher):
    rule = logic_rule(synced, researcher)
    set_value("1", wk_servings="16")
    set_value("3", wk_servings="17")
    sync.sync_run_start(project=synced, actor=researcher)
    assert sorted(m.participant.record_id for m in Message.objects.filter(rule=rule)) == ["1", "3"]


# --- Follow-up after completion ---------------------------------------------------------------
def follow_up(project, actor, **kw):
    rule = rules.rule_save(
        project=project,
        actor=actor,
        data=data(name="Thanks", **{**FOLLOW_UP, "instrument": "weekly_checkin", **kw}),
    )
    return rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=actor)


def test_a_follow_up_is_queued_for_the_completion_time_plus_the_offset(synced, researcher):
    rule = follow_up(synced, researcher, offset=2, offset_unit=Unit.HOURS)
    evaluate(synced, "5")
    assert not Message.objects.filter(rule=rule).exists()  # not completed: nothing
    before = timezone.now().replace(microsecond=0)
    set_value("5", wk_goal_met="1", weekly_checkin_complete="2")
    evaluate(synced, "5")
    evaluate(synced, "5")  # a second evaluation (DET and sync): no twin
    (text,) = Message.objects.filter(rule=rule)
    assert text.participant.record_id == "5" and text.status == "queued"
    assert before + datetime.timedelta(hours=2) <= text.due_at
    assert text.due_at <= timezone.now() + datetime.timedelta(hours=2)


def test_a_completion_long_before_the_rule_heard_of_it_is_skipped_not_sent(
    synced, researcher, monkeypatch
):
    rule = follow_up(synced, researcher, offset=1, offset_unit=Unit.HOURS)
    set_value("5", wk_goal_met="1", weekly_checkin_complete="2")
    later = timezone.now() + datetime.timedelta(hours=5)
    p = Participant.objects.get(project=synced, record_id="5")
    report = triggers.triggers_evaluate(project_id=synced.pk, participant_ids=[p.pk], now=later)
    (text,) = Message.objects.filter(rule=rule)
    assert (report.fired, report.skipped, text.status) == (0, 1, "skipped")
    assert text.error.startswith("Missed: the survey was completed")


# --- Reminders anchored to the invitation ------------------------------------------------------
def test_reminders_follow_each_participants_invitation_and_stop_on_completion(synced, researcher):
    invitation = rules.rule_save(
        project=synced,
        actor=researcher,
        data=data(kind="invitation", name="Invite", schedule="manual"),
    )
    reminder = rules.rule_save(
        project=synced,
        actor=researcher,
        data=data(
            name="Nudge",
            trigger=Trigger.INVITATION,
            anchor_rule=invitation,
            repeat_every_days=2,
            repeat_count=3,
            instrument="",
            body="Reminder: [survey-link]",
        ),
    )
    assert (reminder.instrument, reminder.stop_when_complete) == ("weekly_checkin", True)
    rules.rule_set_status(rule=reminder, status=MessageRule.Status.ACTIVE, actor=researcher)
    # Two participants invited a day apart; the dispatcher runs on days 2, 3 and 4.
    p5 = Participant.objects.get(project=synced, record_id="5")
    p12 = Participant.objects.get(project=synced, record_id="12")
    t0 = timezone.now() - datetime.timedelta(minutes=1)
    for p, sent in ((p5, t0), (p12, t0 + datetime.timedelta(days=1))):
        Message.objects.create(
            project=synced,
            participant=p,
            rule=invitation,
            kind="invitation",
            occurrence="x",
            dedup_key=f"inv{p.pk}",
            due_at=sent,
            not_before=sent,
            status="delivered",
            sent_at=sent,
        )
    MessageRule.objects.filter(pk=reminder.pk).update(materialized_through=t0)
    for day in (2, 3, 4):
        outbox.dispatch(now=t0 + datetime.timedelta(days=day, minutes=1))
    queued = Message.objects.filter(rule=reminder).order_by("due_at")
    assert [(m.participant.record_id, m.due_at - t0, m.status) for m in queued] == [
        ("5", datetime.timedelta(days=2), "queued"),
        ("12", datetime.timedelta(days=3), "queued"),
        ("5", datetime.timedelta(days=4), "queued"),
    ]
    # Record 5 completes the survey: its waiting reminders are skipped when released.
    set_value("5", wk_goal_met="1", weekly_checkin_complete="2")
    from messaging.services.release import ReleaseData, prepare
    from tests.factories import ALWAYS_OPEN

    for name, value in ALWAYS_OPEN.items():
        setattr(synced, name, value)
    synced.save()
    text = queued.first()
    text = Message.objects.select_related("project", "participant", "rule").get(pk=text.pk)
    got = prepare(
        text,
        now=timezone.now(),
        redcap=ReleaseData(synced, synced.field_mapping, [text]),
        sent_counts={},
        suppressed=set(),
    )
    text.refresh_from_db()
    assert got is None and text.status == "skipped"
    assert "completed the survey" in text.error


# --- The form --------------------------------------------------------------------------------
def _post(client, project, **fields):
    from django.urls import reverse

    base = {
        "kind": "alert",
        "name": "Pain alert",
        "body": "Hi [first_name], we saw your answer and will call you today.",
        "recipients": "all",
        "send_time": "10:00",
        "offset_unit": "days",
    }
    return client.post(reverse("rule-create", args=[project.pk]), {**base, **fields})


def test_the_form_shows_each_triggers_options_under_its_choice(mapped_project, researcher, as_user):
    from django.urls import reverse

    page = as_user(researcher).get(reverse("rule-create", args=[mapped_project.pk]))
    html = page.content.decode()
    for trigger in ("logic", "invitation", "relative|completion"):
        assert f'data-show-when="trigger={trigger}"' in html
    assert 'name="trigger_logic"' in html and 'name="repeat_every_days"' in html


def test_the_form_saves_a_logic_trigger(mapped_project, researcher, as_user):
    response = _post(
        as_user(researcher),
        mapped_project,
        trigger="logic",
        trigger_logic="[wk_servings] >= '15'",
        logic_repeat="instance",
    )
    assert response.status_code == 302, response.context["form"].errors
    rule = MessageRule.objects.get()
    assert (rule.trigger, rule.schedule, rule.logic_repeat) == ("logic", "manual", "instance")
    assert rule.schedule_summary() == (
        "When [wk_servings] >= '15' becomes true (once per repeat instance)"
    )


def test_the_form_refuses_a_follow_up_without_a_positive_offset(
    mapped_project, researcher, as_user
):
    response = _post(
        as_user(researcher),
        mapped_project,
        kind="follow_up",
        trigger="completion",
        instrument="weekly_checkin",
        offset="0",
        offset_unit="hours",
    )
    assert response.status_code == 200
    assert "use at least 1 hour" in response.context["form"].errors["offset"][0]
    assert not MessageRule.objects.exists()


def test_records_already_true_when_the_rule_is_activated_are_not_texted(synced, researcher):
    set_value("1", wk_servings="16")  # true before the rule exists
    rule = logic_rule(synced, researcher, repeat=Repeat.EVERY)
    assert TriggerState.objects.get(rule=rule).is_true
    assert evaluate(synced, "1").fired == 0
    set_value("3", wk_servings="17")  # becomes true after activation
    assert evaluate(synced, "3").fired == 1
    set_value("1", wk_servings="1")
    evaluate(synced, "1")
    set_value("1", wk_servings="20")  # false, then true again: that is a change
    assert evaluate(synced, "1").fired == 1
    assert sorted(m.participant.record_id for m in Message.objects.filter(rule=rule)) == ["1", "3"]


def test_once_per_repeat_instance_fires_for_each_diary_day_that_turns_true(synced, researcher):
    rule = logic_rule(synced, researcher, repeat=Repeat.INSTANCE, logic="[dd_mood] = '1'")

    def diary(instance: int, mood: str) -> None:
        store.import_records(
            DEMO,
            [
                {
                    "record_id": "2",
                    "redcap_repeat_instrument": "daily_diary",
                    "redcap_repeat_instance": str(instance),
                    "dd_mood": mood,
                }
            ],
        )
        evaluate(synced, "2")

    diary(1, "1")  # day 1: very bad
    diary(2, "4")  # day 2: good
    diary(1, "1")  # day 1 saved again, still very bad: nothing new
    diary(2, "1")  # day 2 turns very bad
    diary(3, "3")
    occurrences = sorted(Message.objects.filter(rule=rule).values_list("occurrence", flat=True))
    assert occurrences == ["logic:daily_diary|1", "logic:daily_diary|2"]


def test_changing_the_logic_of_a_rule_once_active_does_not_text_those_already_true(
    synced, researcher
):
    rule = logic_rule(synced, researcher, repeat=Repeat.EVERY, logic="[wk_servings] >= '50'")
    set_value("1", wk_servings="16")
    assert evaluate(synced, "1").fired == 0  # not true for the old logic
    rules.rule_save(
        project=synced,
        actor=researcher,
        rule=MessageRule.objects.get(pk=rule.pk),
        data={"trigger_logic": "[wk_servings] >= '15'"},
    )
    assert TriggerState.objects.get(rule=rule).is_true  # noted in the same save
    assert evaluate(synced, "1").fired == 0  # already true: no text
    set_value("3", wk_servings="17")  # becomes true after the change
    assert evaluate(synced, "3").fired == 1


def test_editing_an_activated_rule_into_logic_becomes_true_notes_who_is_true_first(
    synced, researcher
):
    set_value("1", wk_servings="16")
    rule = rules.rule_save(
        project=synced,
        actor=researcher,
        data=data(),  # a weekly reminder
    )
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    rules.rule_set_status(rule=rule, status=MessageRule.Status.PAUSED, actor=researcher)
    rules.rule_save(
        project=synced,
        actor=researcher,
        rule=MessageRule.objects.get(pk=rule.pk),
        data={"trigger": Trigger.LOGIC, "trigger_logic": "[wk_servings] >= '15'"},
    )
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    assert evaluate(synced, "1").fired == 0
    assert not Message.objects.filter(rule=rule).exists()


def test_a_logic_change_is_refused_in_words_when_redcap_does_not_answer(
    synced, researcher, monkeypatch
):
    from projects.redcap import RedcapClient, RedcapError

    rule = logic_rule(synced, researcher, logic="[wk_servings] >= '50'")
    real = RedcapClient.records

    def records(self, *a, **kw):
        if kw.get("records"):  # the baseline's export (validation asks without records)
            raise RedcapError("timed out")
        return real(self, *a, **kw)

    monkeypatch.setattr(RedcapClient, "records", records)
    with pytest.raises(ValidationError, match="REDCap did not answer"):
        rules.rule_save(
            project=synced,
            actor=researcher,
            rule=MessageRule.objects.get(pk=rule.pk),
            data={"trigger_logic": "[wk_servings] >= '15'"},
        )
    rule.refresh_from_db()
    assert rule.trigger_logic == "[wk_servings] >= '50'"


def test_a_long_event_and_instrument_key_fits_the_state_and_the_occurrence(synced, researcher):
    """A longitudinal project's repeat-instance key: "<event>|<instrument>|<instance>"."""
    from messaging.models import TeamAlert

    rule = logic_rule(synced, researcher, repeat=Repeat.INSTANCE, logic="[dd_mood] = '1'")
    person = Participant.objects.filter(project=synced).first()
    key = f"{'week_12_follow_up_visit_arm_1':<100}|{'daily_symptom_and_medication_diary':<100}|10"
    for model, name in (
        (TriggerState, "instance"),
        (Message, "occurrence"),
        (TeamAlert, "occurrence"),
    ):
        assert model._meta.get_field(name).max_length >= len(f"logic:{key}"), model
    for model in (Message, TeamAlert):
        assert model._meta.get_field("dedup_key").max_length >= len(
            f"r{rule.pk}:p{person.pk}:logic:{key}"
        )
    state = TriggerState.objects.create(
        rule=rule, participant=person, instance=key, changed_at=timezone.now()
    )
    assert TriggerState.objects.get(pk=state.pk).instance == key


def test_one_rule_that_fails_does_not_stop_the_others(synced, researcher, monkeypatch):
    broken = logic_rule(synced, researcher, logic="[wk_servings] >= '15'")
    working = logic_rule(synced, researcher, logic="[wk_servings] >= '15'")
    real = triggers._evaluate_logic

    def evaluate_logic(rule, *a, **kw):
        if rule.pk == broken.pk:
            raise ValueError("value too long for type character varying(40)")
        return real(rule, *a, **kw)

    monkeypatch.setattr(triggers, "_evaluate_logic", evaluate_logic)
    set_value("1", wk_servings="16")
    report = evaluate(synced, "1")
    assert report.fired == 1
    assert Message.objects.filter(rule=working).count() == 1
    assert len(report.errors) == 1 and "could not be evaluated" in report.errors[0]
