"""The outbox and the release path, end to end through the real sender loop (locmem gateway)."""

import datetime
import gc
import zoneinfo

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import UsagePeriod
from billing.services.quota import credits_add, usage_period_current
from messaging import segments, sender
from messaging.gateways import Reason, locmem
from messaging.models import Attempt, Message, MessageRule, OptOut, Send
from messaging.services import claim, optouts, outbox, record, release, rules, sweep
from portal.models import AuditEvent
from projects.models import Membership, Participant, Project, ProviderLink
from tests.factories import (
    FieldMappingFactory,
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    PlanFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

Status = Message.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def project(researcher, fake_redcap):
    project = ProjectFactory(owner=researcher, always_open=True)
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project)
    fake_redcap(project)  # the piped names come from (fake) REDCap at release
    return project


@pytest.fixture
def redcap(fake_provider):
    """The fake REDCap's records (what the texts pipe when they go out)."""
    return fake_provider


@pytest.fixture
def people(project, redcap):
    names = {"1": "Ana", "2": "Ben", "3": "Cy"}
    redcap.redcap_records.update({r: {"first_name": n} for r, n in names.items()})
    return [
        ParticipantFactory(
            project=project, record_id="1", first_name="Ana", time_zone="America/Chicago"
        ),
        ParticipantFactory(project=project, record_id="2", first_name="Ben", time_zone=""),
        ParticipantFactory(
            project=project, record_id="3", first_name="Cy", time_zone="Pacific/Honolulu"
        ),
    ]


@pytest.fixture
def editor(project):
    return MembershipFactory(project=project, role=Membership.Role.EDITOR).user


def run_sender():
    return sender.run(max_seconds=10)


def test_send_now_queues_one_row_per_recipient_and_the_sender_sends_each_once(
    project, people, researcher
):
    rule = MessageRuleFactory(project=project, body="Hi [first_name]!")
    send = outbox.send_now(rule=rule, actor=researcher)
    assert send.total == 3
    report = run_sender()
    assert report.sent == 3
    assert sorted(m.body for m in locmem.outbox) == ["Hi Ana!", "Hi Ben!", "Hi Cy!"]
    assert {m.to for m in locmem.outbox} == {p.phone for p in people}
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SENT}
    assert Attempt.objects.filter(outcome=Attempt.Outcome.ACCEPTED).count() == 3
    # A second sender run finds nothing to do: no twin call.
    assert run_sender().sent == 0
    assert len(locmem.outbox) == 3
    # The heap the loop froze for the collector is handed back when it ends (docs/sending.md,
    # "Start-up"): nothing stays out of collection.
    assert gc.get_freeze_count() == 0


def test_a_sender_with_nothing_to_do_reads_the_queue_once_and_stops(project, people):
    with CaptureQueriesContext(connection) as queries:
        report = run_sender()
    assert report.sent == 0
    ready_reads = [q for q in queries if 'FROM "messaging_message"' in q["sql"]]
    # One read of the queue in the loop, and the count of what is left (more_work).
    assert len(ready_reads) == 2, [q["sql"][:80] for q in ready_reads]


def test_the_sender_stops_as_soon_as_a_read_finds_the_queue_empty(
    project, people, researcher, monkeypatch
):
    """Once the queue is empty and nothing is in hand, the read that finds nothing is the
    loop's last step: it does not wait for anything (results, the next read) before it ends."""
    steps = []
    fill, drain = sender._Loop._fill, sender._Loop._drain

    def logged_fill(loop):
        fill(loop)
        steps.append(("read", loop.quiet))

    def logged_drain(loop, *, timeout):
        steps.append(("wait", timeout))
        return drain(loop, timeout=timeout)

    monkeypatch.setattr(sender._Loop, "_fill", logged_fill)
    monkeypatch.setattr(sender._Loop, "_drain", logged_drain)
    outbox.send_now(rule=MessageRuleFactory(project=project, body="Hi"), actor=researcher)
    assert run_sender().sent == 3
    last_read = max(i for i, step in enumerate(steps) if step == ("read", True))
    # After it, only the closing look at what came back (no waiting).
    assert steps[last_read + 1 :] == [("wait", 0)], steps[-4:]


