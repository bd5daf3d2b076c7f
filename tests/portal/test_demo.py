"""The demo `make run` seeds is a working project: linked to the REDCap sandbox and the phone
simulator, its fields mapped, its first sync queued, and seeding again changes nothing."""

import datetime
import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from portal import demo
from portal.models import AuditEvent
from projects.models import FieldMapping, Participant, Project, ProviderLink, RedcapLink, SyncRun
from projects.sandbox import services as sandbox
from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN, REDCAP_VERSION
from projects.services import links
from tests.factories import MembershipFactory, PlanFactory, ProjectFactory

DEMO_PASSWORD = "demo-password-for-tests"


@pytest.fixture(autouse=True)
def _demo(settings):
    settings.DEMO_PASSWORD = DEMO_PASSWORD
    store.reset()
    yield
    store.reset()


def seed():
    call_command("seed_demo", stdout=io.StringIO())


def state() -> dict:
    project = Project.objects.get()
    return {
        "links": list(RedcapLink.objects.values_list("project", "token_encrypted")),
        "providers": list(ProviderLink.objects.values("provider", "rate_per_second", "display")),
        "mappings": list(FieldMapping.objects.values()),
        "runs": list(SyncRun.objects.values_list("pk", "status")),
        "schedules": list(
            Schedule.objects.filter(func="projects.tasks.participant_sync").values_list(
                "name", "args"
            )
        ),
        "audit": AuditEvent.objects.filter(project_id=project.pk).count(),
    }


@pytest.mark.django_db
def test_the_demo_project_is_linked_mapped_and_has_its_first_sync_queued(settings, capsys):
    settings.SITE_URL = "http://127.0.0.1:8000"
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "Linked to the REDCap sandbox and the phone simulator; the first participant sync" in out

    project = Project.objects.get()
    link = RedcapLink.objects.get(project=project)
    assert project.redcap_instance.api_url == "http://127.0.0.1:8000/sandbox/redcap/api/"
    assert link.token == DEMO_TOKEN
    assert (link.redcap_project_title, link.redcap_version) == (
        "Demo: Healthy Habits Study",
        REDCAP_VERSION,
    )
    assert link.last_checked_at is None  # honest: not checked over HTTP yet
    assert link.linked_by.email == demo.RESEARCHER_EMAIL

    provider = ProviderLink.objects.get(project=project)
    assert (provider.provider, provider.rate_per_second) == ("sandbox", demo.DEMO_SEND_RATE)

    mapping = FieldMapping.objects.get(project=project)
    assert mapping.phone_field == "phone"
    assert mapping.withdrawn_logic == "[withdrawn] = '1'"
    assert mapping.date_fields == ["enrollment_date"]

    run = SyncRun.objects.get(project=project)
    assert run.status == SyncRun.Status.QUEUED  # nothing ran: no web server during the seed
    schedule = Schedule.objects.get(name=f"participant-sync-{run.pk}")
    assert (schedule.func, schedule.args, schedule.schedule_type) == (
        "projects.tasks.participant_sync",
        str(run.pk),
        Schedule.ONCE,
    )
    assert schedule.next_run <= timezone.now()
    assert not Participant.objects.exists()


@pytest.mark.django_db
def test_seeding_twice_leaves_the_same_state():
    seed()
    first = state()
    seed()
    assert state() == first


@pytest.mark.django_db
def test_seeding_again_keeps_what_the_researcher_changed():
    seed()
    ProviderLink.objects.update(rate_per_second=2)
    FieldMapping.objects.update(first_name_field="")
    SyncRun.objects.update(status=SyncRun.Status.SUCCEEDED)
    seed()
    assert ProviderLink.objects.get().rate_per_second == 2
    assert FieldMapping.objects.get().first_name_field == ""
    assert SyncRun.objects.count() == 1


@pytest.mark.django_db
def test_without_the_sandbox_the_demo_is_left_unlinked_and_says_so(settings, capsys):
    settings.SANDBOX_ENABLED = False
    call_command("seed_demo")
    assert "Not linked: SANDBOX_ENABLED is off" in capsys.readouterr().out
    assert Project.objects.exists()
    assert not RedcapLink.objects.exists()
    assert not ProviderLink.objects.exists()


def test_once_the_cluster_starts_the_first_sync_fills_the_demo(settings, live_server):
    """The web server is up (a live server here, `runserver` under `make run`); django-q2's
    scheduler picks up the queued first sync, which reads the sandbox over HTTP."""
    from django_q.brokers import get_broker
    from django_q.scheduler import scheduler

    settings.SITE_URL = live_server.url
    PlanFactory(name="Basic")  # a transactional test may run after another one emptied the plans
    seed()
    ours = Schedule.objects.get(func="projects.tasks.participant_sync")
    later = timezone.now() + datetime.timedelta(days=1)
    Schedule.objects.exclude(pk=ours.pk).update(next_run=later)  # only ours is due
    scheduler(broker=get_broker())  # what the cluster runs every 30 seconds (inline in tests)

    run = SyncRun.objects.get()
    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    assert (run.total, run.skipped_count) == (25, 7)
    assert Participant.objects.filter(withdrawn=True).count() == 1
    assert not Schedule.objects.filter(pk=ours.pk).exists()  # a ONCE schedule goes away
    project = Project.objects.get()
    owner = project.memberships.get().user
    result = links.redcap_link_test(project=project, actor=owner)  # the link, checked live
    assert result["project_title"] == "Demo: Healthy Habits Study"


# --- the sandbox-only link service -------------------------------------------------------------
@pytest.mark.django_db
def test_the_unchecked_sandbox_link_is_for_sandbox_projects_only(settings, researcher):
    real = ProjectFactory(redcap_project_id=101, owner=researcher)  # a real REDCap's PID 101
    with pytest.raises(ValidationError, match="is not the REDCap sandbox"):
        sandbox.redcap_link_set_sandbox(project=real, actor=researcher)
    not_sandbox_pid = ProjectFactory(redcap_project_id=4242, owner=researcher)
    with pytest.raises(ValidationError, match="Only a project of the enabled REDCap sandbox"):
        sandbox.redcap_link_set_sandbox(project=not_sandbox_pid, actor=researcher)
    settings.SANDBOX_ENABLED = False
    seeded = _sandbox_project(researcher)
    with pytest.raises(ValidationError, match="Only a project of the enabled REDCap sandbox"):
        sandbox.redcap_link_set_sandbox(project=seeded, actor=researcher)
    assert not RedcapLink.objects.exists()


@pytest.mark.django_db
def test_the_unchecked_sandbox_link_is_for_owners_only(researcher):
    project = _sandbox_project(researcher)
    editor = MembershipFactory(project=project, role="editor").user
    with pytest.raises(PermissionDenied):
        sandbox.redcap_link_set_sandbox(project=project, actor=editor)


def _sandbox_project(owner):
    from tests.factories import RedcapInstanceFactory

    instance = RedcapInstanceFactory(
        name="Sandbox", api_url="http://127.0.0.1:8000/sandbox/redcap/api/"
    )
    return ProjectFactory(redcap_instance=instance, redcap_project_id=101, owner=owner)
