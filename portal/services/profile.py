import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from portal.api.authentication import hash_key
from portal.audit import audit_record
from portal.models import ApiToken, User


def user_update_profile(*, user: User, full_name: str, time_zone: str) -> User:
    user.full_name = full_name.strip()
    user.time_zone = time_zone
    user.full_clean(exclude=["password"])
    user.save(update_fields=["full_name", "time_zone"])
    return user


def api_token_create(
    *, user: User, scope: str = ApiToken.Scope.READ, days: int | None = None
) -> str:
    """Replace the user's personal API token and return the new key (shown to them once).

    `days` is how long it lasts (None: settings.API_TOKEN_DEFAULT_DAYS; 0: no expiry)."""
    if scope not in ApiToken.Scope.values:
        raise ValidationError({"scope": "Choose read only, or read and write."})
    days = settings.API_TOKEN_DEFAULT_DAYS if days is None else days
    if days < 0 or days > 366:
        raise ValidationError({"days": "A token lasts at most a year (or never expires)."})
    expires_at = timezone.now() + timedelta(days=days) if days else None
    key = secrets.token_hex(20)
    with transaction.atomic():
        ApiToken.objects.filter(user=user).delete()
        ApiToken.objects.create(
            user=user, key_hash=hash_key(key), last4=key[-4:], scope=scope, expires_at=expires_at
        )
        label = ApiToken.Scope(scope).label.lower()
        audit_record(
            actor=user,
            action="api_token.created",
            obj=user,
            message=f"New API token made ({label}"
            + (f", expires {expires_at:%Y-%m-%d}" if expires_at else ", no expiry")
            + ").",
        )
    return key


def api_token_revoke(*, user: User, actor=None, reason: str = "") -> None:
    with transaction.atomic():
        deleted, _ = ApiToken.objects.filter(user=user).delete()
        if deleted:
            audit_record(
                actor=actor or user,
                action="api_token.revoked",
                obj=user,
                message="API token revoked" + (f": {reason}" if reason else "."),
            )