def test_the_quota_is_reserved_per_message_and_over_quota_texts_are_held_then_released(
    project, people, researcher, django_capture_on_commit_callbacks
):
    tiny = PlanFactory(name="Tiny", project_limit=5, monthly_messages=2)
    project.account.plan = tiny
    project.account.save()
    rule = MessageRuleFactory(project=project)
    outbox.send_now(rule=rule, actor=researcher)
    report = run_sender()
    assert report.sent == 2 and report.held == 1
    held = Message.objects.get(status=Status.HELD)
    assert "quota" in held.error
    period = usage_period_current(account=project.account)
    assert period.used == 2
    with django_capture_on_commit_callbacks(execute=True):
        credits_add(account=project.account, units=10)  # billing's credits_added releases it
    held.refresh_from_db()
    # Released and sent at once: the release starts the sender (inline, as q2 runs in tests).
    assert held.status == Status.SENT
    assert UsagePeriod.objects.get(pk=period.pk).used == 3


def test_held_texts_go_out_when_the_accounts_next_month_begins(
    project, people, researcher, django_capture_on_commit_callbacks
):
    from billing.services.quota import account_local_date
    from billing.tasks import usage_periods_start

    project.account.plan = PlanFactory(name="Tiny", project_limit=5, monthly_messages=2)
    project.account.save()
    outbox.send_now(rule=MessageRuleFactory(project=project), actor=researcher)
    assert run_sender().held == 1
    held = Message.objects.get(status=Status.HELD)
    # The month the text was held in ends: its period now lies wholly in the past.
    today = account_local_date(account=project.account)
    last_day = today.replace(day=1) - datetime.timedelta(days=1)
    old = usage_period_current(account=project.account)
    UsagePeriod.objects.filter(pk=old.pk).update(start=last_day.replace(day=1), end=last_day)

    with django_capture_on_commit_callbacks(execute=True):
        assert usage_periods_start() == 1  # billing's period_started releases it

    held.refresh_from_db()
    assert held.status == Status.SENT  # released and sent at once (the sender runs inline)
    assert len(locmem.outbox) == 3
    new = usage_period_current(account=project.account)
    assert (new.start, new.used) == (today.replace(day=1), 1)
    old.refresh_from_db()
    assert old.closed_at is not None and old.used == 2


def test_ineligible_participants_are_skipped_at_release_with_the_reason(
    project, people, researcher
):
    rule = MessageRuleFactory(project=project)
    outbox.send_now(rule=rule, actor=researcher)
    Participant.objects.filter(pk=people[0].pk).update(withdrawn=True)
    Participant.objects.filter(pk=people[1].pk).update(consented=False)
    OptOut.objects.create(
        project=project, phone_fingerprint=people[2].phone_fingerprint, source=OptOut.Source.KEYWORD
    )
    run_sender()
    reasons = dict(Message.objects.values_list("participant_id", "error"))
    assert "withdrawn" in reasons[people[0].pk]
    assert "consented" in reasons[people[1].pk]
    assert "opted out" in reasons[people[2].pk]
    assert set(Message.objects.values_list("status", flat=True)) == {Status.SKIPPED}
    assert locmem.outbox == []


def test_stop_after_n_sends_lets_one_of_two_texts_queued_together_through(
    project, people, researcher
):
    rule = MessageRuleFactory(project=project, max_sends=1)
    outbox.send_now(rule=rule, actor=researcher)
    # A scheduled occurrence of the same rule queued beside it: one batch holds both texts.
    for message in list(Message.objects.all()):
        message.pk, message.send = None, None
        message.occurrence = "2026-01-05"
        message.dedup_key = f"r{rule.pk}:p{message.participant_id}:2026-01-05"
        message.save()
    assert Message.objects.filter(status=Status.QUEUED).count() == 6

    report = run_sender()

    assert report.sent == 3
    assert sorted(m.to for m in locmem.outbox) == sorted(p.phone for p in people)  # one each
    skipped = Message.objects.filter(status=Status.SKIPPED)
    assert skipped.count() == 3
    assert set(skipped.values_list("error", flat=True)) == {"Already texted once by this message."}
    # Later texts of the rule are skipped too (what was sent is counted from the database).
    outbox.send_now(rule=rule, actor=researcher, audience="everyone")
    assert run_sender().sent == 0
    assert Message.objects.filter(status=Status.SKIPPED).count() == 6
    assert len(locmem.outbox) == 3


