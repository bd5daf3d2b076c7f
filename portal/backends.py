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
