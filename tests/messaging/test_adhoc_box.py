"""The text box to one participant: no silent cut at 1,600 characters, the message form's
preview (segments, cost) and its limit message."""

import pytest
from django.urls import reverse

from messaging.models import Message
from tests.factories import FieldMappingFactory, ParticipantFactory, ProjectFactory
from tests.factories import ProviderLinkFactory as LinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(researcher):
    project = ProjectFactory(owner=researcher)
    FieldMappingFactory(project=project)
    LinkFactory(project=project)
    return ParticipantFactory(project=project, record_id="7", first_name="Avery")


def _page(client, person) -> str:
    url = reverse("participant-detail", args=[person.project_id, person.pk])
    return client.get(url).content.decode()


def test_the_text_box_does_not_cut_a_long_paste_short(as_user, researcher, person):
    html = _page(as_user(researcher), person)
    box = html.split('name="body"')[1].split(">")[0]
    assert "maxlength" not in box


def test_the_text_box_has_the_message_forms_preview(as_user, researcher, person):
    html = _page(as_user(researcher), person)
    assert 'data-preview-panel="adhoc-preview"' in html and 'data-record-id="7"' in html
    for part in ("text", "encoding", "characters", "segments", "cost", "warning"):
        assert f'id="adhoc-preview-{part}"' in html, part


def test_the_preview_prices_a_text_to_one_participant_as_one_text(as_user, researcher, person):
    response = as_user(researcher).post(
        reverse("rule-preview", args=[person.project_id]),
        {
            "body": "Hi [first_name], " + "x" * 1650,
            "participant": person.pk,
            "recipients": "records",
            "record_ids": "7",
        },
    )
    preview = response.json()
    assert preview["text"].startswith("Hi Avery, ")
    assert (preview["recipients"], preview["cost"], preview["too_long"]) == (1, 1, True)
    assert preview["segments"] == 11


def test_a_text_over_1600_characters_is_refused_with_its_length_and_nothing_is_queued(
    as_user, researcher, person
):
    url = reverse("participant-detail", args=[person.project_id, person.pk])
    response = as_user(researcher).post(url, {"body": "y" * 1650})

    assert response.status_code == 200
    assert (
        "This text has 1,650 characters; carriers refuse texts over 1,600. Shorten it by 50."
        in response.content.decode()
    )
    assert "y" * 1650 in response.content.decode()  # the text is kept to shorten
    assert not Message.objects.exists()


def test_a_text_of_exactly_1600_characters_is_queued(as_user, researcher, person):
    url = reverse("participant-detail", args=[person.project_id, person.pk])
    as_user(researcher).post(url, {"body": "z" * 1600})
    assert Message.objects.get().adhoc_body == "z" * 1600
