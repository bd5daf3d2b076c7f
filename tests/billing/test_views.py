import csv
import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import (
    Account,
    CreditPackRequest,
    DailyUsage,
    Plan,
    PlanChangeRequest,
    ProjectUsage,
)
from billing.services import quota_reserve
from messaging.models import Message
from portal.models import AuditEvent
from tests.factories import (
    AccountFactory,
    CreditPackRequestFactory,
    PlanChangeRequestFactory,
    ProjectFactory,
    UsagePeriodFactory,
)

pytestmark = [
    pytest.mark.django_db,
    # WhiteNoise warns that STATIC_ROOT does not exist (nothing is collected in tests).
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

PERSONAS = ["owner", "member", "outsider", "admin", "anonymous"]


@pytest.fixture
def person(request, owner, member, other_researcher, server_admin):
    return {
        "owner": owner,
        "member": member,
        "outsider": other_researcher,
        "admin": server_admin,
        "anonymous": None,
    }


def url(name, *args, **query):
    path = reverse(name, args=args)
    return path + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


# --- Access matrix ------------------------------------------------------------------------------

ACCOUNT_PAGES = {
    # view name: expected status for owner, member, outsider, admin, anonymous
    "billing-account-detail": (200, 200, 404, 200, 302),
    "billing-account-csv": (200, 200, 404, 200, 302),
    "billing-credit-pack-request": (200, 403, 404, 403, 302),
    "billing-plan-change-request": (200, 403, 404, 403, 302),
}
ADMIN_PAGES = {
    "billing-admin-accounts": (403, 403, 403, 200, 302),
    "billing-review": (403, 403, 403, 200, 302),
    "billing-admin-csv": (403, 403, 403, 200, 302),
    "billing-account-list": (200, 200, 200, 200, 302),
}


@pytest.mark.parametrize("name", ACCOUNT_PAGES)
@pytest.mark.parametrize("who", PERSONAS)
def test_account_pages_access_matrix(as_user, person, account, project, name, who):
    response = as_user(person[who]).get(url(name, account.pk))
    assert response.status_code == ACCOUNT_PAGES[name][PERSONAS.index(who)]
    if who == "anonymous":
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", ADMIN_PAGES)
@pytest.mark.parametrize("who", PERSONAS)
def test_administration_pages_access_matrix(as_user, person, account, name, who):
    response = as_user(person[who]).get(url(name))
    assert response.status_code == ADMIN_PAGES[name][PERSONAS.index(who)]


@pytest.mark.parametrize("who", PERSONAS)
def test_only_an_administrator_can_decide(as_user, person, account, owner, who):
    pack = CreditPackRequestFactory(account=account, requested_by=owner)
    change = PlanChangeRequestFactory(account=account, requested_by=owner)
    client = as_user(person[who])
    r1 = client.post(url("billing-credit-pack-decide", pack.pk), {"decision": "approve"})
    r2 = client.post(
        url("billing-plan-change-decide", change.pk), {"decision": "reject", "note": "No."}
    )
    expected = {"admin": 302, "anonymous": 302}.get(who, 403)
    assert (r1.status_code, r2.status_code) == (expected, expected)
    pack.refresh_from_db()
    change.refresh_from_db()
    if who == "admin":
        assert (pack.status, change.status) == ("approved", "rejected")
    else:
        assert (pack.status, change.status) == ("requested", "requested")


def test_a_member_posting_a_pack_request_is_refused_with_a_reason(as_user, member, account):
    response = as_user(member).post(url("billing-credit-pack-request", account.pk), {"packs": 1})
    assert response.status_code == 403
    assert "Only an owner of the account “Sleep Lab”" in response.content.decode()
    assert not CreditPackRequest.objects.exists()


def test_an_outsider_posting_a_pack_request_gets_404(as_user, other_researcher, account):
    response = as_user(other_researcher).post(
        url("billing-credit-pack-request", account.pk), {"packs": 1}
    )
    assert response.status_code == 404
    assert not CreditPackRequest.objects.exists()


def test_a_member_posting_a_plan_change_is_refused_with_a_reason(as_user, member, account):
    pro = Plan.objects.get(name="Pro")
    response = as_user(member).post(
        url("billing-plan-change-request", account.pk), {"to_plan": pro.pk, "note": "More"}
    )
    assert response.status_code == 403
    assert "Only an owner of the account “Sleep Lab”" in response.content.decode()
    assert not PlanChangeRequest.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="plan_change").exists()
    account.refresh_from_db()
    assert account.plan.name == "Basic"


