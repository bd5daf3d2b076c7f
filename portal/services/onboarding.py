"""Onboarding requests: a researcher asks for texting on a REDCap project; an administrator decides.

Every function validates before it writes, writes in one transaction, records an audit event and
sends its e-mail only after the transaction commits.
"""

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.services import account_create
from portal import emails
from portal.audit import audit_record
from portal.models import OnboardingComment, OnboardingRequest
from portal.selectors import last_submission_data
from projects.models import Project
from projects.selectors import redcap_instances_offered
from projects.services import project_create

Status = OnboardingRequest.Status

EDITABLE_FIELDS = (
    "redcap_instance",
    "redcap_project_id",
    "project_title",
    "pi_name",
    "pi_email",
    "irb_protocol",
    "irb_status",
    "summary",
    "expected_participants",
    "expected_messages_per_month",
    "message_kinds",
    "billing_account",
    "new_account_name",
    "new_account_plan",
    "new_account_time_zone",
    "attest_no_phi",
    "attest_consent",
)

REQUIRED_TO_SUBMIT = {
    "pi_name": "the PI's name",
    "pi_email": "the PI's e-mail",
    "irb_protocol": "the IRB protocol number",
    "irb_status": "whether texting is IRB-approved",
    "summary": "a study summary",
    "expected_participants": "the expected number of participants",
    "expected_messages_per_month": "the expected outbound messages per month",
    "message_kinds": "at least one kind of message",
}


def submitted_values(onboarding_request: OnboardingRequest) -> dict[str, str]:
    """The request as the administrators read it, label by label. Each submission keeps these in
    its audit event, so that a resubmission can show what changed since the last one."""
    r = onboarding_request
    if r.billing_account_id:
        billing = f"Existing account “{r.billing_account}”"
    elif r.new_account_plan_id:
        billing = (
            f"New account “{r.new_account_name}” on the {r.new_account_plan.name} plan "
            f"({r.new_account_time_zone})"
        )
    else:
        billing = ""
    return {
        "REDCap server": str(r.redcap_instance),
        "REDCap project id": str(r.redcap_project_id),
        "Project title": r.project_title,
        "PI name": r.pi_name,
        "PI e-mail": r.pi_email,
        "IRB protocol number": r.irb_protocol,
        "Texting approved by the IRB": r.get_irb_status_display() if r.irb_status else "",
        "Study summary": r.summary,
        "Expected participants": str(r.expected_participants or ""),
        "Expected outbound messages per month": str(r.expected_messages_per_month or ""),
        "Messages planned": ", ".join(r.get_message_kinds_display()),
        "Billing": billing,
        "No PHI in texts": "Confirmed" if r.attest_no_phi else "Not confirmed",
        "Consent to text collected": "Confirmed" if r.attest_consent else "Not confirmed",
        "Attached files": ", ".join(r.attachments.values_list("name", flat=True)),
    }


def _submission_data(onboarding_request: OnboardingRequest, *, resubmitted: bool) -> dict:
    """What a submission's audit event keeps: the values, and on a resubmission what changed
    since the previous submission (old → new)."""
    values = submitted_values(onboarding_request)
    data: dict[str, Any] = {"values": values}
    if resubmitted:
        previous = last_submission_data(obj=onboarding_request)
        if "values" in previous:
            before = previous["values"]
            data["changes"] = [
                {"field": label, "old": before.get(label, ""), "new": now}
                for label, now in values.items()
                if before.get(label, "") != now
            ]
    return data


# The fields _assert_complete names when a request is not complete yet.
COMPLETENESS = {*REQUIRED_TO_SUBMIT, "billing_account", "attest_no_phi", "attest_consent"}


def _assert_requester(onboarding_request: OnboardingRequest, actor) -> None:
    if onboarding_request.requester_id != actor.pk:
        raise PermissionDenied("Only the researcher who filed this request can do that.")


def _assert_server_admin(actor) -> None:
    if not actor.is_server_admin:
        raise PermissionDenied("Only a server administrator can decide on a request.")


