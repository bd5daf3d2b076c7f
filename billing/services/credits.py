"""Credit packs: owners ask, administrators decide, approved credits are added at once."""

from functools import partial

from django.core.exceptions import ValidationError
from django.db import transaction

from billing import emails
from billing.models import Account, CreditPackRequest
from billing.services.common import assert_owner, assert_server_admin, decide, lock_open, plural
from billing.services.quota import credits_add
from billing.signals import audit

Status = CreditPackRequest.Status
MAX_PACKS_PER_REQUEST = 100


def credit_pack_request_create(
    *, account: Account, packs: int | None, actor, note: str = ""
) -> CreditPackRequest:
    """An owner asks for `packs` credit packs of the plan's pack size; the administrators are
    e-mailed."""
    assert_owner(account=account, actor=actor, doing="request credit packs")
    if packs is None or packs < 1:
        raise ValidationError({"packs": "Ask for at least one pack."})
    if packs > MAX_PACKS_PER_REQUEST:
        raise ValidationError(
            {
                "packs": (
                    f"Ask for at most {MAX_PACKS_PER_REQUEST} packs at a time; for more, "
                    "write to the administrators."
                )
            }
        )
    pack_size = account.plan.pack_size
    if pack_size < 1:
        raise ValidationError(
            f"The {account.plan.name} plan has no credit packs. Ask the administrators for a "
            "plan change instead."
        )
    with transaction.atomic():
        obj = CreditPackRequest.objects.create(
            account=account,
            packs=packs,
            pack_size=pack_size,
            units=packs * pack_size,
            note=note.strip(),
            requested_by=actor,
        )
        audit.send(
            sender=CreditPackRequest,
            actor=actor,
            action="credit_pack.requested",
            obj=obj,
            message=f"Asked for {plural(packs, 'credit pack')} ({obj.units:,} units).",
            data={"packs": packs, "units": obj.units},
        )
        transaction.on_commit(partial(emails.credit_pack_requested, request_id=obj.pk), robust=True)
    return obj


def credit_pack_request_approve(
    *, credit_pack: CreditPackRequest, actor, note: str = ""
) -> CreditPackRequest:
    """Approve: the credits are added to the account's balance at once (and `credits_added` is
    sent, so held messages can go)."""
    assert_server_admin(actor)
    with transaction.atomic():
        obj = lock_open(CreditPackRequest, credit_pack)
        credits_add(account=obj.account, units=obj.units)
        decide(obj, Status.APPROVED, actor, note)
        audit.send(
            sender=CreditPackRequest,
            actor=actor,
            action="credit_pack.approved",
            obj=obj,
            message=f"Approved {plural(obj.packs, 'credit pack')}: {obj.units:,} units added."
            + (f" {note.strip()}" if note.strip() else ""),
            data={"packs": obj.packs, "units": obj.units},
        )
        transaction.on_commit(partial(emails.credit_pack_decided, request_id=obj.pk), robust=True)
    return obj


def credit_pack_request_reject(
    *, credit_pack: CreditPackRequest, actor, note: str
) -> CreditPackRequest:
    assert_server_admin(actor)
    if not note.strip():
        raise ValidationError({"note": "Say why, so the owners know what to do next."})
    with transaction.atomic():
        obj = lock_open(CreditPackRequest, credit_pack)
        decide(obj, Status.REJECTED, actor, note)
        audit.send(
            sender=CreditPackRequest,
            actor=actor,
            action="credit_pack.rejected",
            obj=obj,
            message=f"Rejected {plural(obj.packs, 'credit pack')}: {note.strip()}",
        )
        transaction.on_commit(partial(emails.credit_pack_decided, request_id=obj.pk), robust=True)
    return obj