def test_an_outsider_posting_a_plan_change_gets_404(as_user, other_researcher, account):
    pro = Plan.objects.get(name="Pro")
    response = as_user(other_researcher).post(
        url("billing-plan-change-request", account.pk), {"to_plan": pro.pk}
    )
    assert response.status_code == 404
    assert "Sleep Lab" not in response.content.decode()
    assert not PlanChangeRequest.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="plan_change").exists()
    account.refresh_from_db()
    assert account.plan.name == "Basic"


# --- The account page ---------------------------------------------------------------------------


def test_the_account_page_shows_the_gauge_chart_projects_and_projection(
    as_user, owner, account, project, clock
):
    clock.local(2026, 11, 11, 12, 0)  # day 11 of 30, half-way through the day
    UsagePeriodFactory(account=account, used=700, credits=200)
    ProjectUsage.objects.create(project=project, period=account.periods.get(), units=700)
    DailyUsage.objects.create(account=account, day=datetime.date(2026, 11, 3), units=450)

    response = as_user(owner).get(url("billing-account-detail", account.pk))
    html = response.content.decode()

    assert response.status_code == 200
    assert 'id="gauge-used">700<' in html
    assert 'id="gauge-included">1,000<' in html
    assert 'id="gauge-credits">200<' in html
    assert "70%" in html
    # 700 in 10.5 days: 66.7 a day; 1,000 included run out on day 16, 1,200 on day 19.
    assert "the quota runs out on <strong>Thursday, November 19</strong>" in html
    assert "the included messages on November 16" in html
    assert "Tue, Nov 3: 450 messages" in html  # the chart's bar for the 3rd
    assert "Sleep and Mood" in html
    assert "Request credit packs" in html


def test_a_member_sees_the_page_without_the_owners_buttons(as_user, member, account, project):
    html = as_user(member).get(url("billing-account-detail", account.pk)).content.decode()
    assert "Request credit packs" not in html
    assert "Its owners request credit packs" in html


def test_a_month_without_usage_yet_shows_the_credits_brought_forward(
    as_user, owner, account, clock
):
    clock.local(2026, 10, 20, 12, 0)
    UsagePeriodFactory(account=account, used=1100, credits=300)
    clock.local(2026, 11, 2, 12, 0)
    html = as_user(owner).get(url("billing-account-detail", account.pk)).content.decode()
    assert "November 2026" in html
    assert 'id="gauge-credits">200<' in html
    assert "Nothing sent yet this month" in html
    assert account.periods.count() == 1  # reading never starts a period


def test_a_past_period_can_be_opened(as_user, owner, account, clock):
    clock.local(2026, 10, 20, 12, 0)
    october = UsagePeriodFactory(account=account, used=400)
    clock.local(2026, 11, 2, 12, 0)
    UsagePeriodFactory(account=account, used=3)
    html = (
        as_user(owner)
        .get(url("billing-account-detail", account.pk, period=october.pk))
        .content.decode()
    )
    assert "October 2026" in html
    assert "This period is over: 400 messages used" in html


