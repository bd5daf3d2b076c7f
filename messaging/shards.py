"""Sender shards and their leases (docs/sending.md, "The sender lease" and "Shards").

SENDER_SHARDS loops run side by side, each owning the provider links whose id % N is its shard,
each under a lease of its own in the database (SenderLease): one loop per shard across all
hosts, so no link is paced by two loops. A loop renews its lease every RENEW_EVERY; a dead
loop's lease runs out after LEASE_SECONDS and the next loop to start takes its shard. The loop
itself is messaging/sender.py.
"""

import datetime
import logging
import random
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Mod
from django.utils import timezone

from messaging.models import SenderLease

logger = logging.getLogger(__name__)
LEASE_NAME = "sender"
LEASE_SECONDS = 30
RENEW_EVERY = 10.0  # seconds; well inside LEASE_SECONDS


def shard_count() -> int:
    """settings.SENDER_SHARDS as a whole number of at least 1; ImproperlyConfigured otherwise
    (the system check messaging.E001 says so at start-up: messaging/checks.py)."""
    raw = str(settings.SENDER_SHARDS).strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ImproperlyConfigured(
            f"SENDER_SHARDS is “{raw}”: it must be a whole number of sender loops, 1 or more "
            "(1: one loop for the whole site; see docs/sending.md, “Shards”)."
        )
    return int(raw)


def lease_name(shard: int, shards: int) -> str:
    """`sender` for the one loop of an unsharded site; `sender:<i>/<N>` for shard i of N."""
    return LEASE_NAME if shards == 1 else f"{LEASE_NAME}:{shard}/{shards}"


def message_shard(shards: int) -> Mod:
    """A message's shard, as a query expression: its provider link's id % N."""
    return Mod("project__provider_link__id", shards)


def lease_names(shards: int) -> list[str]:
    """The leases of shards 0 .. N-1 of a count of N."""
    return [lease_name(i, shards) for i in range(shards)]


def lease_acquire(owner: str, name: str = LEASE_NAME) -> bool:
    now = timezone.now()
    SenderLease.objects.get_or_create(name=name)
    taken = (
        SenderLease.objects.filter(name=name)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__lte=now))
        .update(owner=owner, expires_at=now + datetime.timedelta(seconds=LEASE_SECONDS))
    )
    return bool(taken)


def shard_acquire(owner: str, shards: int, *, ready: Iterable[int] = ()) -> int | None:
    """Take a free shard's lease; its number, or None when every shard has a loop. The shards
    in `ready` (those with texts to send now) are tried first, each group in random order: a
    loop never takes an empty shard while one with texts is free (with fewer workers than
    shards, loops start one after another, and each must find the texts that wait).

    A live lease of another shard count (SENDER_SHARDS was changed while loops run) would
    split the links differently: a link could be in a shard of each. So nothing is taken while
    one lives; its loop is asked to stop (its owner is cleared, so its next renewal fails and
    it gives its texts back), and its shards are taken once it has expired. The check and the
    taking hold the `sender` row's lock, so two loops of different counts never both start.
    """
    names = lease_names(shards)
    with transaction.atomic():
        SenderLease.objects.get_or_create(name=LEASE_NAME)
        list(SenderLease.objects.select_for_update(no_key=True).filter(name=LEASE_NAME))  # mutex
        now = timezone.now()
        others = sender_leases().filter(expires_at__gt=now).exclude(name__in=names)
        if others.exists():
            stopped = others.exclude(owner="").update(owner="")
            if stopped:
                logger.warning(
                    "SENDER_SHARDS changed to %d while %d sender loop(s) of another count ran: "
                    "they stop, and their shards are taken when their leases expire.",
                    shards,
                    stopped,
                )
            return None
        first = sorted(set(ready) & set(range(shards)))
        rest = sorted(set(range(shards)) - set(first))
        for shard in random.sample(first, len(first)) + random.sample(rest, len(rest)):
            if lease_acquire(owner, names[shard]):
                return shard
    return None


def lease_renew(owner: str, name: str = LEASE_NAME) -> bool:
    """Extend our lease; False once it has run out (the sweep may have taken our rows since),
    or once a loop of another shard count asked us to stop (shard_acquire)."""
    now = timezone.now()
    return bool(
        SenderLease.objects.filter(name=name, owner=owner, expires_at__gt=now).update(
            expires_at=now + datetime.timedelta(seconds=LEASE_SECONDS)
        )
    )


def lease_release(owner: str, name: str = LEASE_NAME) -> None:
    # A released lease keeps the moment it was let go: the health check reports it as the
    # sender's last sign of life (portal/health.py).
    SenderLease.objects.filter(name=name, owner=owner).update(expires_at=timezone.now(), owner="")


def lease_seen(*, owner: str, expires_at: datetime.datetime) -> datetime.datetime:
    """A lease row's last sign of life: held, its last renewal (`expires_at - LEASE_SECONDS`);
    let go, the moment it was released (lease_release keeps it in `expires_at`)."""
    return expires_at - datetime.timedelta(seconds=LEASE_SECONDS) if owner else expires_at


def sender_leases():
    """Every sender loop's lease row (of any shard count)."""
    return SenderLease.objects.filter(Q(name=LEASE_NAME) | Q(name__startswith=f"{LEASE_NAME}:"))


def lease_rows() -> dict[str, dict]:
    """Every sender lease ever taken (of any shard count), by name: its `owner` and
    `expires_at`. One query (the health check and the dashboard read them)."""
    rows = sender_leases().filter(expires_at__isnull=False).values("name", "owner", "expires_at")
    return {row.pop("name"): row for row in rows}


def lease_alive() -> bool:
    """Some sender loop holds a lease now."""
    return sender_leases().filter(expires_at__gt=timezone.now()).exists()


def shards_held(shards: int) -> set[int]:
    """The shards (of a count of `shards`) whose loop holds its lease now."""
    names = lease_names(shards)
    alive = set(
        SenderLease.objects.filter(name__in=names, expires_at__gt=timezone.now()).values_list(
            "name", flat=True
        )
    )
    return {i for i, name in enumerate(names) if name in alive}


def shards_idle() -> int:
    """How many shards of SENDER_SHARDS have no loop now (the dispatcher starts that many)."""
    shards = shard_count()
    return shards - len(shards_held(shards))
