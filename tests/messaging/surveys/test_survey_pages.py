"""The team's view of text surveys: the rule form's section (fields asked and refused, the
worst-case cost), the results page, the participant page's questions and answers and an
answer REDCap has not taken yet (retried)."""

import pytest
from django.urls import reverse

from messaging.models import Conversation, MessageRule
from messaging.services import conversations
from projects.models import RedcapLink
from tests.factories import UserFactory
from tests.messaging.surveys.test_conversation import (  # noqa: F401 (fixtures)
    reply,
    start,
    survey_rule,
    texted,
)

pytestmark = pytest.mark.django_db(transaction=True)


def form_data(person, **extra):
    data = {
        "kind": "text_survey",
        "name": "Check-in by text",
        "body": "Hi [first_name], a few questions from the study.",
        "instrument": "text_checkin",
        "event": "",
        "recipients": "records",
        "record_ids": person.record_id,
        "schedule": "manual",
        "send_time": "10:00",
        "offset_days": "0",
        "survey-start": "at_once",
        "survey-start_word": "YES",
        "survey-invalid_text": "Sorry, we could not read that.",
        "survey-max_invalid": "2",
        "survey-closing_text": "Thanks!",
        "survey-time_limit_hours": "24",
        "survey-reminder_hours": "",
        "survey-reminder_text": "",
        "survey-expiry_text": "Closed, thank you.",
    }
    data.update(extra)
    return data


def test_an_editor_creates_a_text_survey_and_sees_what_is_asked_and_its_cost(
    synced, researcher, as_user
):
    client = as_user(researcher)
    person = synced.people[0]
    form = client.get(reverse("rule-create", args=[synced.project.pk])).content.decode()
    assert 'id="text-survey-settings"' in form and 'value="text_survey"' in form
    response = client.post(reverse("rule-create", args=[synced.project.pk]), form_data(person))
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = MessageRule.objects.get(name="Check-in by text")
    assert rule.kind == "text_survey" and rule.text_survey.closing_text == "Thanks!"
    assert rule.text_survey.time_limit.total_seconds() == 24 * 3600
    page = client.get(response.url).content.decode()
    assert "Worst case per participant:" in page
    assert f"{rule.text_survey.cost_texts} texts" in page
    assert "tc_photo" in page and "file upload" in page.lower()  # refused, with the reason


def test_the_form_says_what_is_wrong_in_the_survey_section(synced, researcher, as_user):
    client = as_user(researcher)
    person = synced.people[0]
    bad = form_data(
        person,
        **{"survey-reminder_hours": "30", "survey-reminder_text": "", "survey-start": "word"},
        **{"survey-start_word": "STOP"},
    )
    page = client.post(reverse("rule-create", args=[synced.project.pk]), bad).content.decode()
    assert "use less than the time limit" in page
    assert "means STOP or HELP" in page
    assert not MessageRule.objects.filter(kind="text_survey").exists()


def test_a_viewer_cannot_create_a_text_survey(synced, as_user):
    viewer = UserFactory()
    from projects.models import Membership

    Membership.objects.create(project=synced.project, user=viewer, role=Membership.Role.VIEWER)
    response = as_user(viewer).post(
        reverse("rule-create", args=[synced.project.pk]), form_data(synced.people[0])
    )
    assert response.status_code == 403
    assert not MessageRule.objects.filter(kind="text_survey").exists()


def test_results_and_the_participant_page_show_the_answers(
    synced, researcher, as_user, django_assert_max_num_queries
):
    people = synced.people[:3]
    rule = survey_rule(synced.project, researcher, people[0])
    MessageRule.objects.filter(pk=rule.pk).update(record_ids=[p.record_id for p in people])
    rule.refresh_from_db()
    start(rule, researcher)
    for person, mood in zip(people[:2], ("4", "5"), strict=True):
        reply(person, "no")
        reply(person, "true")
        reply(person, mood)
    conversation = Conversation.objects.get(rule=rule, participant=people[0])
    for _ in range(30):
        conversation.refresh_from_db()
        if not conversation.is_open:
            break
        reply(people[0], "8" if conversation.current_field == "tc_sleep_hours" else "skip")
    client = as_user(researcher)
    url = reverse("survey-results", args=[synced.project.pk, rule.pk])
    with django_assert_max_num_queries(15):
        page = client.get(url).content.decode()
    assert 'id="started">3<' in page and 'id="completed">1<' in page
    assert 'id="completion-rate">33%<' in page
    assert "Good" in page and "Very good" in page and 'aria-label="Answers to tc_mood"' in page
    detail = client.get(
        reverse("participant-detail", args=[synced.project.pk, people[0].pk])
    ).content.decode()
    assert 'id="text-surveys"' in detail and "Completed" in detail
    assert "How was your mood this week?" in detail and "Good" in detail


def test_a_write_redcap_refuses_is_shown_on_the_participant_page_and_retried(
    synced, researcher, as_user
):
    person = synced.people[0]
    rule = survey_rule(synced.project, researcher, person)
    start(rule, researcher)
    link = RedcapLink.objects.get(project=synced.project)
    good = link.token_encrypted
    from projects import crypto

    RedcapLink.objects.filter(pk=link.pk).update(token_encrypted=crypto.encrypt("B" * 32))
    reply(person, "no")
    conversation = Conversation.objects.get(rule=rule)
    assert conversation.unwritten == ["tc_walked"] and conversation.write_error
    page = (
        as_user(researcher)
        .get(reverse("participant-detail", args=[synced.project.pk, person.pk]))
        .content.decode()
    )
    assert "Not in REDCap yet:" in page
    RedcapLink.objects.filter(pk=link.pk).update(token_encrypted=good)
    Conversation.objects.filter(pk=conversation.pk).update(
        write_failed_at=conversation.write_failed_at - conversations.WRITE_RETRY
    )
    assert conversations.conversations_tick()["written"] == 1
    conversation.refresh_from_db()
    assert conversation.unwritten == [] and conversation.write_error == ""
    texted(person)


def test_check_the_instrument_before_saving(synced, researcher, as_user):
    client = as_user(researcher)
    url = reverse("survey-check", args=[synced.project.pk])
    page = client.post(url, form_data(synced.people[0])).content.decode()
    assert "Worst case per participant:" in page and "tc_photo" in page
    assert not MessageRule.objects.exists()  # nothing saved
    bad = client.post(url, form_data(synced.people[0], instrument="diary")).content.decode()
    assert "“diary” is not an instrument of this REDCap project." in bad


def test_a_viewer_cannot_check_an_instrument(synced, as_user):
    from projects.models import Membership

    viewer = UserFactory()
    Membership.objects.create(project=synced.project, user=viewer, role=Membership.Role.VIEWER)
    url = reverse("survey-check", args=[synced.project.pk])
    assert as_user(viewer).post(url, form_data(synced.people[0])).status_code == 403
