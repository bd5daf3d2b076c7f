"""Every e-mail StudyText sends: its subject starts with the site's prefix (EMAIL_SUBJECT_PREFIX),
and an approval links to the new project."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from billing import emails as billing_emails
from billing.models import CreditPackRequest, PlanChangeRequest
from messaging.models import Reply
from messaging.services import notices
from messaging.services.record import _alert_owners_bad_credentials
from portal import emails as portal_emails
from portal.models import OnboardingComment, OnboardingRequest
from projects import emails as project_emails
from projects.models import Membership, Project
from tests.factories import (
    AccountFactory,
    CreditPackRequestFactory,
    OnboardingRequestFactory,
    ParticipantFactory,
    PlanChangeRequestFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UsagePeriodFactory,
)

pytestmark = pytest.mark.django_db
PREFIX = "[Uni Texting] "

# Every subject template there is; a new one must be sent below too.
SUBJECT_TEMPLATES = {
    "billing/email/credit_pack_decided_subject.txt",
    "billing/email/credit_pack_requested_subject.txt",
    "billing/email/plan_change_decided_subject.txt",
    "billing/email/plan_change_requested_subject.txt",
    "billing/email/quota_threshold_subject.txt",
    "portal/email/request_comment_subject.txt",
    "portal/email/request_decided_subject.txt",
    "portal/email/request_submitted_subject.txt",
    "portal/email/signin_paused_subject.txt",
    "portal/email/signup_existing_subject.txt",
    "portal/email/verify_email_subject.txt",
    "registration/password_reset_subject.txt",
}


def _send_every_email(client, researcher, server_admin) -> list[str]:
    """Send one of each e-mail StudyText has; return the subjects, in order."""
    account = AccountFactory(owners=[researcher])
    project = ProjectFactory(account=account, owner=researcher, title="Sleep and Mood")
    request = OnboardingRequestFactory(requester=researcher, project_title="Sleep and Mood")
    request.status, request.project = OnboardingRequest.Status.APPROVED, project
    portal_emails.onboarding_request_submitted(request, resubmitted=False)
    portal_emails.onboarding_request_decided(request)
    comment = OnboardingComment.objects.create(request=request, author=server_admin, body="Hi")
    portal_emails.onboarding_comment_added(comment)
    portal_emails.email_verification(researcher, "https://studytext.test/verify/x/")
    portal_emails.signup_existing_account(researcher)
    portal_emails.signin_paused(researcher, "https://studytext.test/unlock/x/", 15)
    period = UsagePeriodFactory(account=account, used=800)
    billing_emails.quota_threshold_reached(period_id=period.pk, percent=80)
    pack = CreditPackRequestFactory(account=account, requested_by=researcher)
    billing_emails.credit_pack_requested(request_id=pack.pk)
    CreditPackRequest.objects.filter(pk=pack.pk).update(status="approved")
    billing_emails.credit_pack_decided(request_id=pack.pk)
    change = PlanChangeRequestFactory(account=account, requested_by=researcher)
    billing_emails.plan_change_requested(request_id=change.pk)
    PlanChangeRequest.objects.filter(pk=change.pk).update(status="rejected")
    billing_emails.plan_change_decided(request_id=change.pk)
    project_emails.member_invited(
        project=project, email="new@uni.test", role="editor", actor=server_admin
    )
    Project.objects.filter(pk=project.pk).update(status=Project.Status.SUSPENDED)
    project_emails.project_status_changed(project_id=project.pk)
    link = ProviderLinkFactory(project=project)
    _alert_owners_bad_credentials(link, "401 Unauthorized")
    # Replies: a flagged one at once, and the daily digest (messaging/services/notices.py).
    Membership.objects.filter(project=project, user=researcher).update(
        notify_flags=True, notify_digest=True
    )
    reply = Reply.objects.create(
        project=project,
        participant=ParticipantFactory(project=project),
        provider="sandbox",
        body="who is this",
        flag=Reply.Flag.POSSIBLE_OPT_OUT,
        received_at=timezone.now(),
    )
    notices.flag_notice_send(reply_id=reply.pk)
    notices.reply_digest_send()
    client.post(reverse("password_reset"), {"email": researcher.email})
    return [m.subject for m in mail.outbox]


def test_every_email_subject_starts_with_the_site_prefix(
    client, settings, researcher, server_admin
):
    settings.EMAIL_SUBJECT_PREFIX = PREFIX

    subjects = _send_every_email(client, researcher, server_admin)

    assert len(subjects) == 17, "\n".join(subjects)
    assert [s for s in subjects if not s.startswith(PREFIX)] == []
    assert [s for s in subjects if "[StudyText]" in s or "\n" in s] == []
    assert f"{PREFIX}Credit packs requested for " in "".join(subjects)  # they lacked it


def test_the_prefix_is_studytext_unless_the_institution_sets_another():
    assert settings.EMAIL_SUBJECT_PREFIX == "[StudyText] "


def test_no_subject_template_writes_a_prefix_of_its_own_and_each_is_sent_above():
    root = Path(settings.BASE_DIR) / "templates"
    found = {str(p.relative_to(root)) for p in root.rglob("*_subject.txt")}
    assert found == SUBJECT_TEMPLATES
    for name in found:
        assert not (root / name).read_text().lstrip().startswith("["), name


def test_the_approved_email_links_to_the_new_project_not_to_the_request(researcher):
    project = ProjectFactory(owner=researcher)
    request = OnboardingRequestFactory(requester=researcher)
    request.status, request.project = OnboardingRequest.Status.APPROVED, project

    portal_emails.onboarding_request_decided(request)

    [email] = mail.outbox
    assert settings.SITE_URL + reverse("project-detail", args=[project.pk]) in email.body
    assert reverse("onboarding-detail", args=[request.pk]) not in email.body
    assert "on the project's page" in email.body


def test_an_email_asking_for_changes_still_links_to_the_request(researcher):
    request = OnboardingRequestFactory(
        requester=researcher, status=OnboardingRequest.Status.CHANGES_REQUESTED
    )
    portal_emails.onboarding_request_decided(request)
    [email] = mail.outbox
    assert settings.SITE_URL + reverse("onboarding-detail", args=[request.pk]) in email.body
