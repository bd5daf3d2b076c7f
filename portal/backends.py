from django.contrib.auth.backends import BaseBackend, ModelBackend

from portal.admin_permissions import SERVER_ADMIN_PERMISSIONS, server_admin_may


class EmailBackend(ModelBackend):
    """Password sign-in, without Django's per-user and per-group permission tables.

    StudyText's roles are the server-administrator group (ServerAdminBackend's allow-list) and
    superusers; a permission row added to a group or a user would otherwise widen the role
    behind the allow-list's back. Superusers keep every permission, as in Django.
    """

    def _get_permissions(self, user_obj, obj, from_name):
        if user_obj.is_active and user_obj.is_superuser and obj is None:
            return super()._get_permissions(user_obj, obj, from_name)
        return set()


class ServerAdminBackend(BaseBackend):
    """Server administrators may do in the admin site what portal/admin_permissions.py lists,
    and nothing else. Membership in the "Server administrators" group is the role."""

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        if not getattr(user_obj, "is_server_admin", False) or "." not in perm:
            return False
        app_label, codename = perm.split(".", 1)
        return server_admin_may(app_label, codename)

    def has_module_perms(self, user_obj, app_label) -> bool:
        if not getattr(user_obj, "is_server_admin", False):
            return False
        return any(key.split(".")[0] == app_label for key in SERVER_ADMIN_PERMISSIONS)
