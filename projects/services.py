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
