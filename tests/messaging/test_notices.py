"""E-mail notices about replies: flagged ones at once, a daily digest, each member's own choice on
the Members page; a link and counts only, never a reply's text or a number."""

import datetime

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from messaging.gateways.base import InboundSms
from messaging.services import notices
from messaging.services.inbound import inbound_receive
from messaging.tasks import reply_digest
from projects import crypto
from projects.models import Membership
from projects.services.members import member_notices_set
from tests.factories import (
    MembershipFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
)

pytestmark = pytest.mark.django_db
PHONE = "+12025550123"
WORDS = "I don't want these anymore, who is this"


@pytest.fixture
def project(researcher):
    project = ProjectFactory(owner=researcher, title="Sleep and Mood")
    ProviderLinkFactory(project=project, provider="sandbox")
    ParticipantFactory(
        project=project,
        record_id="7",
        phone_encrypted=crypto.encrypt(PHONE),
        phone_fingerprint=crypto.fingerprint(PHONE, purpose="phone"),
    )
    return project


def receive(project, body, phone=PHONE):
    sms = InboundSms(provider_message_id="", from_number=phone, body=body)
    return inbound_receive(link=project.provider_link, sms=sms, provider="sandbox")[0]


def wants(project, role, *, flags=False, digest=False):
    membership = MembershipFactory(project=project, role=role)
    Membership.objects.filter(pk=membership.pk).update(notify_flags=flags, notify_digest=digest)
    return membership.user


def test_a_flagged_reply_is_emailed_at_once_to_who_asked_without_its_text(
    project, django_capture_on_commit_callbacks
):
    editor = wants(project, Membership.Role.EDITOR, flags=True)
    wants(project, Membership.Role.VIEWER)  # did not ask
    with django_capture_on_commit_callbacks(execute=True):
        receive(project, WORDS)
        receive(project, "See you Tuesday")  # not flagged: no e-mail
    [email] = mail.outbox
    assert email.to == [editor.email]
    assert email.subject == "[StudyText] A reply to review in Sleep and Mood"
    assert reverse("inbox", args=[project.pk]) in email.body
    assert "who is this" not in email.body and "0123" not in email.body


def test_an_unknown_number_s_flag_goes_to_owners_only(
    project, researcher, django_capture_on_commit_callbacks
):
    Membership.objects.filter(project=project, user=researcher).update(notify_flags=True)
    wants(project, Membership.Role.EDITOR, flags=True)
    with django_capture_on_commit_callbacks(execute=True):
        receive(project, "hello", phone="+12025550987")
    [email] = mail.outbox
    assert email.to == [researcher.email]
    assert "0987" not in email.body


def test_the_digest_counts_what_waits_once_a_day(project):
    viewer = wants(project, Membership.Role.VIEWER, digest=True)
    wants(project, Membership.Role.EDITOR, digest=False)
    assert reply_digest() == 0  # nothing waits: no e-mail
    receive(project, "running late")
    receive(project, "see you soon")
    assert reply_digest() == 1
    [email] = mail.outbox
    assert email.to == [viewer.email]
    assert email.subject == "[StudyText] 2 replies waiting in Sleep and Mood"
    assert "running late" not in email.body
    assert reply_digest() == 0  # not twice the same day
    later = timezone.now() + datetime.timedelta(days=1)
    assert notices.reply_digest_send(now=later) == 1


def test_each_member_sets_their_own_notices_on_the_members_page(as_user, project):
    editor = wants(project, Membership.Role.EDITOR)
    client = as_user(editor)
    page = client.get(reverse("project-members", args=[project.pk])).content.decode()
    assert "Your e-mail notices" in page
    url = reverse("project-member-notices", args=[project.pk])
    assert client.post(url, {"notify_flags": "on"}).status_code == 302
    membership = Membership.objects.get(project=project, user=editor)
    assert (membership.notify_flags, membership.notify_digest) == (True, False)


def test_nobody_sets_another_member_s_notices(project, researcher):
    editor_membership = MembershipFactory(project=project, role=Membership.Role.EDITOR)
    with pytest.raises(ValidationError, match="their own"):
        member_notices_set(membership=editor_membership, flags=True, digest=True, actor=researcher)
    editor_membership.refresh_from_db()
    assert not editor_membership.notify_flags


def test_an_outsider_cannot_reach_the_notices_form(as_user, project):
    from tests.factories import UserFactory

    response = as_user(UserFactory()).post(
        reverse("project-member-notices", args=[project.pk]), {"notify_flags": "on"}
    )
    assert response.status_code == 404
