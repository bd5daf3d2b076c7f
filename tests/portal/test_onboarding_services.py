import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError

from billing.models import Account, AccountMembership, Plan
from portal.models import AuditEvent, OnboardingComment, OnboardingRequest
from portal.services import onboarding
from projects.models import Membership, Project
from tests.factories import (
    AccountFactory,
    OnboardingRequestFactory,
    PlanFactory,
    ProjectFactory,
    RedcapInstanceFactory,
)

Status = OnboardingRequest.Status
pytestmark = pytest.mark.django_db


def request_data(instance, **overrides):
    data = {
        "redcap_instance": instance,
        "redcap_project_id": 4242,
        "project_title": "Sleep and Mood",
        "pi_name": "Dr. Ada Lovelace",
        "pi_email": "ada@uni.test",
        "irb_protocol": "IRB-2026-0001",
        "irb_status": "approved",
        "summary": "Weekly mood surveys for 100 adults.",
        "expected_participants": 100,
        "expected_messages_per_month": 400,
        "message_kinds": ["invitation", "reminder"],
        "new_account_name": "Sleep Lab",
        "new_account_plan": PlanFactory(),
        "new_account_time_zone": "America/Chicago",
        "attest_no_phi": True,
        "attest_consent": True,
    }
    data.update(overrides)
    return data


def test_it_files_a_draft_without_emailing_anyone(researcher, server_admin, instance):
    obj = onboarding.onboarding_request_create(
        requester=researcher,
        data={"redcap_instance": instance, "redcap_project_id": 7, "project_title": "Draft"},
    )
    assert obj.status == Status.DRAFT
    assert mail.outbox == []
    assert AuditEvent.objects.filter(
        action="onboarding_request.drafted", object_id=str(obj.pk)
    ).exists()


def test_it_submits_and_emails_the_administrators(
    researcher, server_admin, instance, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        obj = onboarding.onboarding_request_create(
            requester=researcher, data=request_data(instance), submit=True
        )
    assert obj.status == Status.SUBMITTED
    assert obj.submitted_at is not None
    assert [m.to for m in mail.outbox] == [[server_admin.email]]
    assert "Sleep and Mood" in mail.outbox[0].subject


def test_it_refuses_to_submit_an_incomplete_request_and_names_what_is_missing(researcher, instance):
    with pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_create(
            requester=researcher,
            data=request_data(instance, irb_protocol="", attest_consent=False),
            submit=True,
        )
    errors = exc.value.message_dict
    assert "IRB protocol number" in errors["irb_protocol"][0]
    assert "consent" in errors["attest_consent"][0]
    assert not OnboardingRequest.objects.exists()


def test_it_refuses_a_second_open_request_for_the_same_redcap_project(
    researcher, other_researcher, instance
):
    OnboardingRequestFactory(redcap_instance=instance, redcap_project_id=4242, requester=researcher)
    with pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_create(
            requester=other_researcher, data=request_data(instance), submit=True
        )
    assert "already an open request for REDCap project 4242" in str(exc.value)
    assert OnboardingRequest.objects.count() == 1


def test_a_closed_request_does_not_block_a_new_one(researcher, instance):
    OnboardingRequestFactory(
        redcap_instance=instance,
        redcap_project_id=4242,
        requester=researcher,
        status=Status.REJECTED,
    )
    obj = onboarding.onboarding_request_create(
        requester=researcher, data=request_data(instance), submit=True
    )
    assert obj.status == Status.SUBMITTED


def test_it_refuses_a_request_for_a_redcap_project_that_already_has_texting(researcher, instance):
    ProjectFactory(redcap_instance=instance, redcap_project_id=4242)
    with pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_create(
            requester=researcher, data=request_data(instance), submit=True
        )
    assert "already has texting" in str(exc.value)


def test_it_refuses_billing_to_an_account_the_researcher_does_not_belong_to(
    researcher, other_researcher, instance
):
    foreign = AccountFactory(owners=[other_researcher])
    with pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_create(
            requester=researcher,
            data=request_data(instance, billing_account=foreign, new_account_plan=None),
            submit=True,
        )
    assert "account you belong to" in str(exc.value)


def test_it_refuses_a_project_id_that_is_not_positive(researcher, instance):
    with pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_create(
            requester=researcher, data=request_data(instance, redcap_project_id=0), submit=True
        )
    assert "redcap_project_id" in exc.value.message_dict


def test_approval_creates_account_project_and_owner(
    researcher, server_admin, instance, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher, redcap_instance=instance)
    with django_capture_on_commit_callbacks(execute=True):
        project = onboarding.onboarding_request_approve(
            onboarding_request=obj, actor=server_admin, note="Welcome aboard."
        )
    obj.refresh_from_db()
    assert obj.status == Status.APPROVED
    assert obj.project == project
    assert obj.decided_by == server_admin
    assert project.redcap_project_id == obj.redcap_project_id
    assert project.account.name == obj.new_account_name
    assert project.account.time_zone == "America/Chicago"
    assert Membership.objects.get(project=project).user == researcher
    assert Membership.objects.get(project=project).role == "owner"
    assert AccountMembership.objects.get(account=project.account).user == researcher
    assert [m.to for m in mail.outbox] == [[researcher.email]]
    assert "approved" in mail.outbox[0].subject
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"onboarding_request.approved", "project.created", "account.created"} <= actions