def _assert_no_duplicate(onboarding_request: OnboardingRequest) -> None:
    others = OnboardingRequest.objects.filter(
        redcap_instance=onboarding_request.redcap_instance,
        redcap_project_id=onboarding_request.redcap_project_id,
        status__in=OnboardingRequest.OPEN_STATUSES,
    ).exclude(pk=onboarding_request.pk)
    twin = others.first()
    if twin is not None:
        prefix = (
            f"There is already an open request for REDCap project "
            f"{onboarding_request.redcap_project_id} on {onboarding_request.redcap_instance}"
        )
        if twin.requester_id == onboarding_request.requester_id:
            message = (
                f"{prefix}: your request #{twin.pk}. Continue that one instead of filing a second."
            )
        else:
            # Someone else's request: say so, without naming them.
            message = (
                f"{prefix}, filed by another researcher. Ask them, or the administrators, to "
                "add you to the project once it is approved."
            )
        raise ValidationError({"redcap_project_id": message})
    if Project.objects.filter(
        redcap_instance=onboarding_request.redcap_instance,
        redcap_project_id=onboarding_request.redcap_project_id,
    ).exists():
        raise ValidationError(
            {
                "redcap_project_id": (
                    f"REDCap project {onboarding_request.redcap_project_id} on "
                    f"{onboarding_request.redcap_instance} already has texting in StudyText. "
                    "Ask its owner to add you as a member."
                )
            }
        )


def _assert_instance_offered(onboarding_request: OnboardingRequest) -> None:
    """The request's REDCap server must still be on the list (read afresh: an administrator may
    have retired it after the request was loaded)."""
    if not redcap_instances_offered().filter(pk=onboarding_request.redcap_instance_id).exists():
        raise ValidationError(
            {
                "redcap_instance": (
                    f"The REDCap server “{onboarding_request.redcap_instance}” is no longer "
                    "offered by StudyText. Edit the request and choose another REDCap server, "
                    "or ask the administrators about it."
                )
            }
        )


def _assert_account_choice(onboarding_request: OnboardingRequest, actor) -> None:
    r = onboarding_request
    if r.billing_account_id and r.new_account_plan_id:
        raise ValidationError("Choose either an existing billing account or a new one, not both.")
    if r.billing_account_id:
        if not r.billing_account.memberships.filter(user=actor).exists():
            raise ValidationError(
                {"billing_account": "You can only bill a project to an account you belong to."}
            )
    elif r.new_account_plan_id:
        if not r.new_account_name.strip():
            raise ValidationError({"new_account_name": "Give the new billing account a name."})
        if not r.new_account_time_zone:
            raise ValidationError(
                {"new_account_time_zone": "Choose the time zone the new account counts usage in."}
            )
        if not r.new_account_plan.is_active:
            raise ValidationError({"new_account_plan": "That plan is no longer offered."})


def _assert_complete(onboarding_request: OnboardingRequest) -> None:
    errors: dict[str, str] = {}
    for field, words in REQUIRED_TO_SUBMIT.items():
        if getattr(onboarding_request, field) in (None, "", []):
            errors[field] = f"Before submitting, add {words}."
    if not (onboarding_request.billing_account_id or onboarding_request.new_account_plan_id):
        errors["billing_account"] = (
            "Before submitting, choose a billing account, or a plan for a new account."
        )
    if not onboarding_request.attest_no_phi:
        errors["attest_no_phi"] = (
            "Confirm that message text will contain no protected health information."
        )
    if not onboarding_request.attest_consent:
        errors["attest_consent"] = (
            "Confirm that participants' consent to receive texts is collected."
        )
    if errors:
        raise ValidationError(errors)


def _save(
    onboarding_request: OnboardingRequest, actor, *, submit: bool, instance_chosen: bool
) -> None:
    """Validate, then save. `instance_chosen`: the REDCap server is being picked now (a new
    request, or a different server), so it must be one still offered, even for a draft."""
    onboarding_request.full_clean(
        exclude=["requester", "decided_by", "project"], validate_constraints=False
    )
    if submit or instance_chosen:
        _assert_instance_offered(onboarding_request)
    _assert_account_choice(onboarding_request, actor)
    _assert_no_duplicate(onboarding_request)
    if submit:
        _assert_complete(onboarding_request)
    try:
        with transaction.atomic():
            onboarding_request.save()
    except IntegrityError as exc:  # a concurrent twin slipped past the check above
        raise ValidationError("There is already an open request for this REDCap project.") from exc


