"""Alerts to the study team (docs/sending.md, "Alerts to the study team"): members and fixed
addresses e-mailed with the record's values piped in (never the phone), members' own phones
texted when asked (and only then counted against the quota), and the bad input refused."""

import datetime
import html

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from billing.models import UsagePeriod
from messaging.gateways import locmem
from messaging.models import Message, MessageRule, StaffPhone, TeamAlert
from messaging.services import rules, triggers
from messaging.services.alerts import team_alerts_hand_out_due
from projects import crypto
from projects.models import Membership, Participant
from projects.sandbox import store
from projects.sandbox.data import SANDBOX_PROJECTS
from projects.services import sync
from tests.factories import (
    MembershipFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UsagePeriodFactory,
    UserFactory,
)
from tests.messaging.test_rules import data

DEMO = SANDBOX_PROJECTS[101]
Trigger = MessageRule.Trigger


@pytest.fixture
def team(mapped_project):
    nurse = UserFactory(email="nurse@uni.test")
    MembershipFactory(project=mapped_project, user=nurse, role=Membership.Role.VIEWER)
    return nurse


def alert_data(**kw):
    return data(
        **{
            "kind": "alert",
            "name": "Many servings",
            "trigger": Trigger.LOGIC,
            "trigger_logic": "[wk_servings] >= '15'",
            "body": "Participant [record_id] reported [wk_servings] servings, please call.",
            "instrument": "",
            "stop_when_complete": False,
            "notify_team": True,
            **kw,
        }
    )


def refused(project, actor, **kw):
    with pytest.raises(ValidationError) as exc:
        rules.rule_save(project=project, actor=actor, data=alert_data(**kw))
    assert not MessageRule.objects.exists()
    return exc.value.message_dict


def test_an_alert_with_no_recipient_is_refused(mapped_project, researcher):
    errors = refused(mapped_project, researcher, alert_members=[], alert_emails=[])
    assert errors["alert_members"] == [
        "An alert to the team needs at least one recipient: choose project members, or add an "
        "e-mail address."
    ]


def test_an_address_that_is_not_an_e_mail_is_named(mapped_project, researcher):
    errors = refused(mapped_project, researcher, alert_emails=["pi@uni.test", "call me"])
    assert errors["alert_emails"][0].startswith("“call me” is not an e-mail address.")


def test_the_participants_phone_is_never_piped_into_an_alert(mapped_project, researcher, team):
    errors = refused(
        mapped_project,
        researcher,
        alert_members=[team],
        body="Call [first_name] on [phone] now.",
    )
    assert "phone number ([phone]) is never put in an alert" in errors["body"][0]


def test_someone_outside_the_project_cannot_be_alerted(mapped_project, researcher):
    errors = refused(mapped_project, researcher, alert_members=[UserFactory()])
    assert errors["alert_members"] == ["Only members of this project can receive its alerts."]


def test_a_piped_field_redcap_lacks_is_refused(mapped_project, researcher, team):
    errors = refused(
        mapped_project, researcher, alert_members=[team], body="Record [record_id]: [pain_level]"
    )
    assert errors["body"] == ["REDCap has no field [pain_level] to pipe into the alert."]


@pytest.fixture
def synced(mapped_project, researcher):
    sync.sync_run_start(project=mapped_project, actor=researcher)
    return mapped_project


def test_logic_becoming_true_e_mails_the_team_with_the_records_values(synced, researcher, team):
    rule = rules.rule_save(
        project=synced,
        actor=researcher,
        data=alert_data(alert_members=[team], alert_emails=["PI@Uni.test"]),
    )
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    store.import_records(DEMO, [{"record_id": "7", "wk_servings": "18"}])  # Gray: no consent
    p = Participant.objects.get(project=synced, record_id="7")
    mail.outbox.clear()
    report = triggers.triggers_evaluate(project_id=synced.pk, participant_ids=[p.pk])
    triggers.triggers_evaluate(project_id=synced.pk, participant_ids=[p.pk])  # no twin
    assert report.alerts == 1
    assert sorted(m.to[0] for m in mail.outbox) == ["nurse@uni.test", "pi@uni.test"]
    email = mail.outbox[0]
    assert email.body == "Participant 7 reported 18 servings, please call."
    assert "record 7" in email.subject
    assert "(212)" not in email.body and "555-0107" not in email.body
    alert = TeamAlert.objects.get()
    assert (alert.emails, alert.texts, alert.error) == (2, 0, "")
    # E-mails are not texts: no outbox row, no quota used, nothing to the participant.
    assert not Message.objects.exists()


