import secrets

from django.db import transaction

from portal.api.authentication import hash_key
from portal.audit import audit_record
from portal.models import ApiToken, User


def user_update_profile(*, user: User, full_name: str, time_zone: str) -> User:
    user.full_name = full_name.strip()
    user.time_zone = time_zone
    user.full_clean(exclude=["password"])
    user.save(update_fields=["full_name", "time_zone"])
    return user


def api_token_create(*, user: User) -> str:
    """Replace the user's personal API token and return the new key (shown to them once)."""
    key = secrets.token_hex(20)
    with transaction.atomic():
        ApiToken.objects.filter(user=user).delete()
        ApiToken.objects.create(user=user, key_hash=hash_key(key), last4=key[-4:])
        audit_record(
            actor=user, action="api_token.created", obj=user, message="New API token made."
        )
    return key


def api_token_revoke(*, user: User) -> None:
    with transaction.atomic():
        deleted, _ = ApiToken.objects.filter(user=user).delete()
        if deleted:
            audit_record(
                actor=user, action="api_token.revoked", obj=user, message="API token revoked."
            )
