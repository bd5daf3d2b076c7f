"""The participant page's consent timeline: every opt-in and opt-out with its source (keyword,
staff, the provider's 21610, REDCap's consent or opt-out field, the sync) and time in the
viewer's zone; staff opt-out from the page needs a reason; a texted STOP is lifted only by
START."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from messaging.gateways import Reason
from messaging.gateways.base import InboundSms
from messaging.models import Message, OptOut
from messaging.services.inbound import inbound_receive
from messaging.services.receipts import receipt_apply
from projects import crypto
from projects.models import ConsentEvent, Membership
from projects.services.consent import consent_changes_flush
from projects.services.sync import _apply
from tests.factories import (
    MembershipFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
PHONE = "+12025550123"
Kind, Source = ConsentEvent.Kind, ConsentEvent.Source


@pytest.fixture
def project(researcher):
    project = ProjectFactory(owner=researcher, always_open=True)
    ProviderLinkFactory(project=project, provider="sandbox")
    return project


@pytest.fixture
def person(project):
    return ParticipantFactory(
        project=project,
        record_id="7",
        phone_encrypted=crypto.encrypt(PHONE),
        phone_fingerprint=crypto.fingerprint(PHONE, purpose="phone"),
        phone_last4="0123",
    )


def text(project, body, phone=PHONE):
    sms = InboundSms(provider_message_id="", from_number=phone, body=body)
    return inbound_receive(link=project.provider_link, sms=sms, provider="sandbox")[0]


def timeline(person):
    return list(
        ConsentEvent.objects.filter(participant=person)
        .order_by("at", "id")
        .values_list("kind", "source")
    )


def page(client, person):
    url = reverse("participant-detail", args=[person.project_id, person.pk])
    return client.get(url).content.decode()


def consent_post(client, person, action, reason):
    url = reverse("participant-consent", args=[person.project_id, person.pk])
    return client.post(url, {"action": action, "reason": reason})


def test_stop_and_start_by_text_are_on_the_timeline(project, person):
    text(project, "STOP")
    text(project, "START")
    assert timeline(person) == [(Kind.OPTED_OUT, Source.KEYWORD), (Kind.OPTED_IN, Source.KEYWORD)]


def test_the_providers_21610_is_on_the_timeline(project, person):
    now = timezone.now()
    Message.objects.create(
        project=project,
        participant=person,
        occurrence="x",
        dedup_key="x",
        due_at=now,
        not_before=now,
        status=Message.Status.SENT,
        provider_message_id="SM1",
    )
    receipt_apply(
        link=project.provider_link,
        provider_message_id="SM1",
        provider_status="failed",
        reason=Reason.OPTED_OUT,
        code="21610",
    )
    assert timeline(person) == [(Kind.OPTED_OUT, Source.PROVIDER)]
    assert "21610" in ConsentEvent.objects.get().detail


def test_redcap_consent_and_opt_out_fields_and_the_first_sync_are_on_the_timeline(project):
    from projects.models import Participant

    now = timezone.now()
    values = {
        "consented": True,
        "withdrawn": False,
        "redcap_opted_out": False,
        "first_name": "",
        "time_zone": "",
        "dates": {},
        "issue": "",
        "issue_detail": "",
        "phone_e164": PHONE,
    }
    person = Participant(project=project, record_id="9")
    _apply(person, dict(values), now)
    person.save()
    consent_changes_flush([person], how="Read by the sync.")
    _apply(person, {**values, "redcap_opted_out": True}, now)
    person.save()
    consent_changes_flush([person], how="Read by the sync.")
    _apply(person, {**values, "redcap_opted_out": True, "consented": False}, now)
    person.save()
    consent_changes_flush([person], how="Read after a save in REDCap.")
    _apply(person, {**values, "redcap_opted_out": True, "consented": False}, now)  # no change
    consent_changes_flush([person], how="Read by the sync.")
    assert timeline(person) == [
        (Kind.CONSENTED, Source.SYNC),
        (Kind.OPTED_OUT, Source.REDCAP_OPTOUT),
        (Kind.CONSENT_WITHDRAWN, Source.REDCAP_CONSENT),
    ]


def test_staff_opt_out_and_in_from_the_page_with_a_reason(as_user, researcher, project, person):
    client = as_user(researcher)
    consent_post(client, person, "opt_out", "Asked by phone on March 4")
    assert OptOut.objects.filter(participant=person, source="staff", revoked_at=None).exists()
    consent_post(client, person, "opt_in", "Asked to resume, by e-mail")
    assert timeline(person) == [(Kind.OPTED_OUT, Source.STAFF), (Kind.OPTED_IN, Source.STAFF)]
    shown = page(client, person)
    assert "Asked by phone on March 4" in shown and "Study staff" in shown


def test_a_staff_opt_out_without_a_reason_is_refused_in_words(as_user, researcher, project, person):
    client = as_user(researcher)
    response = consent_post(client, person, "opt_out", "   ")
    assert response.status_code == 302
    assert "Say why, for the audit log" in client.get(response.url).content.decode()
    assert not OptOut.objects.exists() and not ConsentEvent.objects.exists()


def test_a_texted_stop_is_lifted_only_by_start(as_user, researcher, project, person):
    text(project, "STOP")
    client = as_user(researcher)
    assert "only their START lifts it" in page(client, person)
    response = consent_post(client, person, "opt_in", "They asked us")
    assert "Only the participant can undo that" in client.get(response.url).content.decode()
    assert OptOut.objects.filter(participant=person, revoked_at=None).exists()
    text(project, "START")
    assert not OptOut.objects.filter(participant=person, revoked_at=None).exists()


def test_times_are_shown_in_the_viewer_s_zone(as_user, researcher, project, person):
    ConsentEvent.objects.create(
        project=project,
        participant=person,
        kind=Kind.OPTED_OUT,
        source=Source.KEYWORD,
        at=datetime.datetime(2026, 3, 4, 12, 5, tzinfo=datetime.UTC),
    )
    researcher.time_zone = "Asia/Tokyo"
    researcher.save(update_fields=["time_zone"])
    assert "Mar 4, 2026 9:05 p.m." in page(as_user(researcher), person)


def test_a_stop_from_a_number_before_it_matched_shows_on_the_participant(project):
    text(project, "STOP")  # nobody has this number yet
    person = ParticipantFactory(
        project=project,
        record_id="8",
        phone_fingerprint=crypto.fingerprint(PHONE, purpose="phone"),
    )
    from messaging.selectors import consent_timeline

    assert [(e.kind, e.source) for e in consent_timeline(participant=person)] == [
        (Kind.OPTED_OUT, Source.KEYWORD)
    ]


@pytest.mark.parametrize(
    "role, status",
    [("owner", 302), (Membership.Role.EDITOR, 302), (Membership.Role.VIEWER, 403), (None, 404)],
)
def test_access_to_the_staff_opt_out(as_user, researcher, project, person, role, status):
    if role == "owner":
        user = researcher
    elif role:
        user = MembershipFactory(project=project, role=role).user
    else:
        user = UserFactory()
    response = consent_post(as_user(user), person, "opt_out", "Asked in clinic")
    assert response.status_code == status
    assert OptOut.objects.filter(participant=person).exists() is (status == 302)
