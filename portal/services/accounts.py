"""Sign-up, e-mail verification and the server-administrator role."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.contrib.auth.models import Group
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from portal import emails
from portal.audit import audit_record
from portal.models import SERVER_ADMIN_GROUP, User
from projects.services.members import invitations_accept


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "studytext.email-verification"

    def _make_hash_value(self, user, timestamp):
        # Once verified, the link stops working.
        return f"{user.pk}{user.email}{user.email_verified}{timestamp}"


email_verification_token = EmailVerificationTokenGenerator()


def user_signup(
    *, email: str, password: str, full_name: str = "", time_zone: str = ""
) -> User | None:
    """Create a researcher account and e-mail a verification link.

    An address that already has an account gets no second one: its owner is e-mailed instead
    (sign in, or reset the password), and None is returned. The caller answers the same either
    way, so sign-up never reveals who has an account (docs/compliance.md)."""
    email = User.objects.normalize_email(email).lower()
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        transaction.on_commit(lambda: emails.signup_existing_account(existing))
        return None
    with transaction.atomic():
        user = User(email=email, full_name=full_name.strip())
        if time_zone:
            user.time_zone = time_zone
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save()
        audit_record(actor=user, action="user.signed_up", obj=user, message="Signed up.")
        transaction.on_commit(lambda: user_send_verification(user=user))
    return user


def user_send_verification(*, user: User) -> None:
    from django.conf import settings

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = email_verification_token.make_token(user)
    url = settings.SITE_URL + reverse("verify-email", args=[uid, token])
    emails.email_verification(user, url)


def user_verify_email(*, uidb64: str, token: str) -> User:
    try:
        user = User.objects.get(pk=urlsafe_base64_decode(uidb64).decode())
    except (User.DoesNotExist, ValueError, TypeError, OverflowError) as exc:
        raise ValidationError("This confirmation link is not valid.") from exc
    # The token covers `email_verified`, so a link stops working once it has been used.
    if not email_verification_token.check_token(user, token):
        if user.email_verified:
            raise ValidationError(
                "This confirmation link was already used, and your e-mail address is confirmed. "
                "Sign in below."
            )
        raise ValidationError(
            "This confirmation link has expired or was already used. Use “Send the link again” "
            "below to get a new one."
        )
    with transaction.atomic():
        user.email_verified = True
        user.save(update_fields=["email_verified"])
        audit_record(
            actor=user, action="user.email_verified", obj=user, message="E-mail confirmed."
        )
        invitations_accept(user=user)  # projects they were invited to before signing up
    return user


# Who is changing the role right now. The group can be changed from several places (the grant and
# revoke actions, the admin's user form, the command line, a shell); the m2m_changed receiver in
# portal.receivers audits every change and keeps `is_staff` in step, and reads the actor here.
_role_actor: ContextVar = ContextVar("server_admin_role_actor", default=None)


@contextmanager
def server_admin_role_changed_by(actor) -> Iterator[None]:
    """Attribute the administrator-group changes made inside this block to `actor`."""
    token = _role_actor.set(actor)
    try:
        yield
    finally:
        _role_actor.reset(token)


def server_admin_group() -> Group:
    return Group.objects.get_or_create(name=SERVER_ADMIN_GROUP)[0]


def user_set_server_admin(*, user: User, actor, grant: bool) -> User:
    """Grant or revoke the server-administrator role (group membership plus admin-site access).

    `actor=None` means the command line (`manage.py grant_admin`), used for the first administrator.
    The audit event and `is_staff` follow from the group change (`user_server_admin_role_sync`).
    """
    if actor is not None and not actor.is_server_admin:
        raise ValidationError("Only a server administrator can change who is an administrator.")
    if not grant and actor is not None and user.pk == actor.pk:
        raise ValidationError("You cannot remove your own administrator role.")
    group = server_admin_group()
    with transaction.atomic(), server_admin_role_changed_by(actor):
        if grant:
            user.groups.add(group)
        else:
            user.groups.remove(group)
        # Already a member (or already not): nothing changed, but mend an out-of-step flag.
        staff = grant or user.is_superuser
        if user.is_staff != staff:
            user.is_staff = staff
            user.save(update_fields=["is_staff"])
        user.__dict__.pop("_is_server_admin", None)
    return user


def user_server_admin_role_sync(*, user_ids: set[int], granted: bool) -> None:
    """The administrator group gained (or lost) these users: audit it and keep `is_staff` in step.

    Called by the m2m_changed receiver, whichever way the group was changed. A superuser keeps
    `is_staff` (the admin site is theirs anyway).
    """
    if not user_ids:
        return
    actor = _role_actor.get()
    users = list(User.objects.filter(pk__in=user_ids))
    with transaction.atomic():
        if granted:
            User.objects.filter(pk__in=user_ids).update(is_staff=True)
        else:
            User.objects.filter(pk__in=user_ids, is_superuser=False).update(is_staff=False)
        for user in users:
            audit_record(
                actor=actor,
                action="user.admin_granted" if granted else "user.admin_revoked",
                obj=user,
                message=("Granted" if granted else "Revoked") + " the server-administrator role.",
            )
