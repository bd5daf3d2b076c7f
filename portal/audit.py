"""The append-only audit log: one function writes it, whoever is asking."""

from typing import Any

from django.db import models

from portal.models import AuditEvent


def _project_and_account_ids(obj: models.Model) -> tuple[int | None, int | None]:
    from billing.models import Account
    from projects.models import Project

    if isinstance(obj, Project):
        return obj.pk, obj.account_id
    if isinstance(obj, Account):
        return None, obj.pk
    project_id = getattr(obj, "project_id", None)
    account_id = getattr(obj, "account_id", None)
    if project_id is not None and account_id is None:
        account_id = (
            Project.objects.filter(pk=project_id).values_list("account_id", flat=True).first()
        )
    return project_id, account_id


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    project_id, account_id = _project_and_account_ids(obj)
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        object_type=obj._meta.model_name,
        object_id=str(obj.pk),
        object_repr=str(obj)[:200],
        project_id=project_id,
        account_id=account_id,
        message=message,
        data=data or {},
    )
