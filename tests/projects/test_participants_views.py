"""The participants page (filters, search, cost) and the sync with its progress JSON."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from projects.models import Membership, Participant, SyncRun
from tests.factories import MembershipFactory, ParticipantFactory, ProjectFactory

Issue = Participant.Issue


def url(project, **query):
    base = reverse("project-participants", args=[project.pk])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def rows(response) -> list[str]:
    return [p.record_id for p in response.context["page"].object_list]


@pytest.fixture
def project(researcher, db):
    project = ProjectFactory(title="Heart Health", owner=researcher)
    ParticipantFactory(project=project, record_id="1", first_name="Avery")
    ParticipantFactory(project=project, record_id="2", first_name="Blake")
    ParticipantFactory(project=project, record_id="10", first_name="Casey")
    ParticipantFactory(
        project=project,
        record_id="3",
        first_name="Finley",
        phone_encrypted="",
        phone_fingerprint="",
        phone_last4="",
        issue=Issue.NO_PHONE,
    )
    ParticipantFactory(
        project=project,
        record_id="4",
        first_name="Jordan",
        issue=Issue.UNKNOWN_TIME_ZONE,
        issue_detail="“Mars/Olympus” is not a time-zone name such as America/Chicago.",
    )
    ParticipantFactory(project=project, record_id="5", first_name="Noel", withdrawn=True)
    ParticipantFactory(project=project, record_id="6", first_name="Gone", in_redcap=False)
    ParticipantFactory(project=project, record_id="7", first_name="Kai", redcap_opted_out=True)
    ParticipantFactory(project=ProjectFactory(), record_id="1", first_name="Other project")
    return project


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("show", "expected"),
    [
        ("ready", ["1", "2", "10"]),
        ("not_usable", ["3", "4"]),
        ("withdrawn", ["5"]),
        ("gone", ["6"]),
        ("opted_out", ["7"]),
        ("all", ["1", "2", "3", "4", "5", "6", "7", "10"]),
        ("bogus", ["1", "2", "10"]),
    ],
)
def test_the_filters_show_the_right_participants_in_record_order(
    as_user, researcher, project, show, expected
):
    response = as_user(researcher).get(url(project, show=show))
    assert rows(response) == expected


@pytest.mark.django_db
def test_records_not_usable_are_listed_with_their_reason(as_user, researcher, project):
    page = as_user(researcher).get(url(project, show="not_usable")).content.decode()
    assert "Why not usable" in page
    assert "No phone number" in page
    assert "Unknown time zone" in page
    assert "Mars/Olympus" in page
    counts = as_user(researcher).get(url(project)).context["counts"]
    assert counts == {
        "total": 8,
        "ready": 3,
        "not_usable": 2,
        "withdrawn": 1,
        "opted_out": 1,
        "gone": 1,
        "optout_pending": 0,
    }


@pytest.mark.django_db
def test_participants_opted_out_in_redcap_have_their_own_view(as_user, researcher, project):
    client = as_user(researcher)
    page = client.get(url(project)).content.decode()
    assert 'Opted out in REDCap <span class="badge">1</span>' in page
    page = client.get(url(project, show="opted_out")).content.decode()
    assert page.count("Opted out in REDCap") == 3  # the pill, the badge and the reason
    overview = client.get(reverse("project-detail", args=[project.pk])).content.decode()
    assert "opted out in REDCap</a>" in overview


@pytest.mark.django_db
def test_opt_outs_waiting_for_redcap_are_counted_on_the_page(as_user, researcher, project):
    page = as_user(researcher).get(url(project)).content.decode()
    assert 'id="optout-pending"' not in page
    Participant.objects.filter(project=project, record_id__in=["1", "2"]).update(
        optout_write_pending="out"
    )
    page = as_user(researcher).get(url(project)).content.decode()
    assert "2 opt-outs recorded in StudyText are not in REDCap yet" in page


@pytest.mark.django_db
def test_phones_are_shown_as_their_last_4_digits_only(as_user, researcher, project):
    avery = Participant.objects.get(project=project, record_id="1")
    page = as_user(researcher).get(url(project)).content.decode()
    assert f"•••-•••-{avery.phone_last4}" in page
    assert avery.phone not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("term", "expected"),
    [("10", ["10"]), ("bla", ["2"]), ("ZZZZ", [])],
)
def test_search_finds_by_record_id_name_or_last_4_digits(
    as_user, researcher, project, term, expected
):
    response = as_user(researcher).get(url(project, show="all", q=term))
    assert rows(response) == expected


@pytest.mark.django_db
def test_search_by_the_last_4_digits(as_user, researcher, project):
    casey = Participant.objects.get(project=project, record_id="10")
    response = as_user(researcher).get(url(project, show="all", q=casey.phone_last4))
    assert rows(response) == ["10"]


@pytest.mark.django_db
def test_an_empty_project_says_what_to_do_first(as_user, researcher):
    empty = ProjectFactory(owner=researcher)
    page = as_user(researcher).get(url(empty)).content.decode()
    assert "No participants yet" in page
    assert reverse("project-redcap", args=[empty.pk]) in page
    assert 'id="sync-now" disabled' in page


@pytest.mark.django_db
def test_viewers_cannot_start_a_sync(as_user, project):
    viewer = MembershipFactory(project=project, role=Membership.Role.VIEWER).user
    page = as_user(viewer).get(url(project)).content.decode()
    assert "Sync from REDCap now" not in page


@pytest.mark.django_db
@pytest.mark.parametrize("page_name", ["project-participants", "project-detail"])
def test_the_page_costs_the_same_with_5_or_200_participants(
    as_user, researcher, django_assert_max_num_queries, page_name
):
    project = ProjectFactory(owner=researcher)
    client = as_user(researcher)
    page_url = reverse(page_name, args=[project.pk])
    for n in range(5):
        ParticipantFactory(project=project, record_id=str(n + 1))
    SyncRun.objects.create(project=project, status=SyncRun.Status.SUCCEEDED)
    with CaptureQueriesContext(connection) as small:
        assert client.get(page_url + "?show=all").status_code == 200
    Participant.objects.bulk_create(
        [
            Participant(
                project=project,
                record_id=str(n + 1),
                phone_last4=f"{n:04d}",
                consented=True,
                issue=Issue.NO_CONSENT if n % 3 else "",
                redcap_opted_out=n % 5 == 0,
                optout_write_pending="out" if n % 7 == 0 else "",
            )
            for n in range(5, 200)
        ]
    )
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = client.get(page_url + "?show=all")
    if page_name == "project-participants":
        assert len(response.context["page"].object_list) == 100  # one page of a hundred


# --- the sync, over the sandbox ---------------------------------------------------------------
def test_starting_a_sync_shows_its_progress_and_what_it_found(as_user, researcher, mapped_project):
    client = as_user(researcher)
    response = client.post(reverse("project-sync-start", args=[mapped_project.pk]), follow=True)
    run = SyncRun.objects.get(project=mapped_project)
    assert response.redirect_chain[-1][0] == reverse(
        "project-sync", args=[mapped_project.pk, run.pk]
    )
    page = response.content.decode()
    assert '<progress max="100" value="100"' in page
    assert "Finished" in page
    assert f'<span data-field="processed">{run.total}</span> of' in page
    assert "See records not usable" in page

    data = client.get(
        reverse("project-sync", args=[mapped_project.pk, run.pk]),
        HTTP_ACCEPT="application/json",
    ).json()
    assert data == {
        "status": "succeeded",
        "status_display": "Finished",
        "total": 25,
        "processed": 25,
        "percent": 100,
        "created": 25,
        "updated": 0,
        "skipped": run.skipped_count,
        "gone": 0,
        "error": "",
        "done": True,
    }
    assert run.skipped_count == 7
    listing = client.get(url(mapped_project, show="not_usable"))
    assert len(rows(listing)) == 7


@pytest.mark.django_db
def test_progress_of_a_running_sync_reads_as_a_fraction(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    run = SyncRun.objects.create(
        project=project, status=SyncRun.Status.RUNNING, total=40, processed=10
    )
    client = as_user(researcher)
    sync_url = reverse("project-sync", args=[project.pk, run.pk])
    data = client.get(sync_url + "?format=json").json()
    assert (data["percent"], data["done"], data["status_display"]) == (25, False, "Running")
    page = client.get(sync_url).content.decode()
    assert 'data-done="0"' in page  # the page polls the JSON until it is done
    assert f'data-poll-url="{sync_url}?format=json"' in page
    assert "You can leave this page; the sync goes on." in page


@pytest.mark.django_db
def test_a_sync_cannot_start_before_the_link_and_the_mapping(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    response = as_user(researcher).post(
        reverse("project-sync-start", args=[project.pk]), follow=True
    )
    assert "Link the project&#x27;s REDCap API token before syncing" in response.content.decode()
    assert not SyncRun.objects.exists()


@pytest.mark.django_db
def test_another_projects_sync_run_is_404(as_user, researcher):
    mine = ProjectFactory(owner=researcher)
    theirs = SyncRun.objects.create(project=ProjectFactory())
    response = as_user(researcher).get(reverse("project-sync", args=[mine.pk, theirs.pk]))
    assert response.status_code == 404


def test_a_sync_left_running_is_marked_failed_when_a_new_one_starts(researcher, mapped_project):
    import datetime

    from django.utils import timezone

    from projects.services import sync

    stale = SyncRun.objects.create(project=mapped_project, status=SyncRun.Status.RUNNING)
    SyncRun.objects.filter(pk=stale.pk).update(
        created_at=timezone.now() - datetime.timedelta(hours=1)
    )
    fresh = sync.sync_run_start(project=mapped_project, actor=researcher)
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == SyncRun.Status.FAILED
    assert "stopped before it finished" in stale.error
    assert fresh.status == SyncRun.Status.SUCCEEDED


def test_an_unexpected_error_fails_the_run_instead_of_leaving_it_running(
    researcher, mapped_project, monkeypatch
):
    from projects.services import sync

    def broken(*args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(sync, "_participant_values", broken)
    run = SyncRun.objects.create(project=mapped_project, requested_by=researcher)
    with pytest.raises(KeyError):
        sync.sync_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == SyncRun.Status.FAILED
    assert "unexpected error" in run.error
