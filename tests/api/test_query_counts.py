"""Every list costs the same number of queries with 10 rows or 1,000 (no query per row)."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Account, AccountMembership, CreditPackRequest, Plan, UsagePeriod
from messaging.models import Conversation, Message, MessageRule, Reply
from portal.models import OnboardingComment, OnboardingRequest
from projects.models import Membership, Participant, Project
from tests.api.conftest import call

pytestmark = pytest.mark.django_db


def _projects(world, ids):
    user = world.users["viewer"]
    made = Project.objects.bulk_create(
        Project(
            account=world.account,
            redcap_instance=world.instance,
            redcap_project_id=100_000 + i,
            title=f"Study {i}",
            pi_name="P",
            pi_email="p@uni.test",
            irb_protocol="I",
        )
        for i in ids
    )
    Membership.objects.bulk_create(Membership(project=p, user=user) for p in made)


def _participants(world, ids):
    Participant.objects.bulk_create(
        Participant(
            project=world.project,
            record_id=str(1000 + i),
            consented=True,
            phone_fingerprint=f"fp-{i}",
            phone_last4=f"{i % 10000:04d}",
        )
        for i in ids
    )


def _rules(world, ids):
    MessageRule.objects.bulk_create(
        MessageRule(
            project=world.project,
            kind="reminder",
            name=f"Rule {i}",
            body="Hi",
            schedule="manual",
            created_by=world.users["owner"],
        )
        for i in ids
    )


def _messages(world, ids):
    now = timezone.now()
    Message.objects.bulk_create(
        Message(
            project=world.project,
            participant=world.participant if i % 2 else world.other_participant,
            rule=world.rule,
            occurrence=f"o{i}",
            dedup_key=f"bulk:{i}",
            due_at=now - datetime.timedelta(minutes=i),
            not_before=now,
            status="sent",
        )
        for i in ids
    )


def _replies(world, ids):
    now = timezone.now()
    Reply.objects.bulk_create(
        Reply(
            project=world.project,
            participant=world.participant,
            provider="sandbox",
            body="ok",
            phone_last4="0001",
            received_at=now - datetime.timedelta(minutes=i),
        )
        for i in ids
    )


def _inbox(world, ids):
    """Unread and flagged replies, some answering a text, some from unknown numbers."""
    now = timezone.now()
    Reply.objects.bulk_create(
        Reply(
            project=world.project,
            participant=None if i % 5 == 0 else world.participant,
            provider="sandbox",
            body="ok",
            phone_last4="0001",
            flag="possible_opt_out" if i % 3 == 0 else "",
            answers=world.message if i % 2 else None,
            received_at=now - datetime.timedelta(minutes=i),
        )
        for i in ids
    )


def _conversations(world, ids):
    """A text survey's conversations, each with its answers, in every state."""
    now = timezone.now()
    people = Participant.objects.bulk_create(
        Participant(
            project=world.project,
            record_id=f"c{i}",
            consented=True,
            phone_fingerprint=f"cfp-{i}",
            phone_last4="0002",
        )
        for i in ids
    )
    states = ["completed", "expired", "stopped", "ended", "completed", "open"]
    Conversation.objects.bulk_create(
        Conversation(
            rule=world.survey_rule,
            project=world.project,
            participant=person,
            state=states[i % len(states)],
            answers={"tc_walked": {"value": str(i % 2)}, "tc_walk_days": {"value": "3"}},
            started_at=now - datetime.timedelta(minutes=30),
            expires_at=now + datetime.timedelta(hours=1),
            finished_at=now - datetime.timedelta(minutes=i % 20),
        )
        for i, person in zip(ids, people, strict=True)
    )


def _accounts(world, ids):
    plan = Plan.objects.first()
    made = Account.objects.bulk_create(Account(name=f"Lab {i}", plan=plan) for i in ids)
    AccountMembership.objects.bulk_create(
        AccountMembership(account=a, user=world.users["viewer"]) for a in made
    )


def _periods(world, ids):
    first = datetime.date(1900, 1, 1)
    UsagePeriod.objects.bulk_create(
        UsagePeriod(
            account=world.account,
            start=first + datetime.timedelta(days=31 * i),
            end=first + datetime.timedelta(days=31 * i + 27),
            included=1000,
        )
        for i in ids
    )


def _credit_packs(world, ids):
    CreditPackRequest.objects.bulk_create(
        CreditPackRequest(
            account=world.account,
            packs=1,
            pack_size=1000,
            units=1000,
            requested_by=world.users["owner"] if i % 2 else world.users["editor"],
        )
        for i in ids
    )


def _onboarding(world, ids):
    OnboardingRequest.objects.bulk_create(
        OnboardingRequest(
            requester=world.users["viewer"],
            status="withdrawn",
            redcap_instance=world.instance,
            redcap_project_id=200_000 + i,
            project_title=f"Request {i}",
        )
        for i in ids
    )


def _comments(world, ids):
    OnboardingComment.objects.bulk_create(
        OnboardingComment(
            request=world.onboarding,
            author=world.users["owner"] if i % 2 else world.users["outsider"],
            body="hi",
        )
        for i in ids
    )


LISTS = {
    "api-project-list": ("viewer", _projects, lambda w: []),
    "api-participant-list": ("viewer", _participants, lambda w: [w.project.pk]),
    "api-rule-list": ("viewer", _rules, lambda w: [w.project.pk]),
    "api-message-list": ("viewer", _messages, lambda w: [w.project.pk]),
    "api-reply-list": ("viewer", _replies, lambda w: [w.project.pk]),
    "api-inbox-list": ("owner", _inbox, lambda w: [w.project.pk]),
    "api-survey-results": ("viewer", _conversations, lambda w: [w.project.pk, w.survey_rule.pk]),
    "api-account-list": ("viewer", _accounts, lambda w: []),
    "api-account-periods": ("viewer", _periods, lambda w: [w.account.pk]),
    "api-credit-pack-request-list": ("viewer", _credit_packs, lambda w: [w.account.pk]),
    "api-onboarding-request-list": ("viewer", _onboarding, lambda w: []),
    "api-onboarding-comment-list": ("owner", _comments, lambda w: [w.onboarding.pk]),
}


NOT_PAGED = {"api-survey-results"}  # one answer, however many conversations it sums up


def _queries(world, persona, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = call(world.tokens[persona], "GET", url)
    assert response.status_code == 200, response.content
    return len(queries)


def test_every_list_endpoint_is_measured():
    from tests.api.test_access import ROUTES

    lists = {name for name, method in ROUTES if method == "GET" and name.endswith(("-list", "s"))}
    lists -= {"api-schema", "api-docs", "api-health"}
    assert lists <= set(LISTS), lists - set(LISTS)


@pytest.mark.parametrize("name", sorted(LISTS))
def test_a_list_costs_the_same_queries_with_10_rows_or_1000(world, name):
    persona, make, args = LISTS[name]
    url = reverse(name, args=args(world)) + ("" if name in NOT_PAGED else "?limit=200")
    make(world, range(10))
    _queries(world, persona, url)  # the token's first use of the minute records it (once)
    few = _queries(world, persona, url)
    make(world, range(10, 1000))
    many = _queries(world, persona, url)
    assert many == few, f"{name}: {few} queries with 10 rows, {many} with 1,000"