def test_approval_under_an_existing_account(researcher, server_admin, instance):
    account = AccountFactory(owners=[researcher])
    obj = OnboardingRequestFactory(
        requester=researcher,
        redcap_instance=instance,
        billing_account=account,
        new_account_plan=None,
        new_account_name="",
    )
    project = onboarding.onboarding_request_approve(onboarding_request=obj, actor=server_admin)
    assert project.account == account
    assert Account.objects.count() == 1


def test_approval_is_refused_when_the_plan_has_no_project_slot_and_nothing_is_created(
    researcher, server_admin, instance
):
    tiny = PlanFactory(name="Tiny", project_limit=1)
    account = AccountFactory(owners=[researcher], plan=tiny)
    ProjectFactory(account=account)
    obj = OnboardingRequestFactory(
        requester=researcher,
        redcap_instance=instance,
        billing_account=account,
        new_account_plan=None,
    )
    with pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_approve(onboarding_request=obj, actor=server_admin)
    assert "allows 1 active project, and it already has 1" in str(exc.value)
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED
    assert Project.objects.count() == 1
    assert not AuditEvent.objects.filter(action="onboarding_request.approved").exists()
    assert mail.outbox == []


def test_archived_projects_do_not_take_a_slot(researcher, server_admin, instance):
    tiny = PlanFactory(name="Tiny", project_limit=1)
    account = AccountFactory(owners=[researcher], plan=tiny)
    ProjectFactory(account=account, status=Project.Status.ARCHIVED)
    obj = OnboardingRequestFactory(
        requester=researcher,
        redcap_instance=instance,
        billing_account=account,
        new_account_plan=None,
    )
    onboarding.onboarding_request_approve(onboarding_request=obj, actor=server_admin)
    assert account.projects.count() == 2


def _retire(instance) -> None:
    instance.is_active = False
    instance.save()


def test_a_draft_whose_server_was_retired_cannot_be_submitted_and_nothing_is_written(
    researcher, server_admin, django_capture_on_commit_callbacks
):
    instance = RedcapInstanceFactory(name="Old REDCap")
    obj = onboarding.onboarding_request_create(
        requester=researcher, data=request_data(instance), submit=False
    )
    _retire(instance)
    before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_submit(onboarding_request=obj, actor=researcher)
    assert exc.value.message_dict["redcap_instance"] == [
        "The REDCap server “Old REDCap” is no longer offered by StudyText. Edit the request and "
        "choose another REDCap server, or ask the administrators about it."
    ]
    obj.refresh_from_db()
    assert obj.status == Status.DRAFT
    assert obj.submitted_at is None
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []


def test_a_new_request_on_a_retired_server_is_refused_even_as_a_draft(researcher):
    retired = RedcapInstanceFactory(name="Old REDCap", is_active=False)
    for submit in (False, True):
        with pytest.raises(ValidationError) as exc:
            onboarding.onboarding_request_create(
                requester=researcher, data=request_data(retired), submit=submit
            )
        assert "“Old REDCap” is no longer offered" in str(exc.value)
    assert not OnboardingRequest.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_draft_on_a_retired_server_may_still_be_saved_or_moved_to_an_active_one(researcher):
    old = RedcapInstanceFactory(name="Old REDCap")
    new = RedcapInstanceFactory(name="New REDCap")
    obj = onboarding.onboarding_request_create(requester=researcher, data=request_data(old))
    _retire(old)
    # Work in progress is not lost...
    onboarding.onboarding_request_update(
        onboarding_request=obj, actor=researcher, data={"summary": "Edited."}
    )
    # ...and it submits once it names a server still offered.
    onboarding.onboarding_request_update(
        onboarding_request=obj, actor=researcher, data={"redcap_instance": new}, submit=True
    )
    obj.refresh_from_db()
    assert (obj.status, obj.redcap_instance, obj.summary) == (Status.SUBMITTED, new, "Edited.")


def test_approval_on_a_retired_server_is_refused_and_nothing_is_created(
    researcher, server_admin, django_capture_on_commit_callbacks
):
    instance = RedcapInstanceFactory(name="Old REDCap")
    obj = OnboardingRequestFactory(requester=researcher, redcap_instance=instance)
    _retire(instance)
    before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_approve(onboarding_request=obj, actor=server_admin)
    assert exc.value.messages == [
        "The REDCap server “Old REDCap” is no longer active, so no project can be created on it. "
        "Ask the researcher for changes (to choose another server), or make the server active "
        "again in the admin site first."
    ]
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED
    assert obj.project is None
    assert not Project.objects.exists()
    assert not Account.objects.exists()
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []
    # The administrator can still send it back or reject it.
    onboarding.onboarding_request_request_changes(
        onboarding_request=obj, actor=server_admin, note="Choose the new server."
    )


@pytest.mark.parametrize(
    "status", [Status.APPROVED, Status.REJECTED, Status.WITHDRAWN, Status.DRAFT]
)
def test_a_request_that_is_not_submitted_cannot_be_decided(server_admin, status):
    obj = OnboardingRequestFactory(status=status)
    for decide in (
        onboarding.onboarding_request_approve,
        onboarding.onboarding_request_reject,
        onboarding.onboarding_request_request_changes,
    ):
        with pytest.raises(ValidationError) as exc:
            decide(onboarding_request=obj, actor=server_admin, note="x")
        assert "only a submitted request can be decided" in str(exc.value)
    assert Project.objects.count() == 0


def test_a_researcher_cannot_decide(researcher):
    obj = OnboardingRequestFactory(requester=researcher)
    with pytest.raises(PermissionDenied):
        onboarding.onboarding_request_approve(onboarding_request=obj, actor=researcher)
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED


def test_reject_and_request_changes_need_a_note(server_admin):
    obj = OnboardingRequestFactory()
    with pytest.raises(ValidationError):
        onboarding.onboarding_request_reject(onboarding_request=obj, actor=server_admin, note=" ")
    with pytest.raises(ValidationError):
        onboarding.onboarding_request_request_changes(
            onboarding_request=obj, actor=server_admin, note=""
        )


def test_changes_requested_then_edited_and_resubmitted(
    researcher, server_admin, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher)
    with django_capture_on_commit_callbacks(execute=True):
        onboarding.onboarding_request_request_changes(
            onboarding_request=obj, actor=server_admin, note="Add the IRB approval letter number."
        )
    assert "changes requested" in mail.outbox[-1].subject
    assert "Add the IRB approval letter number." in mail.outbox[-1].body
    with django_capture_on_commit_callbacks(execute=True):
        onboarding.onboarding_request_update(
            onboarding_request=obj,
            actor=researcher,
            data={"irb_protocol": "IRB-2026-0099"},
            submit=True,
        )
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED
    assert obj.irb_protocol == "IRB-2026-0099"
    assert "Resubmitted" in mail.outbox[-1].subject
    assert AuditEvent.objects.filter(action="onboarding_request.resubmitted").exists()