def onboarding_request_create(
    *, requester, data: dict[str, Any], submit: bool = False
) -> OnboardingRequest:
    """File a new request, as a draft or submitted straight away."""
    onboarding_request = OnboardingRequest(requester=requester)
    for field in EDITABLE_FIELDS:
        if field in data:
            setattr(onboarding_request, field, data[field])
    now = timezone.now()
    if submit:
        onboarding_request.status = Status.SUBMITTED
        onboarding_request.submitted_at = now
    with transaction.atomic():
        _save(onboarding_request, requester, submit=submit, instance_chosen=True)
        audit_record(
            actor=requester,
            action="onboarding_request.submitted" if submit else "onboarding_request.drafted",
            obj=onboarding_request,
            message="Request submitted." if submit else "Request saved as a draft.",
            data=_submission_data(onboarding_request, resubmitted=False) if submit else None,
        )
        if submit:
            transaction.on_commit(
                lambda: emails.onboarding_request_submitted(onboarding_request, resubmitted=False)
            )
    return onboarding_request


def onboarding_request_update(
    *, onboarding_request: OnboardingRequest, actor, data: dict[str, Any], submit: bool = False
) -> OnboardingRequest:
    """Edit a draft or a request sent back for changes; optionally (re)submit it."""
    with transaction.atomic():
        onboarding_request = OnboardingRequest.objects.select_for_update(no_key=True).get(
            pk=onboarding_request.pk
        )
        _assert_requester(onboarding_request, actor)
        if not onboarding_request.is_editable:
            raise ValidationError(
                f"This request is {onboarding_request.get_status_display().lower()} and can no "
                "longer be edited."
            )
        resubmitted = onboarding_request.status == Status.CHANGES_REQUESTED
        instance_before = onboarding_request.redcap_instance_id
        for field in EDITABLE_FIELDS:
            if field in data:
                setattr(onboarding_request, field, data[field])
        if submit:
            onboarding_request.status = Status.SUBMITTED
            onboarding_request.submitted_at = timezone.now()
        _save(
            onboarding_request,
            actor,
            submit=submit,
            instance_chosen=onboarding_request.redcap_instance_id != instance_before,
        )
        if submit:
            audit_record(
                actor=actor,
                action="onboarding_request.resubmitted"
                if resubmitted
                else "onboarding_request.submitted",
                obj=onboarding_request,
                message="Request resubmitted with changes."
                if resubmitted
                else "Request submitted.",
                data=_submission_data(onboarding_request, resubmitted=resubmitted),
            )
            saved = onboarding_request
            transaction.on_commit(
                lambda: emails.onboarding_request_submitted(saved, resubmitted=resubmitted)
            )
        else:
            audit_record(
                actor=actor,
                action="onboarding_request.edited",
                obj=onboarding_request,
                message="Request edited.",
            )
    return onboarding_request


def onboarding_request_submit(*, onboarding_request: OnboardingRequest, actor) -> OnboardingRequest:
    return onboarding_request_update(
        onboarding_request=onboarding_request, actor=actor, data={}, submit=True
    )


def onboarding_request_withdraw(
    *, onboarding_request: OnboardingRequest, actor
) -> OnboardingRequest:
    with transaction.atomic():
        onboarding_request = OnboardingRequest.objects.select_for_update(no_key=True).get(
            pk=onboarding_request.pk
        )
        _assert_requester(onboarding_request, actor)
        if not onboarding_request.is_open:
            raise ValidationError(
                f"This request is already {onboarding_request.get_status_display().lower()}."
            )
        onboarding_request.status = Status.WITHDRAWN
        onboarding_request.save(update_fields=["status", "updated_at"])
        audit_record(
            actor=actor,
            action="onboarding_request.withdrawn",
            obj=onboarding_request,
            message="Request withdrawn by the researcher.",
        )
    return onboarding_request


# Why a request cannot be decided, in words ("is changes requested" is not English).
UNDECIDABLE = {
    Status.DRAFT: "still a draft",
    Status.CHANGES_REQUESTED: "waiting for the researcher's changes",
    Status.APPROVED: "already approved",
    Status.REJECTED: "already rejected",
    Status.WITHDRAWN: "withdrawn",
}


def _lock_for_decision(onboarding_request: OnboardingRequest, actor) -> OnboardingRequest:
    _assert_server_admin(actor)
    onboarding_request = (
        OnboardingRequest.objects.select_for_update(of=("self",), no_key=True)
        .select_related("requester", "redcap_instance", "billing_account", "new_account_plan")
        .get(pk=onboarding_request.pk)
    )
    if onboarding_request.status != Status.SUBMITTED:
        raise ValidationError(
            f"This request is {UNDECIDABLE[onboarding_request.status]}; only a submitted "
            "request can be decided."
        )
    return onboarding_request


