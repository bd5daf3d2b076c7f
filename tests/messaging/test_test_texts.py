"""'Send a test to my phone': the rendered text, piped for a chosen record, to the editor's own
confirmed phone; counted against the quota and marked as a test in the log."""

import pytest
from django.urls import reverse

from billing.models import UsagePeriod
from messaging.gateways import Reason, locmem
from messaging.models import Attempt, Message, StaffPhone
from messaging.services import receipts, sweep, test_texts
from portal.models import AuditEvent
from projects.models import Participant, ProviderLink
from tests.factories import (
    FieldMappingFactory,
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UsagePeriodFactory,
)

pytestmark = pytest.mark.django_db
MY_PHONE = "+16155550188"


@pytest.fixture
def project(researcher):
    project = ProjectFactory(owner=researcher)
    FieldMappingFactory(project=project)
    ProviderLinkFactory(project=project, provider="twilio")
    UsagePeriodFactory(account=project.account)
    return project


@pytest.fixture
def avery(project):
    return ParticipantFactory(project=project, record_id="12", first_name="Avery")


@pytest.fixture
def rule(project, researcher):
    return MessageRuleFactory(
        project=project, created_by=researcher, body="Hi [first_name], your survey: [survey-link]"
    )


def _confirm(client, project, phone=MY_PHONE):
    """Add the phone and type the code the locmem provider 'delivered'."""
    url = reverse("staff-phone", args=[project.pk])
    client.post(url, {"send_code": "1", "phone": "(615) 555-0188"})
    code = locmem.outbox[-1].body.split("code is ")[1][:6]
    return client.post(url, {"verify": "1", "code": code}, follow=True)


def _used(project) -> int:
    return UsagePeriod.objects.get(account=project.account).used


def test_an_editor_confirms_their_phone_with_a_code_texted_through_the_projects_provider(
    as_user, researcher, project
):
    client = as_user(researcher)

    response = _confirm(client, project)

    assert "Your phone is confirmed." in response.content.decode()
    [code_text] = locmem.outbox
    assert code_text.to == MY_PHONE and "Your StudyText code is " in code_text.body
    phone = StaffPhone.objects.get(user=researcher)
    assert phone.verified_at is not None and phone.phone == MY_PHONE
    assert phone.phone_last4 == "0188" and MY_PHONE not in phone.phone_encrypted
    message = Message.objects.get()
    assert (message.kind, message.to_user, message.participant) == ("test", researcher, None)
    assert message.body == "Your StudyText code is ••••••. It expires in 15 minutes."  # masked
    assert _used(project) == 1  # counted against the quota
    assert AuditEvent.objects.filter(action="staff_phone.verified").exists()


def test_a_wrong_code_is_refused_counted_and_leaves_the_phone_unconfirmed(
    as_user, researcher, project
):
    client = as_user(researcher)
    url = reverse("staff-phone", args=[project.pk])
    client.post(url, {"send_code": "1", "phone": "(615) 555-0188"})
    code = locmem.outbox[-1].body.split("code is ")[1][:6]
    wrong = "000000" if code != "000000" else "111111"

    response = client.post(url, {"verify": "1", "code": wrong})

    assert "That is not the code we texted. 4 tries left." in response.content.decode()
    phone = StaffPhone.objects.get(user=researcher)
    assert (phone.verified_at, phone.code_attempts) == (None, 1)


def test_a_number_that_cannot_be_texted_is_refused_and_nothing_is_sent(
    as_user, researcher, project
):
    response = as_user(researcher).post(
        reverse("staff-phone", args=[project.pk]), {"send_code": "1", "phone": "555-01"}
    )
    assert "That is not a mobile number we can text." in response.content.decode()
    assert locmem.outbox == [] and not Message.objects.exists() and not StaffPhone.objects.exists()


