"""What the messaging pages tell a study coordinator (the review pass): words, counts, links and
empty states, and the bugs that review found."""

import datetime
import html
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging import selectors
from messaging.models import Message, MessageRule, Send
from messaging.services import outbox
from messaging.views.common import sending_hours as _sending_hours
from projects.models import Membership, ProviderLink, SyncRun
from tests.factories import (
    FieldMappingFactory,
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _set_status(messages, status: str, error: str = "") -> None:
    Message.objects.filter(pk__in=[m.pk for m in messages]).update(status=status, error=error)


@pytest.fixture
def scene(researcher):
    """A project with one hand send of 6 texts: 1 sent, 1 failed, 1 held, 1 unconfirmed,
    1 skipped, 1 still queued."""
    project = ProjectFactory(owner=researcher, title="Healthy Habits", always_open=True)
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project)
    people = [ParticipantFactory(project=project, record_id=str(i + 1)) for i in range(6)]
    rule = MessageRuleFactory(project=project, name="Clinic closed", body="Closed today.")
    send = outbox.send_now(rule=rule, actor=researcher)
    texts = list(Message.objects.filter(send=send).order_by("participant__record_id"))
    _set_status(texts[0:1], "sent")
    _set_status(texts[1:2], "failed", "The number is not a mobile phone.")
    _set_status(texts[2:3], "held")
    _set_status(texts[3:4], "unknown", "The provider did not answer in time.")
    _set_status(texts[4:5], "skipped", "Opted out.")
    _set_status(texts[5:6], "queued")
    return {"project": project, "rule": rule, "send": send, "texts": texts, "people": people}


def _page(client, url, **params) -> str:
    response = client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


# --- The rule form --------------------------------------------------------------------------------
def _label(page: str, field: str) -> str:
    start = page.index(f'<label for="id_{field}">')
    return page[start : page.index("</label>", start)]