def queue_again(rule, actor) -> Send:
    """Another copy of the rule's text for every participant, queued beside the ones waiting
    (as "Send again to everyone" does for those without a waiting copy)."""
    now = timezone.now()
    people = list(Participant.objects.filter(project=rule.project))
    send = Send.objects.create(project=rule.project, rule=rule, created_by=actor, total=len(people))
    Message.objects.bulk_create(
        Message(
            project=rule.project,
            participant=p,
            rule=rule,
            send=send,
            kind=rule.kind,
            occurrence=f"send-{send.pk}",
            dedup_key=f"s{send.pk}:p{p.pk}",
            due_at=now,
            not_before=now,
        )
        for p in people
    )
    return send


def test_stop_after_n_sends_counts_the_texts_the_sender_holds_prepared(project, people, researcher):
    rule = MessageRuleFactory(project=project, max_sends=2)
    outbox.send_now(rule=rule, actor=researcher)
    loop = sender._Loop("test", sender.SenderReport(), threads=0, batch_size=200)
    loop._fill()  # prepared, in the sender's memory, still queued in the database
    queue_again(rule, researcher)
    queue_again(rule, researcher)

    loop._fill()  # the next read of the queue

    _, second, third = Send.objects.order_by("pk")
    assert set(Message.objects.filter(send=second).values_list("status", flat=True)) == {
        Status.QUEUED
    }
    # Two texts are in hand for each participant already: the third send's are skipped.
    assert set(Message.objects.filter(send=third).values_list("status", flat=True)) == {
        Status.SKIPPED
    }
    loop.close(orderly=True)
    run_sender()
    assert len(locmem.outbox) == 6
    assert set(Message.objects.filter(send=third).values_list("error", flat=True)) == {
        "Already texted twice by this message."
    }


def test_a_text_due_outside_the_sending_hours_waits_for_the_next_opening(
    project, people, researcher
):
    today = timezone.now().astimezone(timezone.get_default_timezone()).weekday()
    project.send_days = [d for d in range(7) if d not in {today, (today + 1) % 7, (today - 1) % 7}]
    project.save()
    outbox.send_now(rule=MessageRuleFactory(project=project), actor=researcher)
    run_sender()
    assert locmem.outbox == []
    for message in Message.objects.select_related("participant"):
        assert message.status == Status.QUEUED
        assert message.not_before > timezone.now() + datetime.timedelta(hours=12)
        tz = zoneinfo.ZoneInfo(message.participant.time_zone or project.time_zone)
        opening = message.not_before.astimezone(tz)
        assert message.error.startswith(f"Waits until {opening:%a} ")
        assert "participant time" in message.error


def test_pausing_the_rule_the_project_or_the_link_stops_releases_at_once(
    project, people, researcher
):
    rule = MessageRuleFactory(project=project)
    outbox.send_now(rule=rule, actor=researcher)
    rules.rule_set_status(rule=rule, status=MessageRule.Status.PAUSED, actor=researcher)
    assert run_sender().sent == 0
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    ProviderLink.objects.filter(project=project).update(is_paused=True)
    assert run_sender().sent == 0
    ProviderLink.objects.filter(project=project).update(is_paused=False)
    project.status = project.Status.PAUSED
    project.save()
    assert run_sender().sent == 0
    project.status = project.Status.ACTIVE
    project.save()
    assert run_sender().sent == 3


