"""Retention per project: the owner picks within the administrators' bounds; the purge blanks
bodies past each project's period and never one something still needs (an unsent text, an
unreviewed flag, whatever a registered keeper keeps). A text survey's unwritten answer is kept on
its conversation as a value, so its reply's body is not needed past the period."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message, Reply
from messaging.services import outbox
from projects.models import Membership, Project
from tests.factories import (
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
)

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def old_text(project, days, status=Message.Status.SENT, body="Your visit is tomorrow."):
    person = ParticipantFactory(project=project)
    message = Message.objects.create(
        project=project,
        participant=person,
        occurrence="x",
        dedup_key=f"x{Message.objects.count()}",
        due_at=NOW,
        not_before=NOW,
        status=status,
        body=body,
        adhoc_body=body,
    )
    Message.objects.filter(pk=message.pk).update(created_at=NOW - datetime.timedelta(days=days))
    return message


def old_reply(project, days, **extra):
    return Reply.objects.create(
        project=project,
        provider="sandbox",
        body="an answer",
        received_at=NOW - datetime.timedelta(days=days),
        **extra,
    )


def body(row):
    row.refresh_from_db()
    return row.body


def test_each_project_keeps_texts_for_its_own_period(settings):
    settings.MESSAGE_RETENTION_DAYS = 365
    short = ProjectFactory(retention_days=30)
    default = ProjectFactory()
    gone, kept = old_text(short, 40), old_text(default, 40)
    gone_reply, kept_reply = old_reply(short, 40), old_reply(default, 40)
    recent = old_text(short, 10)
    outbox.retention_purge(now=NOW)
    assert body(gone) == "" and body(gone_reply) == ""
    assert body(kept) and body(kept_reply) and body(recent)
    Message.objects.filter(pk=kept.pk).update(created_at=NOW - datetime.timedelta(days=400))
    outbox.retention_purge(now=NOW)
    assert body(kept) == ""


def test_the_purge_leaves_what_is_still_needed():
    project = ProjectFactory(retention_days=30)
    queued = old_text(project, 90, status=Message.Status.QUEUED)
    held = old_text(project, 90, status=Message.Status.HELD)
    flagged = old_reply(project, 90, flag=Reply.Flag.POSSIBLE_OPT_OUT)
    reviewed = old_reply(project, 90, flag=Reply.Flag.POSSIBLE_OPT_OUT, reviewed_at=NOW)
    outbox.retention_purge(now=NOW)
    assert body(queued) and body(held) and body(flagged)
    assert body(reviewed) == ""


def test_a_registered_keeper_keeps_a_body_for_the_text_surveys():
    project = ProjectFactory(retention_days=30)
    waiting = old_reply(project, 90, handled="survey answer (not yet in REDCap)")
    other = old_reply(project, 90)

    def unwritten_answers(replies):  # what the survey engine registers
        return replies.exclude(handled__startswith="survey answer")

    outbox.retention_keep_register(replies=unwritten_answers)
    try:
        outbox.retention_purge(now=NOW)
    finally:
        outbox.REPLY_KEEPERS.remove(unwritten_answers)
    assert body(waiting) and body(other) == ""


def test_the_owner_picks_within_the_administrators_bounds(as_user, researcher, settings):
    settings.MESSAGE_RETENTION_MIN_DAYS, settings.MESSAGE_RETENTION_MAX_DAYS = 30, 730
    project = ProjectFactory(owner=researcher)
    client = as_user(researcher)
    url = reverse("project-settings", args=[project.pk])
    response = client.post(url, {"retention": "1", "retention-days": "10"})
    assert "Choose between 30 and 730 days" in client.get(response.url).content.decode()
    project.refresh_from_db()
    assert project.retention_days is None
    client.post(url, {"retention": "1", "retention-days": "90"})
    project.refresh_from_db()
    assert project.retention_days == 90
    assert "after <strong>90 days</strong>" in client.get(url).content.decode()
    client.post(url, {"retention": "1", "retention-days": ""})  # back to the default
    project.refresh_from_db()
    assert project.retention_days is None


def test_a_tightened_bound_holds_an_earlier_choice_within_it(settings):
    from projects.services import project_retention_days

    project = ProjectFactory(retention_days=1000)
    settings.MESSAGE_RETENTION_MAX_DAYS = 400
    assert project_retention_days(project) == 400


def test_an_editor_cannot_change_retention(as_user):
    project = ProjectFactory()
    editor = MembershipFactory(project=project, role=Membership.Role.EDITOR).user
    url = reverse("project-settings", args=[project.pk])
    assert as_user(editor).post(url, {"retention": "1", "retention-days": "90"}).status_code == 403
    assert Project.objects.get(pk=project.pk).retention_days is None


def test_a_survey_reply_is_purged_on_time_and_its_unwritten_answer_stays_on_the_conversation():
    """The answer REDCap has not taken yet is the parsed value on the conversation, not the
    reply's text: the reply's body goes at the end of the retention period like any other,
    and the conversation keeps no copy of the raw text (docs/compliance.md, "Retention")."""
    import importlib

    from django.apps import apps

    from messaging.models import Conversation

    project = ProjectFactory(retention_days=30)
    person = ParticipantFactory(project=project)
    answers = {"pain": {"value": "7", "codes": [], "skipped": False, "reply": "seven-ish 7"}}
    conversation = Conversation.objects.create(
        rule=MessageRuleFactory(project=project),
        project=project,
        participant=person,
        state=Conversation.State.EXPIRED,
        started_at=NOW,
        expires_at=NOW,
        unwritten=["pain"],
        answers=answers,
    )
    reply = old_reply(project, 90, participant=person)
    outbox.retention_purge(now=NOW)
    assert body(reply) == ""
    # Conversations from before kept the raw text in answers: the migration drops it.
    migration = importlib.import_module("messaging.migrations.0013_drop_survey_reply_text")
    migration.drop_reply_text(apps, None)
    conversation.refresh_from_db()
    assert conversation.answers == {"pain": {"value": "7", "codes": [], "skipped": False}}
    assert conversation.unwritten == ["pain"]  # still to be written, from the value