def test_fields_required_for_their_choice_are_not_called_optional(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    page = _page(as_user(researcher), reverse("rule-create", args=[project.pk]))
    for field in ("once_date", "start_date", "until_date", "max_occurrences", "date_field"):
        assert "(optional)" not in _label(page, field), field
    for field in ("filter_logic", "record_ids"):
        assert "(optional)" not in _label(page, field), field
    # Truly optional ones still say so.
    assert "(optional)" in _label(page, "event")
    assert "(optional)" in _label(page, "max_sends")
    assert "Give an end date, a number of times, or both" in page


def test_the_schedule_is_not_labelled_when_twice(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    page = _page(as_user(researcher), reverse("rule-create", args=[project.pk]))
    assert 'id="label-trigger">Trigger</label>' in page
    assert "<legend>When</legend>" in page


def test_the_rule_form_states_the_projects_sending_hours(as_user, researcher):
    project = ProjectFactory(
        owner=researcher,
        send_window_start=datetime.time(9, 0),
        send_window_end=datetime.time(20, 0),
        send_days=[0, 1, 2, 3, 4],
    )
    page = _page(as_user(researcher), reverse("rule-create", args=[project.pk]))
    assert "Sending hours: between 9:00 a.m. and 8:00 p.m., Monday to Friday" in page
    # The old sentence called the sending window "quiet hours".
    assert "wait for quiet hours to end" not in page


def test_without_mapped_dates_the_relative_schedule_says_where_to_add_one(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    FieldMappingFactory(project=project, date_fields=[])
    page = _page(as_user(researcher), reverse("rule-create", args=[project.pk]))
    assert "No REDCap date field is mapped yet: add one under Set-up → Fields." in page


@pytest.mark.parametrize(
    ("start", "end", "days", "words"),
    [
        ((0, 0), (23, 59), list(range(7)), "at any hour, every day"),
        ((9, 0), (20, 0), [0, 1, 2, 3, 4], "between 9:00 a.m. and 8:00 p.m., Monday to Friday"),
        ((8, 30), (17, 0), [5, 6], "between 8:30 a.m. and 5:00 p.m., on Sat, Sun"),
    ],
)
def test_sending_hours_in_words(start, end, days, words):
    project = ProjectFactory.build(
        send_window_start=datetime.time(*start), send_window_end=datetime.time(*end), send_days=days
    )
    assert _sending_hours(project) == words


# --- The messages list ----------------------------------------------------------------------------
def test_the_list_counts_held_and_unconfirmed_texts_and_links_to_them(as_user, researcher, scene):
    page = _page(as_user(researcher), reverse("rule-list", args=[scene["project"].pk]))
    log = reverse("message-log", args=[scene["project"].pk])
    rule = scene["rule"].pk
    assert f'href="{log}?rule={rule}&amp;status=held">1 held</a>' in page
    assert f'href="{log}?rule={rule}&amp;status=unknown">1 unconfirmed</a>' in page
    since = selectors.rules_since().isoformat()
    failed = f'href="{log}?rule={rule}&amp;status=failed,undelivered&amp;since={since}">1</a>'
    assert failed in page
    assert "Sent and failed count the texts due since" in page
    assert "Held texts wait because the account has used this month's messages" in page
    assert "When <span" in page and "(participant's time)" in page


def test_the_list_names_the_missing_set_up_steps(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    page = _page(as_user(researcher), reverse("rule-list", args=[project.pk]))
    start = page.index('id="setup-missing"')
    note = page[start : page.index("</div>", start)]
    for step, url in [
        ("link REDCap", reverse("project-redcap", args=[project.pk])),
        ("link the SMS provider", reverse("project-provider", args=[project.pk])),
        ("map the fields", reverse("project-fields", args=[project.pk])),
        ("sync the participants", reverse("project-participants", args=[project.pk])),
    ]:
        assert f'<a href="{url}">{step}</a>' in note
    # Once everything is done the note goes.
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project)
    SyncRun.objects.create(project=project, status=SyncRun.Status.SUCCEEDED)
    from projects.models import RedcapLink

    RedcapLink.objects.create(
        project=project,
        token_encrypted="x",
        token_last4="ABCD",
        token_fingerprint="f",
        linked_by=researcher,
    )
    page = _page(as_user(researcher), reverse("rule-list", args=[project.pk]))
    assert 'id="setup-missing"' not in page


def test_a_paused_provider_is_announced_on_the_list(as_user, researcher, scene):
    ProviderLink.objects.filter(project=scene["project"]).update(is_paused=True)
    page = _page(as_user(researcher), reverse("rule-list", args=[scene["project"].pk]))
    assert "Sending is paused" in page


def test_the_empty_list_offers_one_new_message_button_and_tells_viewers_who_can(
    as_user, researcher
):
    project = ProjectFactory(owner=researcher)
    page = _page(as_user(researcher), reverse("rule-list", args=[project.pk]))
    assert page.count(reverse("rule-create", args=[project.pk])) == 1
    viewer = MembershipFactory(project=project, role=Membership.Role.VIEWER).user
    page = _page(as_user(viewer), reverse("rule-list", args=[project.pk]))
    assert reverse("rule-create", args=[project.pk]) not in page
    assert "The project's owners and editors can add messages." in page


def test_archived_messages_are_one_click_away(as_user, researcher, scene):
    MessageRuleFactory(project=scene["project"], name="Old one", status="archived")
    client = as_user(researcher)
    url = reverse("rule-list", args=[scene["project"].pk])
    page = _page(client, url)
    assert "Old one" not in page
    assert f'href="{url}?archived=1">1 archived message</a>' in page
    response = client.get(url, {"archived": "1"})
    assert [r.name for r in response.context["rules"]] == ["Old one"]
    assert "← Current messages" in response.content.decode()


def test_the_list_costs_the_same_with_1_or_20_rules(
    as_user, researcher, scene, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = as_user(researcher)
    url = reverse("rule-list", args=[scene["project"].pk])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for _ in range(19):
        rule = MessageRuleFactory(project=scene["project"])
        outbox.send_now(rule=rule, actor=researcher)
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)


# --- A rule's page --------------------------------------------------------------------------------
def test_a_rules_page_links_each_record_and_counts_participants_of_hand_sends(
    as_user, researcher, scene
):
    project = scene["project"]
    page = _page(as_user(researcher), reverse("rule-detail", args=[project.pk, scene["rule"].pk]))
    person = scene["people"][0]
    assert f'href="{reverse("participant-detail", args=[project.pk, person.pk])}"' in page
    assert "— 6 participants, by Riley Researcher" in page


def test_a_paused_rule_offers_no_send_now(as_user, researcher, scene):
    MessageRule.objects.filter(pk=scene["rule"].pk).update(status="paused")
    page = _page(
        as_user(researcher),
        reverse("rule-detail", args=[scene["project"].pk, scene["rule"].pk]),
    )
    assert 'id="send-now"' not in page
    assert "Activate" in page


# --- Send progress --------------------------------------------------------------------------------
def test_the_progress_page_reads_as_sentences_and_counts_every_outcome(as_user, researcher, scene):
    url = reverse("send-detail", args=[scene["project"].pk, scene["send"].pk])
    client = as_user(researcher)
    data = client.get(url, {"format": "json"}).json()
    assert data["headline"] == "Sending to 6 participants"
    assert data["percent_label"] == "4 of 6 done (66%)"
    assert (data["sent"], data["failed"], data["held"], data["unknown"]) == (1, 1, 1, 1)
    page = _page(client, url)
    assert 'class="progress-label" data-field="percent_label">4 of 6 done (66%)</span>' in page
    assert 'data-field="unknown">1</div>' in page
    assert 'data-show-if="held" >' in page  # the held note is shown
    log = reverse("message-log", args=[scene["project"].pk])
    assert f'href="{log}?send={scene["send"].pk}&amp;status=failed,undelivered">failed</a>' in page
    assert f'href="{log}?send={scene["send"].pk}">See these texts</a>' in page

    # The queued one goes out: done, except the held one.
    _set_status(scene["texts"][5:6], "sent")
    data = client.get(url, {"format": "json"}).json()
    assert data["done"] is True
    assert data["headline"] == "Done, except 1 held (over quota), of 6 participants"
    _set_status(scene["texts"][2:3], "cancelled")
    data = client.get(url, {"format": "json"}).json()
    assert data["headline"] == "Done: 6 participants"
    assert data["percent_label"] == "6 of 6 done (100%)"
    assert 'data-show-if="held" hidden' in _page(client, url)


# --- The message log ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {"since": "2026-02-30"},
        {"until": "2026-13-01"},
        {"since": "yesterday", "until": "99999-01-01"},
    ],
)
def test_impossible_dates_in_the_log_address_filter_nothing_instead_of_failing(
    as_user, researcher, scene, params
):
    project = scene["project"]
    client = as_user(researcher)
    response = client.get(reverse("message-log", args=[project.pk]), params)
    assert response.status_code == 200  # was a server error (ValueError from parse_date)
    assert len(response.context["page"].object_list) == 6
    csv = client.get(reverse("message-log-csv", args=[project.pk]), params)
    assert csv.status_code == 200
    assert len(b"".join(csv.streaming_content).decode().strip().splitlines()) == 7


def test_an_unknown_status_is_no_filter_and_does_not_say_match(as_user, researcher, scene):
    page = _page(
        as_user(researcher), reverse("message-log", args=[scene["project"].pk]), status="nope"
    )
    assert "6 texts, newest first" in page
    assert "Clear filters" not in page


def test_the_log_filters_by_send_and_by_a_group_of_statuses(as_user, researcher, scene):
    project = scene["project"]
    other = outbox.send_now(rule=scene["rule"], actor=researcher)
    client = as_user(researcher)
    url = reverse("message-log", args=[project.pk])
    response = client.get(url, {"send": scene["send"].pk})
    assert {m.send_id for m in response.context["page"].object_list} == {scene["send"].pk}
    assert "sent by hand on" in response.content.decode()
    _set_status(Message.objects.filter(send=other)[:1], "undelivered")
    response = client.get(url, {"status": "failed,undelivered"})
    assert sorted(m.status for m in response.context["page"].object_list) == [
        "failed",
        "undelivered",
    ]
    assert "2 texts match" in response.content.decode()
    assert '<option value="failed,undelivered" selected>' in response.content.decode()


@pytest.mark.parametrize(
    ("group", "texts"),
    [("sent,delivered", 1), ("queued,sending", 1), ("skipped,cancelled", 1)],
)
def test_the_log_shows_each_group_of_statuses_that_a_count_links_to(
    as_user, researcher, scene, group, texts
):
    """The overview and the progress page link their counts to groups of statuses: the filter
    names the group instead of saying "Any"."""
    url = reverse("message-log", args=[scene["project"].pk])
    response = as_user(researcher).get(url, {"status": group})
    assert response.context["page"].count == texts
    assert f'<option value="{group}" selected>' in response.content.decode()


def test_the_progress_pages_sent_count_links_to_sent_and_delivered_texts(
    as_user, researcher, scene
):
    _set_status(scene["texts"][5:6], "delivered")
    url = reverse("send-detail", args=[scene["project"].pk, scene["send"].pk])
    page = _page(as_user(researcher), url)
    assert 'data-field="sent">2</div>' in page
    assert f"?send={scene['send'].pk}&amp;status=sent,delivered" in page


def test_editors_can_cancel_queued_and_held_texts_from_the_log(as_user, researcher, scene):
    project = scene["project"]
    url = reverse("message-log", args=[project.pk])
    page = _page(as_user(researcher), url)
    cancels = re.findall(r'action="/projects/\d+/log/(\d+)/cancel/"', page)
    held, queued = scene["texts"][2], scene["texts"][5]
    assert sorted(int(c) for c in cancels) == sorted([held.pk, queued.pk])
    viewer = MembershipFactory(project=project, role=Membership.Role.VIEWER).user
    assert "/cancel/" not in _page(as_user(viewer), url)


def test_cancelling_returns_to_the_filtered_log_and_never_to_another_site(
    as_user, researcher, scene
):
    project = scene["project"]
    client = as_user(researcher)
    back = reverse("message-log", args=[project.pk]) + "?status=held"
    held, queued = scene["texts"][2], scene["texts"][5]
    response = client.post(reverse("message-cancel", args=[project.pk, held.pk]), {"next": back})
    assert response.status_code == 302 and response.url == back
    response = client.post(
        reverse("message-cancel", args=[project.pk, queued.pk]),
        {"next": "https://evil.example/phish"},
    )
    assert response.url == reverse("message-log", args=[project.pk])
    assert set(
        Message.objects.filter(pk__in=[held.pk, queued.pk]).values_list("status", flat=True)
    ) == {"cancelled"}


def test_the_log_says_how_many_texts_and_in_which_time_zone(as_user, scene):
    owner = UserFactory(time_zone="America/Los_Angeles")
    MembershipFactory(project=scene["project"], user=owner, role=Membership.Role.OWNER)
    page = _page(as_user(owner), reverse("message-log", args=[scene["project"].pk]))
    assert "6 texts, newest first. Times are in America/Los_Angeles." in page


def test_an_empty_log_says_what_to_do_and_a_filtered_one_how_to_clear(as_user, researcher):
    project = ProjectFactory(owner=researcher)
    url = reverse("message-log", args=[project.pk])
    page = _page(as_user(researcher), url)
    assert "No texts yet" in page and reverse("rule-list", args=[project.pk]) in page
    page = _page(as_user(researcher), url, status="failed")
    assert "No texts match these filters" in page and "Clear the filters" in page


def test_the_csv_cannot_smuggle_a_spreadsheet_formula(as_user, researcher, scene):
    MessageRule.objects.filter(pk=scene["rule"].pk).update(name='=HYPERLINK("http://x","y")')
    _set_status(scene["texts"][1:2], "failed", "+SUM(A1:A2)")
    body = b"".join(
        as_user(researcher)
        .get(reverse("message-log-csv", args=[scene["project"].pk]))
        .streaming_content
    ).decode()
    assert "'=HYPERLINK" in body and "'+SUM(A1:A2)" in body
    assert not re.search(r'(^|,)"?[=+@]', body, re.MULTILINE)


# --- A participant's page -------------------------------------------------------------------------
def test_the_participant_page_leads_back_and_lets_editors_cancel_a_waiting_text(
    as_user, researcher, scene
):
    project = scene["project"]
    queued = scene["texts"][5]
    url = reverse("participant-detail", args=[project.pk, queued.participant_id])
    page = _page(as_user(researcher), url)
    assert f'href="{reverse("project-participants", args=[project.pk])}">← All participants' in page
    assert reverse("message-cancel", args=[project.pk, queued.pk]) in page
    assert f'<input type="hidden" name="next" value="{url}">' in page
    assert "due " in page  # a queued text is due, not sent


def test_the_ad_hoc_form_says_what_it_may_pipe_and_when_it_goes(as_user, researcher, scene):
    project = scene["project"]
    person = scene["people"][0]
    client = as_user(researcher)
    url = reverse("participant-detail", args=[project.pk, person.pk])
    page = _page(client, url)
    assert "You can pipe [first_name] and the mapped dates." in page
    assert "Sending hours: at any hour, every day, in the participant's time" in page
    assert f'data-preview-url="{reverse("rule-preview", args=[project.pk])}"' in page
    response = client.post(url, {"body": "See you soon."}, follow=True)
    flash = html.unescape(response.content.decode())
    assert "Text queued for record 1: it goes out within the project's sending hours" in flash
    assert "within the participant's quiet hours" not in flash


# --- The phone simulator --------------------------------------------------------------------------
def test_each_phone_links_to_its_participant(as_user, researcher, scene):
    project = scene["project"]
    page = _page(as_user(researcher), reverse("phone-simulator", args=[project.pk]))
    for person in scene["people"]:
        assert reverse("participant-detail", args=[project.pk, person.pk]) in page


def test_a_send_by_hand_is_listed_with_who_sent_it(as_user, researcher, scene):
    page = _page(as_user(researcher), reverse("rule-list", args=[scene["project"].pk]))
    assert "— 6 participants" in page and "by Riley Researcher" in page
    assert Send.objects.count() == 1
    assert timezone.now()  # (the time shown is the viewer's; covered by the log test)


def test_the_preview_counts_chosen_records_split_as_the_form_splits_them(
    as_user, researcher, scene
):
    response = as_user(researcher).post(
        reverse("rule-preview", args=[scene["project"].pk]),
        {"body": "Hi", "recipients": "records", "record_ids": "1;2\n3, 4 999"},
    )
    assert response.json()["recipients"] == 4  # "1;2" used to count as one unknown record


def test_the_held_note_links_the_account_only_for_people_who_can_open_it(
    as_user, researcher, scene
):
    from billing.models import AccountMembership

    project = scene["project"]
    account_url = reverse("billing-account-detail", args=[project.account_id])
    client = as_user(researcher)
    pages = [
        reverse("rule-list", args=[project.pk]),
        reverse("send-detail", args=[project.pk, scene["send"].pk]),
    ]
    for url in pages:  # on the project, not on its billing account: the link would be a 404
        page = html.unescape(_page(client, url))
        assert account_url not in page
        assert f"the owners of the account “{project.account}” add more messages" in page
        assert client.get(account_url).status_code == 404
    AccountMembership.objects.create(account=project.account, user=researcher, role="member")
    for url in pages:
        assert f'<a href="{account_url}">more messages are added</a>' in _page(client, url)