def pause(what: str, project, rule, actor) -> None:
    from messaging.services.provider_links import provider_link_pause
    from projects.services import project_set_status

    if what == "rule":
        rules.rule_set_status(rule=rule, status=MessageRule.Status.PAUSED, actor=actor)
    elif what == "project":
        project_set_status(project=project, status=project.Status.PAUSED, actor=actor)
    else:
        link = ProviderLink.objects.get(project=project)
        provider_link_pause(link=link, reason="Paused by the team.", actor=actor)


def resume(what: str, project, rule, actor) -> None:
    from messaging.services.provider_links import provider_link_resume
    from projects.services import project_set_status

    if what == "rule":
        rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=actor)
    elif what == "project":
        project_set_status(project=project, status=project.Status.ACTIVE, actor=actor)
    else:
        provider_link_resume(link=ProviderLink.objects.get(project=project), actor=actor)


@pytest.mark.parametrize("what", ["rule", "project", "link"])
@pytest.mark.parametrize(
    "rate",
    [
        1,  # one text claimed at a time: the others wait prepared in the sender's memory
        100,  # all three claimed together, ahead of their turn
    ],
)
def test_a_pause_while_the_sender_holds_texts_stops_every_text_not_yet_sent(
    project, people, researcher, monkeypatch, what, rate
):
    ProviderLink.objects.filter(project=project).update(rate_per_second=rate)
    rule = MessageRuleFactory(project=project)
    outbox.send_now(rule=rule, actor=researcher)
    send = locmem.LocmemGateway.send

    def send_then_pause(gateway, **kwargs):
        result = send(gateway, **kwargs)
        if len(locmem.outbox) == 1:  # the team pauses while the first text goes out
            pause(what, project, rule, researcher)
        return result

    monkeypatch.setattr(locmem.LocmemGateway, "send", send_then_pause)

    run_sender()

    assert len(locmem.outbox) == 1  # nothing more reached the provider after the pause
    statuses = sorted(Message.objects.values_list("status", flat=True))
    assert statuses == [Status.QUEUED, Status.QUEUED, Status.SENT]  # back in the queue
    assert Attempt.objects.count() == 1
    assert not Message.objects.filter(status=Status.QUEUED, units__gt=0).exists()
    assert usage_period_current(account=project.account).used == 1  # their quota released
    monkeypatch.undo()
    resume(what, Project.objects.get(pk=project.pk), rule, researcher)
    run_sender()
    assert len(locmem.outbox) == 3  # nothing lost, nothing twice
    assert {m.to for m in locmem.outbox} == {p.phone for p in people}
    assert usage_period_current(account=project.account).used == 3


def test_a_claim_refuses_texts_whose_rule_project_or_link_was_paused_after_they_were_read(
    project, people, researcher
):
    rule = MessageRuleFactory(project=project, body="Hello from the study.")
    outbox.send_now(rule=rule, actor=researcher)
    prepared = [
        release.Prepared(message=m, body="Hello", count=segments.count("Hello"), units=1)
        for m in Message.objects.select_related("project", "participant", "rule").order_by("pk")
    ]
    pause("link", project, rule, researcher)  # after the sender read and prepared them

    assert claim.claim_batch(prepared[:1], provider="sandbox") == ([], [])

    resume("link", project, rule, researcher)
    pause("rule", project, rule, researcher)
    assert claim.claim_batch(prepared[1:2], provider="sandbox") == ([], [])
    resume("rule", project, rule, researcher)
    claimed, held = claim.claim_batch(prepared[2:], provider="sandbox")
    assert [p.message.pk for p in claimed] == [prepared[2].message.pk] and held == []
    assert sorted(Message.objects.values_list("status", flat=True)) == [
        Status.QUEUED,
        Status.QUEUED,
        Status.SENDING,
    ]
    assert usage_period_current(account=project.account).used == 1  # nothing reserved for them


