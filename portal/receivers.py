"""Signals the portal acts on: the lower apps' audit events, and changes to the admin group."""

from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver

from billing.signals import audit as billing_audit
from messaging.signals import audit as messaging_audit
from portal.audit import audit_record
from portal.models import SERVER_ADMIN_GROUP, User
from portal.services.accounts import user_server_admin_role_sync
from projects.signals import audit as projects_audit


@receiver(billing_audit)
@receiver(projects_audit)
@receiver(messaging_audit)
def record_audit_event(sender, *, actor, action, obj, message="", data=None, **kwargs) -> None:
    audit_record(actor=actor, action=action, obj=obj, message=message, data=data)


@receiver(m2m_changed, sender=User.groups.through)
def server_admin_group_changed(sender, *, instance, action, reverse, pk_set, **kwargs) -> None:
    """Whoever adds someone to "Server administrators" (or removes them), and however (the grant
    and revoke actions, the user form in the admin site, `group.user_set`, a shell), the change is
    audited and `is_staff` follows it.

    `reverse` is False for `user.groups.<op>(...)` (instance: a user; pk_set: groups) and True
    for `group.user_set.<op>(...)` (instance: a group; pk_set: users). Before a remove or a clear
    we note who really was a member, so that removing a non-member records nothing.
    """
    if reverse:
        if instance.name != SERVER_ADMIN_GROUP:
            return
        group = instance
        if action == "pre_remove":
            group._admins_leaving = set(
                group.user_set.filter(pk__in=pk_set).values_list("pk", flat=True)
            )
        elif action == "pre_clear":
            group._admins_leaving = set(group.user_set.values_list("pk", flat=True))
        elif action == "post_add":
            user_server_admin_role_sync(user_ids=set(pk_set), granted=True)
        elif action in ("post_remove", "post_clear"):
            leaving = group.__dict__.pop("_admins_leaving", set())
            user_server_admin_role_sync(user_ids=leaving, granted=False)
        return

    user = instance
    if action in ("pre_remove", "pre_clear"):
        admin_groups = user.groups.filter(name=SERVER_ADMIN_GROUP)
        if action == "pre_remove":
            admin_groups = admin_groups.filter(pk__in=pk_set)
        user._leaves_admin_group = admin_groups.exists()
        return
    if action == "post_add":
        joined = user.groups.model.objects.filter(pk__in=pk_set, name=SERVER_ADMIN_GROUP).exists()
        if not joined:
            return
        granted = True
    elif action in ("post_remove", "post_clear"):
        if not user.__dict__.pop("_leaves_admin_group", False):
            return
        granted = False
    else:
        return
    user_server_admin_role_sync(user_ids={user.pk}, granted=granted)
    user.is_staff = granted or user.is_superuser
    user.__dict__.pop("_is_server_admin", None)


@receiver(post_save, sender=User)
def password_changed(sender, *, instance, created, **kwargs) -> None:
    """However a password was set (the change and reset pages, the admin site, a command),
    audit it and revoke the person's API token: a token must not outlive the password that
    made it. `_password` holds the new raw password from set_password() until the save ends."""
    if created or getattr(instance, "_password", None) is None:
        return
    from portal.services.profile import api_token_revoke

    audit_record(
        actor=instance, action="user.password_changed", obj=instance, message="Password changed."
    )
    api_token_revoke(user=instance, reason="the password changed.")