def test_an_editor_sends_a_rule_piped_for_a_chosen_record_to_their_own_phone(
    as_user, researcher, project, avery, rule
):
    client = as_user(researcher)
    _confirm(client, project)
    before = _used(project)

    response = client.post(
        reverse("test-text-send", args=[project.pk]),
        {"rule": rule.pk, "participant": avery.pk, "next": "/somewhere-else/?x=1"},
        follow=True,
    )

    html = response.content.decode()
    assert "Test sent to your phone (•••-•••-0188): 1 segment" in html
    sms = locmem.outbox[-1]
    assert sms.to == MY_PHONE  # never the participant's number
    assert sms.body == "Hi Avery, your survey: https://redcap.example.edu/surveys/?s=ABCDEFGHJK"
    test = Message.objects.get(dedup_key__startswith="test:", occurrence__contains="record 12")
    assert (test.status, test.participant_id, test.kind) == ("sent", None, "test")
    assert test.occurrence == "Test text (piped for record 12)"
    assert Attempt.objects.get(message=test).outcome == "accepted"
    assert _used(project) == before + 1
    assert AuditEvent.objects.filter(action="message.test_sent").exists()
    # Marked as a test in the log (and in its CSV), on no participant's page.
    log = client.get(reverse("message-log", args=[project.pk])).content.decode()
    assert '<span class="badge badge-test">Test</span>' in log
    assert "Test text (piped for record 12)" in log
    csv = b"".join(client.get(reverse("message-log-csv", args=[project.pk])).streaming_content)
    assert b"staff phone (test)" in csv
    page = client.get(reverse("participant-detail", args=[project.pk, avery.pk]))
    assert "Hi Avery, your survey" not in page.content.decode()


def test_the_preview_button_sends_the_text_being_written_and_answers_json(
    as_user, researcher, project, avery
):
    client = as_user(researcher)
    _confirm(client, project)

    response = client.post(
        reverse("test-text-send", args=[project.pk]),
        {"body": "Draft for [first_name] 😀", "participant": avery.pk},
        HTTP_ACCEPT="application/json",
    )

    assert response.json()["ok"] is True
    assert locmem.outbox[-1].body == "Draft for Avery 😀"
    assert Message.objects.filter(kind="test", encoding="UCS-2").count() == 1


def test_a_test_without_a_confirmed_phone_is_refused_with_a_clear_message_and_nothing_saved(
    as_user, researcher, project, avery, rule
):
    before = _used(project)

    response = as_user(researcher).post(
        reverse("test-text-send", args=[project.pk]),
        {"rule": rule.pk, "participant": avery.pk},
        follow=True,
    )

    assert test_texts.NO_PHONE.replace("'", "&#x27;") in response.content.decode()
    assert locmem.outbox == [] and not Message.objects.exists()
    assert _used(project) == before
    as_json = as_user(researcher).post(
        reverse("test-text-send", args=[project.pk]),
        {"body": "Hi"},
        HTTP_ACCEPT="application/json",
    )
    assert as_json.status_code == 400 and as_json.json()["message"] == test_texts.NO_PHONE


def test_a_phone_waiting_for_its_code_is_not_confirmed_for_tests(as_user, researcher, project):
    client = as_user(researcher)
    client.post(reverse("staff-phone", args=[project.pk]), {"send_code": "1", "phone": MY_PHONE})
    with pytest.raises(Exception, match="Add your own mobile number"):
        test_texts.test_text_send(project=project, actor=researcher, body="Hi")


@pytest.mark.parametrize(("role", "status"), [("viewer", 403), (None, 404)])
def test_viewers_and_outsiders_cannot_send_tests(
    as_user, other_researcher, project, rule, role, status
):
    if role:
        MembershipFactory(project=project, user=other_researcher, role=role)
    client = as_user(other_researcher)
    assert (
        client.post(reverse("test-text-send", args=[project.pk]), {"rule": rule.pk}).status_code
        == status
    )
    assert client.get(reverse("staff-phone", args=[project.pk])).status_code == status
    assert not Message.objects.exists()


def test_a_refused_test_fails_gives_its_quota_back_and_touches_no_participant(
    as_user, researcher, project, avery, rule
):
    client = as_user(researcher)
    _confirm(client, project)
    before = _used(project)
    locmem.fail_next(Reason.INVALID_NUMBER, "The number is not a mobile number.")

    response = client.post(
        reverse("test-text-send", args=[project.pk]),
        {"rule": rule.pk, "participant": avery.pk},
        follow=True,
    )

    assert "The provider did not take the test: The number is not a mobile number." in (
        response.content.decode()
    )
    test = Message.objects.filter(kind="test").latest("id")
    assert (test.status, test.units) == ("failed", 0)
    assert _used(project) == before
    assert not Participant.objects.get(pk=avery.pk).number_invalid


