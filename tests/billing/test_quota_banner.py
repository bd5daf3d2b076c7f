"""The quota banner on every page: who sees which account, and every link in it opens for the
person who sees it (account owners, account members, project members who are not on the
account, server administrators on or off the account, outsiders)."""

import html
import re

import pytest
from django.urls import reverse

from billing.models import AccountMembership
from billing.services import quota_reserve
from projects.models import Membership
from tests.factories import (
    AccountFactory,
    MembershipFactory,
    ProjectFactory,
    ServerAdminFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
BANNER_RE = re.compile(r'<div class="quota-banner".*?</div>', re.S)


def banner_of(client) -> str:
    found = BANNER_RE.search(client.get(reverse("dashboard")).content.decode())
    return html.unescape(found.group(0)) if found else ""


def links(banner: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', banner)


def words(banner: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", banner).split())


@pytest.fixture
def people(owner, member, project, server_admin):
    project_only = UserFactory(email="pat@uni.test", full_name="Pat Project-Editor")
    MembershipFactory(project=project, user=project_only, role=Membership.Role.EDITOR)
    admin_on_account = ServerAdminFactory(email="ada@uni.test")
    AccountMembership.objects.create(
        account=project.account, user=admin_on_account, role=AccountMembership.Role.MEMBER
    )
    return {
        "owner": owner,
        "member": member,
        "project_only": project_only,
        "admin": server_admin,
        "admin_on_account": admin_on_account,
        "outsider": UserFactory(email="out@uni.test"),
    }


@pytest.fixture
def near(project, clock):
    clock.local(2026, 11, 11, 12, 0)
    assert quota_reserve(project=project, units=850)
    return project.account


@pytest.mark.parametrize(
    "who", ["owner", "member", "project_only", "admin", "admin_on_account", "outsider"]
)
def test_every_link_in_the_banner_opens_for_the_person_who_sees_it(as_user, people, near, who):
    client = as_user(people[who])
    banner = banner_of(client)
    for url in links(banner):
        assert client.get(url).status_code == 200, f"{who} is sent to {url}, which does not open"


def test_who_sees_what(as_user, people, near):
    detail = reverse("billing-account-detail", args=[near.pk])
    credits = reverse("billing-credit-pack-request", args=[near.pk])
    everyone = reverse("billing-admin-accounts")
    seen = {who: banner_of(as_user(person)) for who, person in people.items()}

    assert "Sleep Lab has used 85%" in words(seen["owner"])
    assert links(seen["owner"]) == [detail, credits]
    assert "Sleep Lab has used 85%" in words(seen["member"])
    assert links(seen["member"]) == [detail]  # the credit-pack page is for owners (403)
    assert "See usage (its owners can add credits)" in words(seen["member"])
    # On a project of the account but not on the account: its page would be a 404.
    assert seen["project_only"] == ""
    assert as_user(people["project_only"]).get(detail).status_code == 404
    assert links(seen["admin"]) == [everyone]
    assert "1 account has used 80% or more" in words(seen["admin"])
    assert links(seen["admin_on_account"]) == [detail, everyone]
    assert seen["outsider"] == ""


def test_an_account_below_80_percent_shows_no_banner(as_user, owner, project, clock):
    clock.local(2026, 11, 11, 12, 0)
    assert quota_reserve(project=project, units=799)
    assert banner_of(as_user(owner)) == ""


def test_the_banner_costs_the_same_queries_for_one_account_or_five(
    as_user, owner, near, instance, django_assert_max_num_queries
):
    client = as_user(owner)
    client.get(reverse("dashboard"))  # warm the session and the dashboard's own caches
    with django_assert_max_num_queries(100) as one:
        assert banner_of(client).count("See usage") == 1
    for n in range(4):
        account = AccountFactory(name=f"Lab {n}", plan=near.plan, owners=[owner])
        quota_reserve(project=ProjectFactory(account=account, redcap_instance=instance), units=900)
    with django_assert_max_num_queries(len(one.captured_queries)):
        assert banner_of(client).count("See usage") == 5
