"""Study staff opt a participant out (or back in) with a reason: the suppression list, the waiting
texts, REDCap and the audit log, as a STOP would, and only what staff set can staff lift."""

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from messaging.models import Message, OptOut
from messaging.services import participant_opt_in, participant_opt_out
from portal.models import AuditEvent
from projects.models import Participant
from tests.factories import ParticipantFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(researcher):
    project = ProjectFactory(owner=researcher)
    person = ParticipantFactory(project=project, record_id="7")
    now = timezone.now()
    waiting = Message.objects.create(
        project=project,
        participant=person,
        occurrence="adhoc",
        dedup_key="adhoc:waiting",
        adhoc_body="Hi",
        due_at=now,
        not_before=now,
    )
    return project, person, waiting


def test_a_staff_opt_out_lists_the_number_cancels_waiting_texts_and_asks_redcap(study, researcher):
    project, person, waiting = study
    opt_out = participant_opt_out(
        participant=person, actor=researcher, reason="Asked by phone on March 4"
    )
    assert (opt_out.source, opt_out.detail) == ("staff", "Asked by phone on March 4")
    waiting.refresh_from_db()
    assert waiting.status == Message.Status.CANCELLED
    person.refresh_from_db()
    assert person.optout_write_pending == Participant.OptoutWrite.OPT_OUT
    event = AuditEvent.objects.get(action="participant.opted_out")
    assert event.actor == researcher
    assert "Asked by phone on March 4" in event.message


@pytest.mark.parametrize("reason", ["", "   ", "x" * 201])
def test_a_reason_is_required_and_short(study, researcher, reason):
    _, person, _ = study
    with pytest.raises(ValidationError) as exc:
        participant_opt_out(participant=person, actor=researcher, reason=reason)
    assert "reason" in exc.value.message_dict
    assert not OptOut.objects.exists()


def test_opting_out_twice_says_so(study, researcher):
    _, person, _ = study
    participant_opt_out(participant=person, actor=researcher, reason="Asked")
    with pytest.raises(ValidationError, match="already opted out"):
        participant_opt_out(participant=person, actor=researcher, reason="Asked again")


def test_staff_lift_their_own_opt_out_and_redcap_is_told(study, researcher):
    _, person, _ = study
    participant_opt_out(participant=person, actor=researcher, reason="Asked")
    lifted = participant_opt_in(participant=person, actor=researcher, reason="Asked to resume")
    assert lifted.revoked_at is not None
    person.refresh_from_db()
    assert person.optout_write_pending == Participant.OptoutWrite.OPT_IN
    event = AuditEvent.objects.get(action="participant.opted_in")
    assert event.actor == researcher and "Asked to resume" in event.message


def test_a_stop_the_participant_texted_is_not_lifted_by_staff(study, researcher):
    project, person, _ = study
    OptOut.objects.create(
        project=project,
        participant=person,
        phone_fingerprint=person.phone_fingerprint,
        source=OptOut.Source.KEYWORD,
    )
    with pytest.raises(ValidationError, match="texting START"):
        participant_opt_in(participant=person, actor=researcher, reason="They called us")
    assert OptOut.objects.get().revoked_at is None


def test_an_opt_out_in_redcaps_field_is_changed_in_redcap(study, researcher):
    _, person, _ = study
    Participant.objects.filter(pk=person.pk).update(redcap_opted_out=True)
    person.refresh_from_db()
    with pytest.raises(ValidationError, match="change it there"):
        participant_opt_in(participant=person, actor=researcher, reason="Asked")


def test_someone_not_opted_out_cannot_be_opted_in(study, researcher):
    _, person, _ = study
    with pytest.raises(ValidationError, match="is not opted out"):
        participant_opt_in(participant=person, actor=researcher, reason="Asked")
