"""Sender shards (docs/sending.md, "Shards"): SENDER_SHARDS loops side by side, each owning the
provider links whose id % N is its shard, each under its own lease (messaging/sender.py)."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

LEASE_NAME = "sender"


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
