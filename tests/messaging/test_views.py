"""Messaging pages and routes: the access matrix, bad input, and what each page shows."""

import pytest
from django.urls import reverse

from messaging.models import Message, MessageRule
from messaging.services import outbox
from portal.models import AuditEvent
from projects.models import Membership
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


@pytest.fixture
def world(researcher, server_admin):
    project = ProjectFactory(owner=researcher, always_open=True)
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project)
    person = ParticipantFactory(project=project, record_id="7", first_name="Ana")
    rule = MessageRuleFactory(project=project, body="Hi [first_name]")
    send = outbox.send_now(rule=rule, actor=researcher)
    message = Message.objects.get()
    people = {
        "owner": researcher,
        "editor": MembershipFactory(project=project, role=Membership.Role.EDITOR).user,
        "viewer": MembershipFactory(project=project, role=Membership.Role.VIEWER).user,
        "outsider": UserFactory(),
        "admin": server_admin,
        "anonymous": None,
    }
    return {
        "project": project,
        "rule": rule,
        "send": send,
        "message": message,
        "person": person,
        **{f"user_{k}": v for k, v in people.items()},
    }


def urls(w):
    p = w["project"].pk
    return {
        "rules": reverse("rule-list", args=[p]),
        "rule": reverse("rule-detail", args=[p, w["rule"].pk]),
        "send": reverse("send-detail", args=[p, w["send"].pk]),
        "log": reverse("message-log", args=[p]),
        "participant": reverse("participant-detail", args=[p, w["person"].pk]),
        "provider": reverse("project-provider", args=[p]),
        "phones": reverse("phone-simulator", args=[p]),
    }


READ_PAGES = ["rules", "rule", "send", "log", "participant", "provider", "phones"]


@pytest.mark.parametrize("who", ["owner", "editor", "viewer", "admin"])
# Not "page": that name is pytest-playwright's browser fixture, and borrowing it drags the
# browser parametrization (and with it the transactional e2e tests, which flush the seeded plans
# and groups) in among the ordinary database tests.
@pytest.mark.parametrize("page_name", READ_PAGES)
def test_members_and_administrators_read_every_page(world, as_user, who, page_name):
    response = as_user(world[f"user_{who}"]).get(urls(world)[page_name])
    assert response.status_code == 200


@pytest.mark.parametrize("page_name", READ_PAGES)
def test_an_outsider_gets_404_and_anonymous_gets_the_sign_in_page(world, as_user, page_name):
    url = urls(world)[page_name]
    assert as_user(world["user_outsider"]).get(url).status_code == 404
    response = as_user(None).get(url)
    assert response.status_code == 302 and reverse("login") in response.url


@pytest.mark.parametrize(
    ("who", "status"),
    [("owner", 302), ("editor", 302), ("viewer", 403), ("outsider", 404), ("admin", 302)],
)
def test_send_now_is_for_owners_and_editors(world, as_user, who, status):
    Message.objects.update(status=Message.Status.CANCELLED)  # nobody has it: one new text
    before = Message.objects.count()
    response = as_user(world[f"user_{who}"]).post(
        reverse("rule-send-now", args=[world["project"].pk, world["rule"].pk])
    )
    assert response.status_code == status
    assert Message.objects.count() == (before + 1 if status == 302 else before)


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("outsider", 404)])
def test_rule_status_and_creation_are_refused_to_viewers_and_outsiders(world, as_user, who, status):
    client = as_user(world[f"user_{who}"])
    p, r = world["project"].pk, world["rule"].pk
    assert (
        client.post(reverse("rule-status", args=[p, r]), {"status": "paused"}).status_code == status
    )
    assert client.get(reverse("rule-create", args=[p])).status_code == status
    assert (
        client.post(
            reverse("participant-detail", args=[p, world["person"].pk]), {"body": "hi"}
        ).status_code
        == status
    )
    world["rule"].refresh_from_db()
    assert world["rule"].status == MessageRule.Status.ACTIVE


def test_a_tampered_post_naming_another_projects_rule_is_404(world, as_user):
    other = MessageRuleFactory(project=ProjectFactory())
    response = as_user(world["user_owner"]).post(
        reverse("rule-send-now", args=[world["project"].pk, other.pk])
    )
    assert response.status_code == 404
    assert not Message.objects.filter(rule=other).exists()


def test_the_preview_counts_segments_and_cost(world, as_user):
    response = as_user(world["user_editor"]).post(
        reverse("rule-preview", args=[world["project"].pk]),
        {"body": "Hi [first_name] ☺", "participant": world["person"].pk, "recipients": "all"},
    )
    data = response.json()
    assert data["text"] == "Hi Ana ☺"
    assert data["encoding"] == "UCS-2" and data["ucs2_char"] == "☺"
    assert data["segments"] == 1 and data["recipients"] == 1 and data["cost"] == 1
    assert data["remaining"] >= 0