def test_last_month_can_be_opened_before_this_month_has_any_usage(as_user, owner, account, clock):
    clock.local(2026, 10, 20, 12, 0)
    october = UsagePeriodFactory(account=account, used=400)
    clock.local(2026, 11, 2, 12, 0)  # November began; nothing reserved yet, so no row for it
    client = as_user(owner)

    current = client.get(url("billing-account-detail", account.pk)).content.decode()
    assert "November 2026" in current
    assert f'href="?period={october.pk}"' in current  # the "View" link to October ...

    html = client.get(url("billing-account-detail", account.pk, period=october.pk))
    html = html.content.decode()
    assert "October 2026" in html  # ... opens October, not the empty November
    assert "November 2026" not in html
    assert "This period is over: 400 messages used" in html


def test_the_current_period_opened_by_id_is_shown_as_current(as_user, owner, account, clock):
    clock.local(2026, 11, 11, 12, 0)
    november = UsagePeriodFactory(account=account, used=300)
    html = (
        as_user(owner)
        .get(url("billing-account-detail", account.pk, period=november.pk))
        .content.decode()
    )
    assert "November 2026" in html and "past period" not in html
    assert "day 11 of 30" in html


def test_another_accounts_period_is_not_shown(as_user, owner, account, clock):
    clock.local(2026, 11, 2, 12, 0)
    foreign = UsagePeriodFactory(account=AccountFactory(), used=999)
    html = (
        as_user(owner)
        .get(url("billing-account-detail", account.pk, period=foreign.pk))
        .content.decode()
    )
    assert "999" not in html


def test_the_accounts_list_shows_each_account_with_its_usage(
    as_user, owner, account, instance, clock
):
    clock.local(2026, 11, 11, 12, 0)
    UsagePeriodFactory(account=account, used=850)
    AccountFactory(name="Not mine")
    html = as_user(owner).get(url("billing-account-list")).content.decode()
    assert "Sleep Lab" in html and "Not mine" not in html
    assert "(85%)" in html


def test_the_accounts_list_has_a_helpful_empty_state(as_user, other_researcher):
    html = as_user(other_researcher).get(url("billing-account-list")).content.decode()
    assert "You are not on a billing account yet" in html


# --- Forms: bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(("packs", "message"), [("0", "at least one"), ("-3", "at least one")])
def test_the_pack_form_refuses_zero_and_negative_counts(as_user, owner, account, packs, message):
    response = as_user(owner).post(url("billing-credit-pack-request", account.pk), {"packs": packs})
    assert response.status_code == 200
    assert f"Ask for {message} pack." in response.content.decode()
    assert not CreditPackRequest.objects.exists()


def test_the_pack_form_sends_a_request(as_user, owner, account, server_admin):
    client = as_user(owner)
    response = client.post(
        url("billing-credit-pack-request", account.pk), {"packs": "2", "note": "Busy month"}
    )
    assert response.status_code == 302
    assert CreditPackRequest.objects.get().units == 2000
    page = client.get(response["Location"]).content.decode()
    assert "Asked for 2 packs (2,000 messages)" in page


def test_the_plan_form_refuses_the_current_plan_with_a_clear_message(as_user, owner, account):
    basic = Plan.objects.get(name="Basic")
    response = as_user(owner).post(
        url("billing-plan-change-request", account.pk), {"to_plan": basic.pk}
    )
    assert response.status_code == 200
    assert "already on the Basic plan. Choose a different plan." in response.content.decode()
    assert not PlanChangeRequest.objects.exists()


def test_the_plan_form_sends_a_request(as_user, owner, account):
    pro = Plan.objects.get(name="Pro")
    response = as_user(owner).post(
        url("billing-plan-change-request", account.pk), {"to_plan": pro.pk}
    )
    assert response.status_code == 302
    assert PlanChangeRequest.objects.get().to_plan == pro


def test_rejecting_without_a_note_changes_nothing_and_says_why(
    as_user, server_admin, account, owner
):
    pack = CreditPackRequestFactory(account=account, requested_by=owner)
    response = as_user(server_admin).post(
        url("billing-credit-pack-decide", pack.pk), {"decision": "reject", "note": ""}, follow=True
    )
    assert "Nothing changed: Say why" in response.content.decode()
    pack.refresh_from_db()
    assert pack.status == "requested"


