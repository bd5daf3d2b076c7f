"""A small study for the API tests: one project with an owner, an editor and a viewer (also members
of its billing account), an outsider with a project of their own, and one of everything the API
lists. `call(who, method, url, body)` calls the API with `who`'s read-and-write token."""

import json
from types import SimpleNamespace

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import AccountMembership
from messaging.models import Attempt, Conversation, Message, MessageRule, Reply, Send, TextSurvey
from portal.models import OnboardingComment, OnboardingRequest
from portal.services.profile import api_token_create
from projects.models import Membership
from projects.sandbox.data import SANDBOX_PROJECTS
from tests.factories import (
    ALWAYS_OPEN,
    AccountFactory,
    CreditPackRequestFactory,
    FieldMappingFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    RedcapInstanceFactory,
    UsagePeriodFactory,
    UserFactory,
)

PERSONAS = ("anonymous", "outsider", "viewer", "editor", "owner")


def build_world() -> SimpleNamespace:
    owner = UserFactory(email="owner@uni.test", full_name="Olga Owner")
    editor = UserFactory(email="editor@uni.test", full_name="Ed Editor")
    viewer = UserFactory(email="viewer@uni.test", full_name="Vi Viewer")
    outsider = UserFactory(email="outsider@uni.test", full_name="Otto Outsider")
    account = AccountFactory(name="Sleep Lab", owners=[owner])
    for member in (editor, viewer):
        AccountMembership.objects.create(
            account=account, user=member, role=AccountMembership.Role.MEMBER
        )
    UsagePeriodFactory(account=account, used=12)
    instance = RedcapInstanceFactory()
    project = ProjectFactory(
        account=account, redcap_instance=instance, owner=owner, title="Sleep and Mood"
    )
    # Every day, at every hour: texts queued by a test may go out whenever the suite runs.
    for field, value in ALWAYS_OPEN.items():
        setattr(project, field, value)
    project.save()
    Membership.objects.create(project=project, user=editor, role=Membership.Role.EDITOR)
    Membership.objects.create(project=project, user=viewer, role=Membership.Role.VIEWER)
    ProviderLinkFactory(project=project, linked_by=owner)
    FieldMappingFactory(project=project)
    participant = ParticipantFactory(project=project, record_id="1", first_name="Sam")
    other_participant = ParticipantFactory(project=project, record_id="2", first_name="Kim")
    rule = MessageRuleFactory(project=project, created_by=owner, name="Check-in")
    now = timezone.now()
    send = Send.objects.create(project=project, rule=rule, created_by=owner, total=1)
    message = Message.objects.create(
        project=project,
        participant=participant,
        rule=rule,
        send=send,
        kind=rule.kind,
        occurrence=f"send-{send.pk}",
        dedup_key=f"s{send.pk}:p{participant.pk}",
        status=Message.Status.DELIVERED,
        due_at=now,
        not_before=now,
        body="Hi Sam, a reminder from the study.",
        segments=1,
        units=1,
        provider="locmem",
        provider_message_id="LM1",
        sent_at=now,
        delivered_at=now,
    )
    Attempt.objects.create(
        message=message,
        started_at=now,
        finished_at=now,
        outcome=Attempt.Outcome.ACCEPTED,
        provider_message_id="LM1",
    )
    reply = Reply.objects.create(
        project=project,
        participant=participant,
        provider="sandbox",
        provider_message_id="R1",
        phone_fingerprint=participant.phone_fingerprint,
        phone_last4=participant.phone_last4,
        body="Thanks!",
        received_at=now,
    )
    # A text survey with one completed conversation (its results).
    survey_rule = MessageRuleFactory(
        project=project,
        created_by=owner,
        name="Check-in by text",
        kind=MessageRule.Kind.TEXT_SURVEY,
        instrument="text_checkin",
    )
    TextSurvey.objects.create(
        rule=survey_rule, metadata=SANDBOX_PROJECTS[101].metadata, label="Text check-in"
    )
    Conversation.objects.create(
        rule=survey_rule,
        project=project,
        participant=other_participant,
        state=Conversation.State.COMPLETED,
        answers={"tc_walked": {"value": "1", "reply": "yes"}},
        started_at=now,
        expires_at=now,
        finished_at=now,
    )
    credit_pack = CreditPackRequestFactory(account=account, requested_by=owner)
    onboarding = OnboardingRequest.objects.create(
        requester=owner,
        status=OnboardingRequest.Status.DRAFT,
        redcap_instance=instance,
        redcap_project_id=777,
        project_title="A new study",
    )
    comment = OnboardingComment.objects.create(request=onboarding, author=owner, body="Hello")
    # The outsider's own project, account and request: never visible to the others.
    outsider_account = AccountFactory(name="Other Lab", owners=[outsider])
    outsider_project = ProjectFactory(
        account=outsider_account, redcap_instance=instance, owner=outsider
    )
    outsider_request = OnboardingRequest.objects.create(
        requester=outsider,
        status=OnboardingRequest.Status.DRAFT,
        redcap_instance=instance,
        redcap_project_id=888,
        project_title="Someone else's study",
    )
    users = {"owner": owner, "editor": editor, "viewer": viewer, "outsider": outsider}
    tokens = {name: api_token_create(user=user, scope="write") for name, user in users.items()}
    return SimpleNamespace(
        users=users,
        tokens=tokens,
        account=account,
        instance=instance,
        project=project,
        participant=participant,
        other_participant=other_participant,
        rule=rule,
        survey_rule=survey_rule,
        send=send,
        message=message,
        reply=reply,
        credit_pack=credit_pack,
        onboarding=onboarding,
        comment=comment,
        outsider_account=outsider_account,
        outsider_project=outsider_project,
        outsider_request=outsider_request,
        # Every id an address may need, by its name in the URLconf.
        kwargs={
            "project_id": project.pk,
            "participant_id": participant.pk,
            "rule_id": rule.pk,
            "send_id": send.pk,
            "message_id": message.pk,
            "reply_id": reply.pk,
            "survey_id": survey_rule.pk,
            "account_id": account.pk,
            "request_id": onboarding.pk,
        },
    )


@pytest.fixture
def world(db):
    return build_world()


def call(token: str | None, method: str, url: str, body=None, **extra):
    """One API call with `token` (None: anonymous); `body` is sent as JSON (a str as is)."""
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
    data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
    return Client().generic(
        method.upper(),
        url,
        data=data or "",
        content_type="application/json",
        **headers,
        **extra,
    )


@pytest.fixture
def api(world):
    """api(persona, method, url, body) with that persona's token ("anonymous": none)."""

    def _call(who: str, method: str, url: str, body=None, **extra):
        return call(world.tokens.get(who), method, url, body, **extra)

    return _call