def test_an_alert_by_sms_texts_the_members_own_phone_and_counts_it(synced, researcher, team):
    ProviderLinkFactory(project=synced, provider="twilio")
    UsagePeriodFactory(account=synced.account)
    StaffPhone.objects.create(
        user=team,
        phone_encrypted=crypto.encrypt("+16155550177"),
        phone_last4="0177",
        verified_at=timezone.now(),
    )
    rule = rules.rule_save(
        project=synced,
        actor=researcher,
        data=alert_data(alert_members=[team], alert_sms=True),
    )
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    store.import_records(DEMO, [{"record_id": "2", "wk_servings": "16"}])
    p = Participant.objects.get(project=synced, record_id="2")
    triggers.triggers_evaluate(project_id=synced.pk, participant_ids=[p.pk])
    assert [t.to for t in locmem.outbox] == ["+16155550177"]
    assert locmem.outbox[0].body == "Participant 2 reported 16 servings, please call."
    text = Message.objects.get()
    assert (text.to_user, text.participant, text.kind) == (team, None, "team_alert")
    assert UsagePeriod.objects.get(account=synced.account).used == text.units > 0
    assert [m.to[0] for m in mail.outbox] == ["nurse@uni.test"]


@pytest.mark.parametrize(
    "raw,words",
    [
        ("(800) 234-5678", "That number is a toll-free number, which cannot receive texts."),
        ("(900) 234-5678", "That number is a premium-rate number, which cannot receive texts."),
    ],
)
def test_a_staff_phone_that_is_not_a_mobile_number_is_refused(as_user, researcher, raw, words):
    project = ProjectFactory(owner=researcher)
    ProviderLinkFactory(project=project, provider="twilio")
    UsagePeriodFactory(account=project.account)
    response = as_user(researcher).post(
        reverse("staff-phone", args=[project.pk]), {"send_code": "1", "phone": raw}
    )
    assert words in response.content.decode()
    assert locmem.outbox == [] and not StaffPhone.objects.exists()


def test_a_completion_alert_goes_after_its_delay_and_a_missed_one_not_at_all(
    synced, researcher, team
):
    rule = rules.rule_save(
        project=synced,
        actor=researcher,
        data=alert_data(
            alert_members=[team],
            trigger=Trigger.COMPLETION,
            trigger_logic="",
            instrument="weekly_checkin",
            offset=1,
            offset_unit="hours",
            body="Record [record_id] finished the check-in.",
        ),
    )
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    store.import_records(DEMO, [{"record_id": "5", "weekly_checkin_complete": "2"}])
    p = Participant.objects.get(project=synced, record_id="5")
    mail.outbox.clear()
    later = timezone.now() + datetime.timedelta(hours=6)
    triggers.triggers_evaluate(project_id=synced.pk, participant_ids=[p.pk], now=later)
    assert mail.outbox == [] and not TeamAlert.objects.exists()
    triggers.triggers_evaluate(project_id=synced.pk, participant_ids=[p.pk])
    alert = TeamAlert.objects.get()
    assert mail.outbox == [] and alert.sent_at is None  # an hour after the completion
    assert alert.due_at > timezone.now() + datetime.timedelta(minutes=55)
    assert team_alerts_hand_out_due() == 0
    assert team_alerts_hand_out_due(now=alert.due_at) == 1  # the dispatcher, an hour later
    assert [m.body for m in mail.outbox] == ["Record 5 finished the check-in."]
    assert team_alerts_hand_out_due(now=alert.due_at) == 0


def test_the_form_saves_an_alert_to_members_and_addresses_and_says_what_counts(
    mapped_project, researcher, team, as_user
):
    client = as_user(researcher)
    url = reverse("rule-create", args=[mapped_project.pk])
    page = client.get(url).content.decode()
    assert "E-mails to the team do not count against the texts quota" in page
    post = {
        "kind": "alert",
        "name": "Many servings",
        "body": "Participant [record_id] reported [wk_servings] servings.",
        "recipients": "all",
        "trigger": "logic",
        "trigger_logic": "[wk_servings] >= '15'",
        "logic_repeat": "once",
        "send_time": "10:00",
        "notify_team": "on",
    }
    response = client.post(url, post)
    assert response.status_code == 200
    assert "needs at least one recipient" in response.context["form"].errors["alert_members"][0]
    assert not MessageRule.objects.exists()
    response = client.post(
        url, {**post, "alert_members": [team.pk], "alert_emails": "pi@uni.test\nlab@uni.test"}
    )
    assert response.status_code == 302, response.context["form"].errors
    rule = MessageRule.objects.get()
    assert list(rule.alert_members.all()) == [team]
    assert rule.alert_emails == ["pi@uni.test", "lab@uni.test"]


def test_the_rule_page_lists_its_alerts_to_the_team(synced, researcher, team, as_user):
    rule = rules.rule_save(project=synced, actor=researcher, data=alert_data(alert_members=[team]))
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    store.import_records(DEMO, [{"record_id": "3", "wk_servings": "19"}])
    p = Participant.objects.get(project=synced, record_id="3")
    triggers.triggers_evaluate(project_id=synced.pk, participant_ids=[p.pk])
    page = as_user(researcher).get(reverse("rule-detail", args=[synced.pk, rule.pk]))
    html = page.content.decode()
    assert "Latest alerts to the team" in html and 'id="team-alerts"' in html
    assert str(team) in html and ">3<" in html


