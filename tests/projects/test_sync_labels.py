"""Who started a participant sync: a person, or the schedule (then it says so)."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from projects.models import Project, SyncRun
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def test_a_scheduled_sync_is_labelled_scheduled_sync_not_with_a_persons_name(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    run = SyncRun.objects.create(project=project, requested_by=None)

    page = as_user(researcher).get(reverse("project-sync", args=[project.pk, run.pk]))

    html = page.content.decode()
    assert "Scheduled sync, started " in html
    assert "Riley Researcher" not in html.split('id="sync-started"')[1].split("</p>")[0]


def test_a_sync_someone_pressed_names_them(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    run = SyncRun.objects.create(project=project, requested_by=researcher)
    html = as_user(researcher).get(reverse("project-sync", args=[project.pk, run.pk]))
    assert "by Riley Researcher." in html.content.decode()
    assert "Scheduled sync" not in html.content.decode()


def test_the_demos_first_sync_is_a_scheduled_one(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.DEMO_PASSWORD = "a-demo-password-for-tests"
    call_command("seed_demo", stdout=io.StringIO())
    run = SyncRun.objects.get(project=Project.objects.get())
    assert run.requested_by is None
