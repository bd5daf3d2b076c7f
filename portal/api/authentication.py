import hashlib

from django.utils import timezone
from rest_framework import exceptions, permissions
from rest_framework.authentication import TokenAuthentication

from portal.models import ApiToken


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, checked against the stored hash."""

    def authenticate_credentials(self, key: str):
        try:
            token = ApiToken.objects.select_related("user").get(key_hash=hash_key(key))
        except ApiToken.DoesNotExist as exc:
            raise exceptions.AuthenticationFailed(
                "Invalid token: it was revoked, replaced (a password change revokes it) or "
                "mistyped. Make a new one on your profile page."
            ) from exc
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("This account is inactive.")
        now = timezone.now()
        if token.expires_at is not None and token.expires_at <= now:
            raise exceptions.AuthenticationFailed(
                f"This token expired on {token.expires_at:%Y-%m-%d}. Make a new one on your "
                "profile page."
            )
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token


class TokenScopePermission(permissions.BasePermission):
    """A read-only token may only read (GET, HEAD, OPTIONS); signed-in sessions are unaffected."""

    message = "This API token is read-only. Make a read-and-write token to change anything."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if isinstance(token, ApiToken) and token.scope != ApiToken.Scope.WRITE:
            return request.method in permissions.SAFE_METHODS
        return True
