from django.conf import settings


def portal(request) -> dict:
    user = getattr(request, "user", None)
    return {
        "is_server_admin": bool(user and user.is_authenticated and user.is_server_admin),
        "sandbox_enabled": settings.SANDBOX_ENABLED,
    }