def _decide(onboarding_request: OnboardingRequest, actor, status: str, note: str) -> None:
    onboarding_request.status = status
    onboarding_request.decision_note = note
    onboarding_request.decided_by = actor
    onboarding_request.decided_at = timezone.now()
    onboarding_request.save()
    transaction.on_commit(lambda: emails.onboarding_request_decided(onboarding_request))


def onboarding_request_approve(
    *, onboarding_request: OnboardingRequest, actor, note: str = ""
) -> Project:
    """Approve: create the project (and a new billing account if one was asked for).

    Refused with ValidationError, and nothing written, when the account has no project slot left.
    """
    with transaction.atomic():
        onboarding_request = _lock_for_decision(onboarding_request, actor)
        # The server was read afresh with the request, under its lock.
        if not onboarding_request.redcap_instance.is_active:
            raise ValidationError(
                f"The REDCap server “{onboarding_request.redcap_instance}” is no longer active, "
                "so no project can be created on it. Ask the researcher for changes (to choose "
                "another server), or make the server active again in the admin site first."
            )
        requester = onboarding_request.requester
        account = onboarding_request.billing_account
        if account is None:
            account = account_create(
                name=onboarding_request.new_account_name,
                plan=onboarding_request.new_account_plan,
                time_zone=onboarding_request.new_account_time_zone,
                owner=requester,
                actor=actor,
            )
        project = project_create(
            account=account,
            redcap_instance=onboarding_request.redcap_instance,
            redcap_project_id=onboarding_request.redcap_project_id,
            title=onboarding_request.project_title,
            pi_name=onboarding_request.pi_name,
            pi_email=onboarding_request.pi_email,
            irb_protocol=onboarding_request.irb_protocol,
            owner=requester,
            actor=actor,
        )
        onboarding_request.billing_account = account
        onboarding_request.project = project
        _decide(onboarding_request, actor, Status.APPROVED, note)
        audit_record(
            actor=actor,
            action="onboarding_request.approved",
            obj=onboarding_request,
            message=f"Approved; project “{project.title}” created."
            + (f" Note: {note}" if note else ""),
        )
    return project


def _decide_with_note(
    onboarding_request: OnboardingRequest, actor, *, status: str, note: str, missing: str
) -> OnboardingRequest:
    if not note.strip():
        raise ValidationError({"note": missing})
    with transaction.atomic():
        onboarding_request = _lock_for_decision(onboarding_request, actor)
        _decide(onboarding_request, actor, status, note)
        audit_record(
            actor=actor,
            action=f"onboarding_request.{status}",
            obj=onboarding_request,
            message=f"{Status(status).label}. Note: {note}",
        )
    return onboarding_request


def onboarding_request_reject(
    *, onboarding_request: OnboardingRequest, actor, note: str
) -> OnboardingRequest:
    return _decide_with_note(
        onboarding_request,
        actor,
        status=Status.REJECTED,
        note=note,
        missing="Tell the researcher why the request is rejected.",
    )


def onboarding_request_request_changes(
    *, onboarding_request: OnboardingRequest, actor, note: str
) -> OnboardingRequest:
    return _decide_with_note(
        onboarding_request,
        actor,
        status=Status.CHANGES_REQUESTED,
        note=note,
        missing="Tell the researcher what to change.",
    )


def onboarding_comment_create(
    *, onboarding_request: OnboardingRequest, author, body: str
) -> OnboardingComment:
    """Add a comment to a request's page; the other side is told by e-mail."""
    body = body.strip()
    if not body:
        raise ValidationError({"body": "Write a comment before posting it."})
    if onboarding_request.requester_id != author.pk and not author.is_server_admin:
        raise PermissionDenied("You cannot comment on someone else's request.")
    with transaction.atomic():
        comment = OnboardingComment.objects.create(
            request=onboarding_request, author=author, body=body
        )
        audit_record(
            actor=author,
            action="onboarding_request.commented",
            obj=onboarding_request,
            message="Comment added.",
        )
        transaction.on_commit(lambda: emails.onboarding_comment_added(comment))
    return comment
