import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.models import OnboardingRequest
from tests.factories import MembershipFactory, OnboardingRequestFactory, ProjectFactory

Status = OnboardingRequest.Status
pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next=/"


def test_a_new_researcher_is_told_what_to_do(as_user, researcher):
    response = as_user(researcher).get(reverse("dashboard"))
    page = response.content.decode()
    assert response.status_code == 200
    assert "No projects yet" in page
    assert "Request texting for your REDCap project." in page
    assert "No requests" in page
    assert reverse("onboarding-create") in page
    # Administration is not offered to researchers.
    assert "Server administration" not in page
    assert reverse("onboarding-queue") not in page
    assert reverse("audit-log") not in page


def test_a_researcher_sees_their_requests_with_status_and_their_projects(
    as_user, researcher, other_researcher
):
    OnboardingRequestFactory(
        requester=researcher, project_title="Sleep and Mood", status=Status.CHANGES_REQUESTED
    )
    OnboardingRequestFactory(requester=other_researcher, project_title="Someone else's request")
    mine = ProjectFactory(title="Heart Health", owner=researcher)
    viewer_of = ProjectFactory(title="Shared Study")
    MembershipFactory(project=viewer_of, user=researcher, role="viewer")
    ProjectFactory(title="Not Mine", owner=other_researcher)

    page = as_user(researcher).get(reverse("dashboard")).content.decode()
    assert "Sleep and Mood" in page
    assert "Changes requested" in page
    assert "Someone else" not in page
    assert "Heart Health" in page
    assert reverse("project-detail", args=[mine.pk]) in page
    assert "Shared Study" in page
    assert "Not Mine" not in page
    assert "Your projects" in page


def test_an_administrator_sees_the_pending_count_requests_by_status_and_all_projects(
    as_user, server_admin, researcher, other_researcher
):
    OnboardingRequestFactory.create_batch(3)
    OnboardingRequestFactory(status=Status.APPROVED)
    OnboardingRequestFactory(status=Status.REJECTED)
    OnboardingRequestFactory(status=Status.DRAFT, submitted_at=None)
    ProjectFactory(title="Heart Health", owner=researcher)
    ProjectFactory(title="Lung Study", owner=other_researcher)

    response = as_user(server_admin).get(reverse("dashboard"))
    page = response.content.decode()
    assert response.context["pending_count"] == 3
    assert '<div class="stat" id="pending-count">3</div>' in page
    assert "requests waiting for review" in page
    counts = {value: n for value, _label, n in response.context["status_counts"]}
    assert counts == {
        "draft": 1,
        "submitted": 3,
        "changes_requested": 0,
        "approved": 1,
        "rejected": 1,
        "withdrawn": 0,
    }
    assert "All projects" in page
    assert "Heart Health" in page
    assert "Lung Study" in page
    assert reverse("onboarding-queue") in page


def _count_queries(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("dashboard")).status_code == 200
    return len(ctx.captured_queries)


def _add_rows(user, n):
    for _ in range(n):
        OnboardingRequestFactory(requester=user)
        ProjectFactory(owner=user)


@pytest.mark.parametrize("persona", ["researcher", "server_admin"])
def test_the_dashboard_costs_the_same_with_5_or_100_rows(
    as_user, request, persona, django_assert_max_num_queries
):
    user = request.getfixturevalue(persona)
    client = as_user(user)
    _add_rows(user, 5)
    small = _count_queries(client)
    _add_rows(user, 95)
    with django_assert_max_num_queries(small):
        response = client.get(reverse("dashboard"))
    assert response.status_code == 200
    assert len(response.context["projects"]) == 50


# --- Each project's set-up and what is waiting ---------------------------------------------------
def _message(project, status, *, days_ago=0, **extra):
    """A text due (and last changed) `days_ago` days ago."""
    from django.utils import timezone

    from messaging.models import Message
    from tests.factories import ParticipantFactory

    now = timezone.now() - datetime.timedelta(days=days_ago)
    message = Message.objects.create(
        project=project,
        participant=ParticipantFactory(project=project),
        occurrence="x",
        dedup_key=f"dash-{Message.objects.count()}-{project.pk}-{status}",
        status=status,
        due_at=now,
        not_before=now,
        **extra,
    )
    if days_ago:
        Message.objects.filter(pk=message.pk).update(updated_at=now)
    return message


def _set_up_fully(project, user):
    from projects.models import RedcapLink, SyncRun
    from tests.factories import FieldMappingFactory, ProviderLinkFactory

    RedcapLink.objects.create(
        project=project,
        token_encrypted="x",
        token_last4="ABCD",
        token_fingerprint=f"fp-{project.pk}",
        linked_by=user,
    )
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project)
    SyncRun.objects.create(project=project, status=SyncRun.Status.SUCCEEDED)


