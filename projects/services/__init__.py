from django.db import transaction

from billing.models import Account
from billing.services import account_assert_project_slot
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
    from django.core.exceptions import PermissionDenied, ValidationError

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
    from django.core.exceptions import PermissionDenied

    from projects.access import ROLE_RANK, project_role

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