def test_with_a_segment_quota_the_preview_costs_each_segment(world, as_user, settings):
    settings.QUOTA_UNIT = "segment"
    response = as_user(world["user_editor"]).post(
        reverse("rule-preview", args=[world["project"].pk]),
        {"body": "Hi ☺ " + "x" * 80, "recipients": "all"},  # UCS-2: two segments
    )
    data = response.json()
    assert (data["segments"], data["recipients"]) == (2, 1)
    assert (data["cost"], data["unit"]) == (2, "segment")


def test_the_preview_says_its_count_is_before_the_redcap_filter(world, as_user):
    # Counting a filter's matches would cost REDCap calls on every keystroke: the preview counts
    # the textable participants and says so; the send itself asks REDCap (test_release_values).
    client = as_user(world["user_editor"])
    url = reverse("rule-preview", args=[world["project"].pk])
    everyone = client.post(url, {"body": "Hi", "recipients": "all"}).json()
    filtered = client.post(url, {"body": "Hi", "recipients": "filter"}).json()
    assert everyone["recipients_note"] == ""
    assert filtered["recipients_note"] == "before the REDCap filter"
    assert filtered["recipients"] == everyone["recipients"]


def test_the_preview_flags_unknown_piping(world, as_user):
    data = (
        as_user(world["user_owner"])
        .post(reverse("rule-preview", args=[world["project"].pk]), {"body": "Hi [dob]"})
        .json()
    )
    assert data["unknown"] == ["dob"]


def test_csv_export_is_audited_and_masks_phones(world, as_user):
    response = as_user(world["user_viewer"]).get(
        reverse("message-log-csv", args=[world["project"].pk])
    )
    body = b"".join(response.streaming_content).decode()
    assert "record_id" in body.splitlines()[0]
    assert world["person"].phone not in body
    assert world["person"].phone_last4 in body
    assert AuditEvent.objects.filter(action="message_log.exported").exists()


def test_the_send_progress_json(world, as_user):
    data = as_user(world["user_viewer"]).get(urls(world)["send"] + "?format=json").json()
    assert data["total"] == 1
    assert data["sent"] + data["queued"] + data["skipped"] == 1


def test_the_log_page_costs_the_same_with_10_or_300_messages(
    world, as_user, django_assert_max_num_queries
):
    client = as_user(world["user_owner"])
    url = urls(world)["log"]
    client.get(url)
    with django_assert_max_num_queries(15) as few:
        client.get(url)
    project = world["project"]
    people = [ParticipantFactory(project=project) for _ in range(30)]
    rules = [MessageRuleFactory(project=project) for _ in range(10)]
    for rule in rules:
        outbox.send_now(rule=rule, actor=world["user_owner"])
    assert Message.objects.count() > 300
    with django_assert_max_num_queries(len(few.captured_queries)):
        client.get(url)
    assert people


def test_with_the_sandbox_override_a_twilio_projects_texts_show_on_its_phones(
    world, as_user, settings
):
    from messaging import sender
    from projects.models import ProviderLink

    settings.SMS_GATEWAY_OVERRIDE = "sandbox"  # every project's texts go through the sandbox
    ProviderLink.objects.filter(project=world["project"]).update(provider="twilio")
    Message.objects.update(status=Message.Status.CANCELLED)  # (world's text pipes from REDCap)
    rule = MessageRuleFactory(project=world["project"], body="Your visit is on Friday.")
    outbox.send_now(rule=rule, actor=world["user_owner"])

    sender.run(max_seconds=10)

    message = Message.objects.get(rule=rule)
    assert (message.status, message.provider) == (Message.Status.SENT, "sandbox")
    client = as_user(world["user_owner"])
    phones = client.get(urls(world)["phones"])
    assert phones.status_code == 200
    assert "Your visit is on Friday." in phones.content.decode()
    for page in ("rules", "send"):  # the tab and the progress page lead to the phones
        assert urls(world)["phones"] in client.get(urls(world)[page]).content.decode()


def test_the_phones_show_an_unconfirmed_text_as_unconfirmed_not_as_arrived(world, as_user):
    from django.utils import timezone

    text = Message.objects.filter(pk=world["message"].pk)
    text.update(status=Message.Status.UNKNOWN, provider="sandbox", body="Hi Ana, see you soon.")
    client = as_user(world["user_owner"])
    page = client.get(urls(world)["phones"]).content.decode()
    assert "Hi Ana, see you soon." in page
    assert "Unconfirmed: StudyText does not know whether this text arrived." in page
    text.update(status=Message.Status.SENT, sent_at=timezone.now())  # reconciled: it went
    page = client.get(urls(world)["phones"]).content.decode()
    assert "Hi Ana, see you soon." in page and "Unconfirmed" not in page


def test_the_phone_simulator_is_only_for_sandbox_projects(world, as_user):
    from projects.models import ProviderLink

    ProviderLink.objects.filter(project=world["project"]).update(provider="twilio")
    assert as_user(world["user_owner"]).get(urls(world)["phones"]).status_code == 404