def _row(page: str, title: str) -> str:
    start = page.index(f"<strong>{title}</strong>")
    return page[start : page.index("</tr>", start)]


def test_each_project_shows_its_set_up_state_and_the_next_step(as_user, researcher):
    from tests.factories import FieldMappingFactory

    new = ProjectFactory(title="Brand New", owner=researcher)
    half = ProjectFactory(title="Half Way", owner=researcher)
    ready = ProjectFactory(title="All Set", owner=researcher)
    _set_up_fully(ready, researcher)
    _set_up_fully(half, researcher)
    from projects.models import FieldMapping, SyncRun

    FieldMapping.objects.filter(project=half).delete()
    SyncRun.objects.filter(project=half).delete()
    page = as_user(researcher).get(reverse("dashboard")).content.decode()
    assert "0 of 4 done" in _row(page, "Brand New")
    assert reverse("project-redcap", args=[new.pk]) + '">link REDCap' in _row(page, "Brand New")
    assert "2 of 4 done" in _row(page, "Half Way")
    assert reverse("project-fields", args=[half.pk]) + '">map the fields' in _row(page, "Half Way")
    assert '<span class="badge badge-ok">Ready</span>' in _row(page, "All Set")
    assert FieldMappingFactory  # (used by _set_up_fully)


def test_each_project_shows_what_waits_on_the_team_with_links_to_it(as_user, researcher):
    from projects.models import ProviderLink

    busy = ProjectFactory(title="Busy Study", owner=researcher)
    quiet = ProjectFactory(title="Quiet Study", owner=researcher)
    _set_up_fully(busy, researcher)
    for _ in range(2):
        _message(busy, "held")
    _message(busy, "failed")
    _message(busy, "undelivered")
    _message(busy, "failed", days_ago=10)  # last month's news
    _message(busy, "unknown")
    _message(busy, "sent")
    _message(quiet, "sent")
    ProviderLink.objects.filter(project=busy).update(is_paused=True)

    page = as_user(researcher).get(reverse("dashboard")).content.decode()
    row = _row(page, "Busy Study")
    log = reverse("message-log", args=[busy.pk])
    assert f'href="{log}?status=held">2 held (over quota)</a>' in row
    assert f'href="{log}?status=failed,undelivered&amp;since=' in row
    assert "2 failed this week</a>" in row
    assert f'href="{log}?status=unknown">1 unconfirmed</a>' in row
    assert f'href="{reverse("project-provider", args=[busy.pk])}">Sending paused</a>' in row
    assert f'href="{reverse("rule-list", args=[busy.pk])}">0 active messages</a>' in row
    quiet_row = _row(page, "Quiet Study")
    assert "Nothing" in quiet_row
    assert reverse("rule-list", args=[quiet.pk]) in quiet_row
    assert reverse("message-log", args=[quiet.pk]) in quiet_row
    # What needs someone comes first.
    assert page.index("Busy Study") < page.index("Quiet Study")


def test_active_messages_are_counted_per_project(as_user, researcher):
    from tests.factories import MessageRuleFactory

    project = ProjectFactory(title="Counted", owner=researcher)
    MessageRuleFactory.create_batch(3, project=project)
    MessageRuleFactory(project=project, status="paused")
    MessageRuleFactory(project=ProjectFactory(owner=researcher))
    page = as_user(researcher).get(reverse("dashboard")).content.decode()
    assert ">3 active messages</a>" in _row(page, "Counted")


def test_attention_first_keeps_a_troubled_project_within_the_first_50(as_user, server_admin):
    for i in range(55):
        ProjectFactory(title=f"Calm {i:02d}")
    troubled = ProjectFactory(title="Zulu Trouble")
    _message(troubled, "held")
    response = as_user(server_admin).get(reverse("dashboard"))
    titles = [p.title for p in response.context["projects"]]
    assert len(titles) == 50 and titles[0] == "Zulu Trouble"


@pytest.mark.parametrize("persona", ["researcher", "server_admin"])
def test_the_waiting_counts_cost_the_same_with_few_or_many_messages(
    as_user, request, persona, django_assert_max_num_queries
):
    user = request.getfixturevalue(persona)
    client = as_user(user)
    first = ProjectFactory(owner=user)
    _set_up_fully(first, user)
    _message(first, "held")
    small = _count_queries(client)
    for i in range(8):
        project = ProjectFactory(owner=user)
        if i % 2:
            _set_up_fully(project, user)
        for status in ("held", "failed", "unknown", "sent", "queued"):
            _message(project, status)
    with django_assert_max_num_queries(small):
        response = client.get(reverse("dashboard"))
    assert sum(p.held_count for p in response.context["projects"]) == 9
