"""Billing fixtures: an account with an owner and a member, its projects, and a settable clock."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone

from billing.models import AccountMembership
from tests.factories import AccountFactory, PlanFactory, ProjectFactory

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


@pytest.fixture
def plan(db):
    return PlanFactory(name="Basic", project_limit=4, monthly_messages=1000, pack_size=1000)


@pytest.fixture
def owner(researcher):
    return researcher


@pytest.fixture
def member(db):
    from tests.factories import UserFactory

    return UserFactory(email="mel@uni.test", full_name="Mel Member")


@pytest.fixture
def account(plan, owner, member):
    account = AccountFactory(name="Sleep Lab", plan=plan, owners=[owner])
    AccountMembership.objects.create(
        account=account, user=member, role=AccountMembership.Role.MEMBER
    )
    return account


@pytest.fixture
def project(account, instance, owner):
    return ProjectFactory(account=account, redcap_instance=instance, title="Sleep and Mood")


@pytest.fixture
def clock(monkeypatch):
    """clock.set(datetime) freezes django.utils.timezone.now() at that instant."""

    class Clock:
        def set(self, when: datetime.datetime) -> datetime.datetime:
            monkeypatch.setattr(timezone, "now", lambda: when)
            return when

        def local(self, *args, tz=NEW_YORK) -> datetime.datetime:
            return self.set(datetime.datetime(*args, tzinfo=tz))

    return Clock()
