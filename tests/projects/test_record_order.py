"""Record ids listed as REDCap lists them: whole numbers by value, then the others."""

import pytest
from django.urls import reverse

from projects.models import Participant
from projects.selectors import in_redcap_order
from tests.factories import FieldMappingFactory, ParticipantFactory, ProjectFactory

pytestmark = pytest.mark.django_db
TYPED = ["13", "2", "1", "20", "12", "12-10", "12-2", "A7", "3"]


def test_record_ids_sort_as_redcap_does_numbers_numerically(researcher):
    project = ProjectFactory(owner=researcher)
    for record in TYPED:
        ParticipantFactory(project=project, record_id=record)

    ordered = in_redcap_order(Participant.objects.filter(project=project))

    assert [p.record_id for p in ordered] == [
        "1",
        "2",
        "3",
        "12",
        "13",
        "20",
        "A7",
        "12-2",
        "12-10",
    ]


def test_the_previews_participant_list_is_in_redcap_order(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    FieldMappingFactory(project=project)
    for record in ["13", "2", "1", "20", "12"]:
        ParticipantFactory(project=project, record_id=record, first_name=f"P{record}")

    html = as_user(researcher).get(reverse("rule-create", args=[project.pk])).content.decode()

    shown = [html.index(f"Record {r} — P{r}") for r in ["1", "2", "12", "13", "20"]]
    assert shown == sorted(shown)


def test_the_participants_page_is_in_redcap_order(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    for record in ["10", "9", "100"]:
        ParticipantFactory(project=project, record_id=record, first_name=f"P{record}")
    html = as_user(researcher).get(reverse("project-participants", args=[project.pk]))
    html = html.content.decode()
    assert html.index(">9<") < html.index(">10<") < html.index(">100<")