def test_the_review_page_lists_what_waits(as_user, server_admin, account, owner):
    CreditPackRequestFactory(account=account, requested_by=owner, packs=4, note="Big wave")
    PlanChangeRequestFactory(account=account, requested_by=owner)
    html = as_user(server_admin).get(url("billing-review")).content.decode()
    assert "4,000" in html and "Big wave" in html
    assert "Basic → <strong>Plus</strong>" in html


# --- Administrators' list -----------------------------------------------------------------------


def test_administrators_see_every_account_sortable_by_usage(as_user, server_admin, clock):
    clock.local(2026, 11, 11, 12, 0)
    for name, used in [("Low", 100), ("High", 950), ("Mid", 500)]:
        UsagePeriodFactory(account=AccountFactory(name=name), used=used)

    def names(sort):
        rows = as_user(server_admin).get(url("billing-admin-accounts", sort=sort)).context["page"]
        return [row.account.name for row in rows.object_list]

    assert names("-usage") == ["High", "Mid", "Low"]
    assert names("usage") == ["Low", "Mid", "High"]
    assert names("name") == ["High", "Low", "Mid"]
    assert names("-overrun")[0] == "High"  # 950 in 10.5 days: far past 1,000 by the 30th
    html = as_user(server_admin).get(url("billing-admin-accounts")).content.decode()
    assert "95%" in html and "over</span>" in html


# --- CSV ----------------------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_the_csv_has_units_and_credits_per_project_and_period(
    as_user, owner, account, project, instance, clock
):
    other = ProjectFactory(account=account, redcap_instance=instance, title="=cmd|' /C calc'!A0")
    clock.local(2026, 11, 11, 12, 0)
    UsagePeriodFactory(account=account, used=990, credits=100)
    assert quota_reserve(project=project, units=30)  # 10 included, 20 credits
    assert quota_reserve(project=other, units=10)  # credits

    response = as_user(owner).get(url("billing-account-csv", account.pk))
    rows = read_csv(response)

    assert response["Content-Type"] == "text/csv"
    assert [(r["project"], r["units"], r["included_units"], r["credit_units"]) for r in rows] == [
        ("'=cmd|' /C calc'!A0", "10", "2", "8"),  # a formula is never a formula
        ("Sleep and Mood", "30", "8", "22"),
    ]
    assert {r["period"] for r in rows} == {"2026-11"}
    assert AuditEvent.objects.filter(action="account.usage_exported").exists()


def test_the_administrators_csv_covers_every_account_for_a_month(
    as_user, server_admin, project, instance, clock
):
    clock.local(2026, 11, 11, 12, 0)
    quota_reserve(project=project, units=5)
    quota_reserve(project=ProjectFactory(redcap_instance=instance), units=7)
    rows = read_csv(as_user(server_admin).get(url("billing-admin-csv", month="2026-11")))
    assert sorted(int(r["units"]) for r in rows) == [5, 7]
    assert read_csv(as_user(server_admin).get(url("billing-admin-csv", month="2026-10"))) == []


# --- The quota banner ---------------------------------------------------------------------------


def test_the_banner_warns_account_members_from_80_percent(
    as_user, owner, member, other_researcher, server_admin, project, clock
):
    clock.local(2026, 11, 11, 12, 0)
    assert quota_reserve(project=project, units=850)

    for person in (owner, member):
        html = as_user(person).get(reverse("dashboard")).content.decode()
        assert "has used 85% of its 1,000 included messages this month" in html
    assert (
        "quota-banner" not in as_user(other_researcher).get(reverse("dashboard")).content.decode()
    )
    admin_html = as_user(server_admin).get(reverse("dashboard")).content.decode()
    assert "1 account has used 80% or more" in admin_html


def test_the_banner_says_when_messages_are_held(as_user, owner, project, clock):
    clock.local(2026, 11, 11, 12, 0)
    assert quota_reserve(project=project, units=1000)
    html = as_user(owner).get(reverse("dashboard")).content.decode()
    assert "new ones are held, never dropped" in html
    assert "Dec 1" in html