@pytest.mark.parametrize(
    ("reason", "status", "check"),
    [
        (Reason.INVALID_NUMBER, Status.FAILED, "number_invalid"),
        (Reason.OPTED_OUT, Status.FAILED, "opted_out"),
        (Reason.AMBIGUOUS, Status.UNKNOWN, None),
        (Reason.UNREACHABLE, Status.QUEUED, None),
        (Reason.RATE_LIMITED, Status.QUEUED, None),
        (Reason.REJECTED, Status.FAILED, None),
    ],
)
def test_failures_are_classified(project, people, researcher, reason, status, check, monkeypatch):
    # A retry waits a minute here (the real backoff is random and may be short enough for the
    # same sender run to send the text again, which is right but not what this test looks at).
    monkeypatch.setattr(record, "backoff_delay", lambda *args, **kwargs: 60.0)
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    locmem.fail_next(reason, "provider says no", code=21211)
    run_sender()
    message = Message.objects.get()
    assert message.status == status
    assert message.attempts == 1
    period = usage_period_current(account=project.account)
    # Units stay reserved only while the text may have gone out (unknown).
    assert period.used == (1 if status == Status.UNKNOWN else 0)
    if check == "number_invalid":
        assert Participant.objects.get(record_id="1").number_invalid
    if check == "opted_out":
        assert OptOut.objects.filter(project=project, participant__record_id="1").exists()
    if status == Status.QUEUED:  # back in the queue after a jittered backoff
        assert message.not_before >= message.due_at
        assert Attempt.objects.get(message=message).outcome == Attempt.Outcome.RETRY


def test_with_a_segment_quota_a_two_segment_text_reserves_two_units_and_a_refusal_frees_them(
    project, people, researcher, settings, monkeypatch
):
    from billing.models import ProjectUsage

    settings.QUOTA_UNIT = "segment"
    monkeypatch.setattr(record, "backoff_delay", lambda *args, **kwargs: 60.0)
    body = "Please fill in today's sleep diary before bed; it takes two minutes. " * 2  # 138
    rule = MessageRuleFactory(
        project=project, record_ids=["1"], recipients="records", body=body + body
    )
    outbox.send_now(rule=rule, actor=researcher)
    held_during_the_call = []
    send = locmem.LocmemGateway.send

    def send_observed(gateway, **kwargs):
        held_during_the_call.append(usage_period_current(account=project.account).used)
        return send(gateway, **kwargs)

    monkeypatch.setattr(locmem.LocmemGateway, "send", send_observed)
    locmem.fail_next(Reason.UNREACHABLE, "connection refused")  # never reached the provider

    run_sender()

    message = Message.objects.get()
    assert (message.segments, message.status, message.units) == (2, Status.QUEUED, 0)
    assert held_during_the_call == [2]
    assert usage_period_current(account=project.account).used == 0  # both released
    assert ProjectUsage.objects.get(project=project).units == 0
    Message.objects.update(not_before=timezone.now())  # the retry falls due
    run_sender()
    message.refresh_from_db()
    assert (message.status, message.units) == (Status.SENT, 2)
    assert held_during_the_call == [2, 2]
    assert usage_period_current(account=project.account).used == 2


def test_bad_credentials_pause_the_link_keep_the_text_and_alert_the_owner(
    project, people, researcher, django_capture_on_commit_callbacks
):
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    locmem.fail_next(Reason.BAD_CREDENTIALS, "Authenticate")
    with django_capture_on_commit_callbacks(execute=True):
        run_sender()
    link = ProviderLink.objects.get(project=project)
    assert link.is_paused and "Authenticate" in link.paused_reason
    assert Message.objects.get().status == Status.QUEUED
    assert any("paused" in m.subject for m in mail.outbox)
    assert researcher.email in [r for m in mail.outbox for r in m.to]


def test_an_unknown_text_is_reconciled_with_the_provider_never_resent(project, people, researcher):
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    locmem.fail_next(Reason.AMBIGUOUS, "read timeout", accepted=True)
    run_sender()
    message = Message.objects.get()
    assert message.status == Status.UNKNOWN
    assert run_sender().sent == 0  # not resent
    later = timezone.now() + sweep.RECONCILE_AFTER + datetime.timedelta(seconds=5)
    counts = sweep.sweep(now=later, lease_alive=True)
    message.refresh_from_db()
    assert counts["reconciled"] == 1
    assert message.status == Status.SENT and message.provider_message_id
    assert len(locmem.outbox) == 1