def test_bad_credentials_on_a_test_pause_the_link_as_any_text_would(
    as_user, researcher, project, rule
):
    client = as_user(researcher)
    _confirm(client, project)
    locmem.fail_next(Reason.BAD_CREDENTIALS, "Authenticate")
    client.post(reverse("test-text-send", args=[project.pk]), {"rule": rule.pk})
    assert ProviderLink.objects.get(project=project).is_paused


def test_an_unanswered_test_is_unconfirmed_and_reconciled_with_the_staff_phone_never_resent(
    as_user, researcher, project, rule
):
    import datetime

    from django.utils import timezone

    client = as_user(researcher)
    _confirm(client, project)
    sent_before = len(locmem.outbox)
    locmem.fail_next(Reason.AMBIGUOUS, "Read timed out.", accepted=True)
    client.post(reverse("test-text-send", args=[project.pk]), {"rule": rule.pk})
    test = Message.objects.filter(kind="test").latest("id")
    assert test.status == "unknown"

    later = timezone.now() + datetime.timedelta(minutes=5)
    counts = sweep.sweep(now=later)

    test.refresh_from_db()
    assert counts["reconciled"] == 1 and test.status == "sent"
    assert len(locmem.outbox) == sent_before + 1  # the one the provider kept: nothing resent


def test_a_receipt_for_a_test_touches_no_participant(as_user, researcher, project, avery, rule):
    client = as_user(researcher)
    _confirm(client, project)
    client.post(reverse("test-text-send", args=[project.pk]), {"rule": rule.pk})
    test = Message.objects.filter(kind="test").latest("id")
    link = ProviderLink.objects.get(project=project)

    moved = receipts.receipt_apply(
        link=link,
        provider_message_id=test.provider_message_id,
        provider_status="undelivered",
        reason=Reason.OPTED_OUT,
        code=21610,
    )

    assert moved
    assert Message.objects.get(pk=test.pk).status == "undelivered"
    assert not Participant.objects.filter(project=project, number_invalid=True).exists()


def test_a_test_over_quota_is_refused_and_nothing_is_sent(as_user, researcher, project, rule):
    client = as_user(researcher)
    _confirm(client, project)
    period = UsagePeriod.objects.get(account=project.account)
    UsagePeriod.objects.filter(pk=period.pk).update(used=period.included + period.credits)
    sent = len(locmem.outbox)

    response = client.post(
        reverse("test-text-send", args=[project.pk]), {"rule": rule.pk}, follow=True
    )

    assert "The account&#x27;s quota for this month is used up" in response.content.decode()
    assert len(locmem.outbox) == sent
    assert Message.objects.filter(kind="test").count() == 1  # only the code's


def test_the_rule_page_offers_the_test_with_records_in_redcap_order(
    as_user, researcher, project, rule
):
    for record in ["10", "9"]:
        ParticipantFactory(project=project, record_id=record)
    client = as_user(researcher)
    html = client.get(reverse("rule-detail", args=[project.pk, rule.pk])).content.decode()
    assert "add your own mobile number" in html
    _confirm(client, project)
    html = client.get(reverse("rule-detail", args=[project.pk, rule.pk])).content.decode()
    assert "Send to •••-•••-0188" in html
    assert html.index(">Record 9") < html.index(">Record 10")


def test_the_profile_shows_and_removes_the_phone(as_user, researcher, project):
    client = as_user(researcher)
    _confirm(client, project)
    assert "•••-•••-0188" in client.get(reverse("profile")).content.decode()
    client.post(reverse("staff-phone-remove"))
    assert not StaffPhone.objects.exists()
    assert AuditEvent.objects.filter(action="staff_phone.removed").exists()


def test_a_test_whose_phone_was_removed_since_does_not_stop_the_sweep(
    as_user, researcher, project, rule
):
    import datetime

    from django.utils import timezone

    client = as_user(researcher)
    _confirm(client, project)
    locmem.fail_next(Reason.AMBIGUOUS, "Read timed out.")
    client.post(reverse("test-text-send", args=[project.pk]), {"rule": rule.pk})
    client.post(reverse("staff-phone-remove"))

    counts = sweep.sweep(now=timezone.now() + datetime.timedelta(hours=1))

    assert counts["unconfirmed"] == 1
    assert Message.objects.filter(kind="test").latest("id").status == "failed"