# --- Query counts do not grow with the data ------------------------------------------------------


def build(
    account, instance, *, projects: int, months: int, messages: int, now: datetime.datetime
) -> None:
    """`projects` projects with usage this month, each with a participant and `messages` texts
    to them in every status, and `months` past months with usage on every day (this month's days
    too)."""
    from billing.models import UsagePeriod
    from billing.services.quota import month_bounds
    from projects.models import Participant, Project

    Project.objects.bulk_create(
        ProjectFactory.build(account=account, redcap_instance=instance) for _ in range(projects)
    )
    participants = Participant.objects.bulk_create(
        Participant(project=p, record_id="1", consented=True) for p in account.projects.all()
    )
    statuses = list(Message.Status)
    Message.objects.bulk_create(
        Message(
            project_id=participant.project_id,
            participant=participant,
            occurrence=f"{n}",
            dedup_key=f"billing-test:{participant.pk}:{n}",
            status=statuses[n % len(statuses)],
            due_at=now - datetime.timedelta(minutes=n),
            not_before=now - datetime.timedelta(minutes=n),
            body="Time for today's survey.",
            segments=1,
            units=1,
            reserved_at=now - datetime.timedelta(minutes=n),
        )
        for participant in participants
        for n in range(messages)
    )
    today = now.date()
    start = month_bounds(today)[0]
    for _ in range(months):
        start = month_bounds(start - datetime.timedelta(days=1))[0]
    periods = []
    while start <= today:
        end = month_bounds(start)[1]
        periods.append(
            UsagePeriod(
                account=account,
                start=start,
                end=end,
                included=1000,
                used=900,
                closed_at=None if end >= today else now,
            )
        )
        start = end + datetime.timedelta(days=1)
    UsagePeriod.objects.bulk_create(periods)
    first, current = periods[0], periods[-1]
    ProjectUsage.objects.bulk_create(
        ProjectUsage(project=p, period=current, units=1) for p in account.projects.all()
    )
    DailyUsage.objects.bulk_create(
        DailyUsage(account=account, day=first.start + datetime.timedelta(days=n), units=3)
        for n in range((today - first.start).days + 1)
    )


@pytest.mark.parametrize(
    ("view", "admin"),
    [
        ("billing-account-detail", False),
        ("billing-account-list", False),
        ("billing-admin-accounts", True),
        ("billing-review", True),
    ],
)
def test_page_queries_do_not_grow_with_projects_messages_days_or_accounts(
    as_user, owner, server_admin, instance, clock, django_assert_max_num_queries, view, admin
):
    now = clock.local(2026, 11, 11, 12, 0)
    client = as_user(server_admin if admin else owner)

    def get(account) -> None:
        args = [account.pk] if view == "billing-account-detail" else []
        assert client.get(reverse(view, args=args)).status_code == 200

    small = AccountFactory(name="Small", owners=[owner])
    build(small, instance, projects=10, months=0, messages=1, now=now)
    CreditPackRequestFactory(account=small, requested_by=owner)
    with CaptureQueriesContext(connection) as baseline:
        get(small)

    large = AccountFactory(name="Large", owners=[owner])
    # 1,000 projects with 3,000 messages, ~1,100 days
    build(large, instance, projects=1000, months=36, messages=3, now=now)
    assert Message.objects.filter(project__account=large).count() == 3000
    CreditPackRequest.objects.bulk_create(
        CreditPackRequestFactory.build(account=large, requested_by=owner) for _ in range(1000)
    )
    Account.objects.bulk_create(AccountFactory.build(plan=small.plan) for _ in range(1000))
    with django_assert_max_num_queries(len(baseline)):
        get(large)


def test_an_administrator_without_an_account_is_sent_to_all_accounts(as_user, server_admin):
    page = as_user(server_admin).get(reverse("billing-account-list")).content.decode()
    assert reverse("billing-admin-accounts") in page
    assert "Request texting for a project" not in page
