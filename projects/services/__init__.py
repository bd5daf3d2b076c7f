from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from billing.models import Account, AccountMembership
from billing.services import account_assert_project_slot
from projects.access import ROLE_RANK, project_role
from projects.models import Membership, Project, RedcapInstance
from projects.signals import audit


def project_create(
    *,
    account: Account,
    redcap_instance: RedcapInstance,
    redcap_project_id: int,
    title: str,
    pi_name: str,
    pi_email: str,
    irb_protocol: str,
    owner,
    actor,
) -> Project:
    """Create a project under `account` with `owner` as its owner.

    Refused (ValidationError) when the account's plan has no project slot left.
    """
    with transaction.atomic():
        account_assert_project_slot(account=account)
        project = Project.objects.create(
            account=account,
            redcap_instance=redcap_instance,
            redcap_project_id=redcap_project_id,
            title=title,
            pi_name=pi_name,
            pi_email=pi_email,
            irb_protocol=irb_protocol,
            time_zone=account.time_zone,
        )
        Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
        audit.send(
            sender=Project,
            actor=actor,
            action="project.created",
            obj=project,
            message=f"Project created under account “{account.name}” with {owner} as owner.",
        )
    return project


def project_update_quiet_hours(*, project: Project, actor, start, end, days: list[int]) -> Project:
    """Set when texts may go out (server administrators only)."""
    if not actor.is_server_admin:
        raise PermissionDenied("Quiet hours are set by the server administrators.")
    if start >= end:
        raise ValidationError("The latest time must be after the earliest time.")
    if not days or any(d not in range(7) for d in days):
        raise ValidationError("Choose at least one day of the week.")
    with transaction.atomic():
        project.send_window_start, project.send_window_end = start, end
        project.send_days = sorted(set(days))
        project.save(update_fields=["send_window_start", "send_window_end", "send_days"])
        audit.send(
            sender=Project,
            actor=actor,
            action="project.quiet_hours_changed",
            obj=project,
            message=f"Texts allowed {start:%H:%M}–{end:%H:%M} on days {project.send_days}.",
        )
    return project


def project_update_help_reply(*, project: Project, actor, help_reply: str) -> Project:
    role = project_role(user=actor, project=project)
    if role is None or ROLE_RANK[role] < ROLE_RANK[Membership.Role.EDITOR]:
        raise PermissionDenied("Only owners and editors can change the HELP reply.")
    with transaction.atomic():
        project.help_reply = help_reply.strip()
        project.save(update_fields=["help_reply"])
        audit.send(
            sender=Project,
            actor=actor,
            action="project.help_reply_changed",
            obj=project,
            message="HELP reply changed.",
        )
    return project


def project_move_account(*, project: Project, account: Account, actor) -> Project:
    """Bill `project` to another account from now on (usage already counted stays where it was).

    Server administrators, or someone who owns the project and the target account, may move it.
    Refused (ValidationError) when the target's plan has no project slot left; the target
    account's row is locked while counting, so two moves cannot both take its last slot.
    Archived projects do not take a slot.
    """
    is_admin = getattr(actor, "is_server_admin", False)
    if not is_admin:
        owns_project = Membership.objects.filter(
            project=project, user=actor, role=Membership.Role.OWNER
        ).exists()
        owns_account = account.memberships.filter(
            user=actor, role=AccountMembership.Role.OWNER
        ).exists()
        if not (owns_project and owns_account):
            raise PermissionDenied(
                "Only a server administrator, or an owner of both the project and the billing "
                "account, can move a project to that account."
            )
    with transaction.atomic():
        project = (
            Project.objects.select_for_update(no_key=True)
            .select_related("account")
            .get(pk=project.pk)
        )
        if project.account_id == account.pk:
            raise ValidationError(f"“{project.title}” is already billed to “{account.name}”.")
        if project.status != Project.Status.ARCHIVED:
            account_assert_project_slot(account=account)
        old_account = project.account
        project.account = account
        project.save(update_fields=["account"])
        audit.send(
            sender=Project,
            actor=actor,
            action="project.account_moved",
            obj=project,
            message=f"Moved from account “{old_account.name}” to “{account.name}”.",
            data={"from_account": old_account.pk, "to_account": account.pk},
        )
    return project