@pytest.fixture
def editor(mapped_project):
    user = UserFactory(email="ed@uni.test")
    MembershipFactory(project=mapped_project, user=user, role=Membership.Role.EDITOR)
    return user


def test_only_an_owner_adds_or_changes_an_alerts_fixed_addresses(
    mapped_project, researcher, team, editor
):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied, match="Only the project's owners can"):
        rules.rule_save(
            project=mapped_project,
            actor=editor,
            data=alert_data(alert_members=[team], alert_emails=["me@elsewhere.test"]),
        )
    assert not MessageRule.objects.exists()
    rule = rules.rule_save(
        project=mapped_project,
        actor=researcher,  # the owner
        data=alert_data(alert_members=[team], alert_emails=["pi@uni.test"]),
    )
    with pytest.raises(PermissionDenied, match="Only the project's owners can"):
        rules.rule_save(
            project=mapped_project,
            actor=editor,
            data=alert_data(alert_members=[team], alert_emails=["me@elsewhere.test"]),
            rule=MessageRule.objects.get(pk=rule.pk),
        )
    rule.refresh_from_db()
    assert rule.alert_emails == ["pi@uni.test"]
    # The same addresses (as the form posts them back) are no change: the editor edits the rest.
    edited = rules.rule_save(
        project=mapped_project,
        actor=editor,
        data=alert_data(alert_members=[team], alert_emails=["PI@uni.test"], name="Renamed"),
        rule=MessageRule.objects.get(pk=rule.pk),
    )
    assert (edited.name, edited.alert_emails) == ("Renamed", ["pi@uni.test"])


def test_an_editor_sees_the_fixed_addresses_read_only_and_cannot_post_others(
    mapped_project, researcher, team, editor, as_user
):
    rule = rules.rule_save(
        project=mapped_project,
        actor=researcher,
        data=alert_data(alert_members=[team], alert_emails=["pi@uni.test"]),
    )
    client = as_user(editor)
    url = reverse("rule-edit", args=[mapped_project.pk, rule.pk])
    response = client.get(url)
    form = response.context["form"]
    assert form.fields["alert_emails"].disabled
    page = html.unescape(response.content.decode())
    assert "Only the project's owners add or change these addresses" in page
    post = {
        "kind": "alert",
        "name": "Renamed",
        "body": rule.body,
        "recipients": "all",
        "trigger": "logic",
        "trigger_logic": rule.trigger_logic,
        "logic_repeat": "once",
        "send_time": "10:00",
        "notify_team": "on",
        "alert_members": [team.pk],
        "alert_emails": "me@elsewhere.test",  # a disabled field's post is ignored
    }
    response = client.post(url, post)
    assert response.status_code == 302, response.context["form"].errors
    rule.refresh_from_db()
    assert (rule.name, rule.alert_emails) == ("Renamed", ["pi@uni.test"])
    assert not as_user(researcher).get(url).context["form"].fields["alert_emails"].disabled


def test_a_paused_or_archived_alert_or_project_sends_nothing_and_archiving_cancels(
    synced, researcher, team
):
    from messaging.services.alerts import team_alert_deliver
    from projects.models import Project

    rule = rules.rule_save(
        project=synced,
        actor=researcher,
        data=alert_data(
            alert_members=[team],
            trigger=Trigger.COMPLETION,
            trigger_logic="",
            instrument="weekly_checkin",
            offset=1,
            offset_unit="hours",
            body="Record [record_id] finished the check-in.",
        ),
    )
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    store.import_records(DEMO, [{"record_id": "5", "weekly_checkin_complete": "2"}])
    p = Participant.objects.get(project=synced, record_id="5")
    triggers.triggers_evaluate(project_id=synced.pk, participant_ids=[p.pk])
    alert = TeamAlert.objects.get()
    mail.outbox.clear()
    rules.rule_set_status(rule=rule, status=MessageRule.Status.PAUSED, actor=researcher)
    assert team_alerts_hand_out_due(now=alert.due_at) == 0
    assert team_alert_deliver(alert_id=alert.pk) is None  # a task handed out before the pause
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ACTIVE, actor=researcher)
    Project.objects.filter(pk=synced.pk).update(status=Project.Status.PAUSED)
    assert team_alerts_hand_out_due(now=alert.due_at) == 0
    assert team_alert_deliver(alert_id=alert.pk) is None
    assert mail.outbox == []
    Project.objects.filter(pk=synced.pk).update(status=Project.Status.ACTIVE)
    rules.rule_set_status(rule=rule, status=MessageRule.Status.ARCHIVED, actor=researcher)
    alert.refresh_from_db()
    assert alert.sent_at is not None and alert.emails == 0
    assert alert.error == "Not sent: the alert was archived."
    assert team_alerts_hand_out_due(now=alert.due_at) == 0 and mail.outbox == []
