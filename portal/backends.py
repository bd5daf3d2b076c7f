from django.contrib.auth.backends import BaseBackend


class ServerAdminBackend(BaseBackend):
    """Server administrators may use every model in the Django admin site.

    Membership in the "Server administrators" group is the whole role; there is no per-model
    permission to keep in sync.
    """

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return bool(getattr(user_obj, "is_server_admin", False))

    def has_module_perms(self, user_obj, app_label) -> bool:
        return bool(getattr(user_obj, "is_server_admin", False))


def axes_username(request, credentials: dict | None = None) -> str | None:
    """The sign-in name django-axes counts failures against: the address in lower case.

    Without this, "Riley@uni.edu" and "riley@uni.edu" would each get their own allowance of
    failed attempts, and varying the case would defeat the lockout.
    """
    if credentials:
        username = credentials.get("username")
    else:
        username = getattr(request, "POST", {}).get("username")
    return username.strip().lower() if isinstance(username, str) else username