def test_rejection_emails_the_researcher_with_the_note(
    researcher, server_admin, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher, project_title="Sleep and Mood")
    with django_capture_on_commit_callbacks(execute=True):
        onboarding.onboarding_request_reject(
            onboarding_request=obj, actor=server_admin, note="Texting is not in the IRB protocol."
        )
    assert [m.to for m in mail.outbox] == [[researcher.email]]
    message = mail.outbox[0]
    assert message.subject == "[StudyText] Your texting request for Sleep and Mood: rejected"
    assert "is now: rejected." in message.body
    assert "Texting is not in the IRB protocol." in message.body
    assert f"/requests/{obj.pk}/" in message.body
    # A rejection is final: no invitation to edit and resubmit, no project to set up.
    assert "resubmit" not in message.body
    assert "Your project is ready" not in message.body


def test_only_the_requester_can_edit_and_only_while_editable(researcher, other_researcher):
    obj = OnboardingRequestFactory(requester=researcher, status=Status.DRAFT)
    with pytest.raises(PermissionDenied):
        onboarding.onboarding_request_update(
            onboarding_request=obj, actor=other_researcher, data={"project_title": "Mine now"}
        )
    submitted = OnboardingRequestFactory(requester=researcher)
    with pytest.raises(ValidationError) as exc:
        onboarding.onboarding_request_update(
            onboarding_request=submitted, actor=researcher, data={"project_title": "Changed"}
        )
    assert "can no longer be edited" in str(exc.value)
    obj.refresh_from_db()
    assert obj.project_title != "Mine now"


def test_withdraw(researcher, other_researcher):
    obj = OnboardingRequestFactory(requester=researcher)
    with pytest.raises(PermissionDenied):
        onboarding.onboarding_request_withdraw(onboarding_request=obj, actor=other_researcher)
    onboarding.onboarding_request_withdraw(onboarding_request=obj, actor=researcher)
    obj.refresh_from_db()
    assert obj.status == Status.WITHDRAWN
    with pytest.raises(ValidationError):
        onboarding.onboarding_request_withdraw(onboarding_request=obj, actor=researcher)


def test_comments_go_both_ways(
    researcher, server_admin, other_researcher, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher)
    with django_capture_on_commit_callbacks(execute=True):
        onboarding.onboarding_comment_create(
            onboarding_request=obj, author=server_admin, body="Which IRB approved this?"
        )
        onboarding.onboarding_comment_create(
            onboarding_request=obj, author=researcher, body="The university IRB."
        )
    assert [m.to for m in mail.outbox] == [[researcher.email], [server_admin.email]]
    assert OnboardingComment.objects.filter(request=obj).count() == 2
    with pytest.raises(PermissionDenied):
        onboarding.onboarding_comment_create(
            onboarding_request=obj, author=other_researcher, body="Hi"
        )
    with pytest.raises(ValidationError):
        onboarding.onboarding_comment_create(onboarding_request=obj, author=researcher, body="   ")


def test_plans_are_seeded_with_the_published_tiers(db):
    tiers = {p.name: (p.project_limit, p.monthly_messages) for p in Plan.objects.all()}
    assert tiers == {"Basic": (4, 1000), "Plus": (10, 3000), "Pro": (30, 7500)}


def test_instance_switch_is_rejected_when_target_has_an_open_request(researcher):
    a = RedcapInstanceFactory(name="A")
    b = RedcapInstanceFactory(name="B")
    OnboardingRequestFactory(redcap_instance=b, redcap_project_id=9)
    mine = OnboardingRequestFactory(
        requester=researcher, redcap_instance=a, redcap_project_id=9, status=Status.DRAFT
    )
    with pytest.raises(ValidationError):
        onboarding.onboarding_request_update(
            onboarding_request=mine, actor=researcher, data={"redcap_instance": b}
        )