def test_an_unknown_text_the_provider_never_got_goes_back_to_the_queue_once(
    project, people, researcher
):
    rule = MessageRuleFactory(project=project, record_ids=["1"], recipients="records")
    outbox.send_now(rule=rule, actor=researcher)
    locmem.fail_next(Reason.AMBIGUOUS, "read timeout")
    run_sender()
    later = timezone.now() + sweep.RECONCILE_GIVE_UP + datetime.timedelta(minutes=1)
    sweep.sweep(now=later, lease_alive=True)
    message = Message.objects.get()
    assert message.status == Status.QUEUED
    assert "never received this text" in message.error
    assert usage_period_current(account=project.account).used == 0
    assert locmem.outbox == []


def test_adhoc_text_to_one_participant(project, people, researcher, editor):
    message = outbox.adhoc_send(
        participant=people[0], body="Call us back, [first_name]?", actor=editor
    )
    assert AuditEvent.objects.filter(action="message.adhoc").exists()
    run_sender()
    message.refresh_from_db()
    assert message.status == Status.SENT
    assert locmem.outbox[0].body == "Call us back, Ana?"


def test_adhoc_bad_input_is_refused(project, people, researcher):
    with pytest.raises(ValidationError):
        outbox.adhoc_send(participant=people[0], body="  ", actor=researcher)
    with pytest.raises(ValidationError):
        outbox.adhoc_send(participant=people[0], body="Hi [dob]", actor=researcher)
    Participant.objects.filter(pk=people[1].pk).update(withdrawn=True)
    with pytest.raises(ValidationError) as exc:
        outbox.adhoc_send(
            participant=Participant.objects.get(pk=people[1].pk), body="Hi", actor=researcher
        )
    assert "cannot be texted" in str(exc.value)
    assert not Message.objects.exists()


def test_cancel_only_while_queued_or_held(project, people, researcher):
    outbox.send_now(rule=MessageRuleFactory(project=project), actor=researcher)
    first = Message.objects.order_by("pk").first()
    outbox.message_cancel(message=first, actor=researcher)
    first.refresh_from_db()
    assert first.status == Status.CANCELLED
    run_sender()
    with pytest.raises(ValidationError):
        outbox.message_cancel(
            message=Message.objects.filter(status=Status.SENT).first(), actor=researcher
        )
    assert len(locmem.outbox) == 2


def test_archiving_a_rule_cancels_its_queued_texts(project, people, researcher):
    rule = MessageRuleFactory(project=project)
    outbox.send_now(rule=rule, actor=researcher)
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ARCHIVED, actor=researcher)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.CANCELLED}


def test_a_participant_opted_out_in_redcap_is_skipped_at_release_and_is_no_recipient(
    project, people, researcher
):
    outbox.send_now(rule=MessageRuleFactory(project=project), actor=researcher)
    Participant.objects.filter(pk=people[0].pk).update(redcap_opted_out=True)
    run_sender()
    skipped = Message.objects.get(participant=people[0])
    assert skipped.status == Status.SKIPPED
    assert skipped.error == "The participant is marked as opted out in REDCap."
    assert len(locmem.outbox) == 2
    assert not outbox.textable_participants(project=project).filter(pk=people[0].pk).exists()


def test_a_stop_is_flagged_for_redcap_and_its_write_back_queued_after_the_commit(
    project, people, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        optouts.opt_out_record(participant=people[0], source=OptOut.Source.KEYWORD)
    people[0].refresh_from_db()
    assert people[0].optout_write_pending == "out"
    assert len(callbacks) == 1


def test_archiving_the_project_cancels_its_waiting_texts_and_pausing_keeps_them(
    project, people, researcher
):
    from projects.services import project_set_status

    outbox.send_now(rule=MessageRuleFactory(project=project), actor=researcher)
    project_set_status(project=project, status=project.Status.PAUSED, actor=researcher)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.QUEUED}
    project_set_status(project=project, status=project.Status.ARCHIVED, actor=researcher)
    assert set(Message.objects.values_list("status", flat=True)) == {Status.CANCELLED}
    assert "archived" in Message.objects.first().error
