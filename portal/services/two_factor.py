"""Two-factor sign-in: a TOTP authenticator app plus one-time recovery codes (django-otp).

Server administrators (and superusers) must have it; researchers may turn it on. A session is
"verified" once a TOTP or recovery code was accepted in it (django_otp.login); the admin site
and every page of someone who needs the second factor refuse an unverified session
(portal/middleware.py). A code is accepted once: TOTPDevice refuses a time step it has already
seen, and each recovery code is deleted when used. Wrong codes slow the device down
(django-otp's throttling). Every enrolment, removal and reset is audited.
"""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from django.core.exceptions import ValidationError
from django.db import transaction
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.audit import audit_record
from portal.models import User

RECOVERY_CODES = 10
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"


def has_second_factor(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def needs_second_factor(user: User) -> bool:
    """Administrators always; anyone else once they have turned it on."""
    return bool(user.is_server_admin or user.is_superuser or has_second_factor(user))


def qr_svg(device: TOTPDevice) -> str:
    """The enrolment QR code as inline SVG, drawn here (no third-party service sees the key)."""
    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    return image.to_string(encoding="unicode")


def secret_for_typing(device: TOTPDevice) -> str:
    """The key in base32, in groups of four, for apps that cannot scan."""
    import base64

    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def wait_seconds(devices) -> int:
    """How long django-otp's throttle (1, 2, 4 ... seconds after successive wrong codes) still
    holds the first of `devices` that is held, or 0."""
    from django.utils import timezone

    for device in devices:
        allowed, data = device.verify_is_allowed()
        if not allowed and data and data.get("locked_until"):
            return max(1, int((data["locked_until"] - timezone.now()).total_seconds()) + 1)
    return 0


def _held_message(seconds: int) -> str:
    return (
        f"Several wrong codes in a row: wait {seconds} second{'s' if seconds != 1 else ''}, "
        "then type the code your app shows."
    )


def totp_device_start(*, user: User) -> TOTPDevice:
    """A new, unconfirmed authenticator for `user` (any earlier unconfirmed one is dropped)."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)


def _new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_NAME, confirmed=True)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=device, token=c) for c in codes])
    return codes


def totp_device_confirm(*, user: User, device_id: int, token: str) -> tuple[TOTPDevice, list]:
    """Confirm the authenticator with a code from it; replaces any earlier one and issues a
    fresh set of recovery codes (returned to be shown once). Raises ValidationError."""
    token = "".join((token or "").split())
    device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
    if device is None:
        raise ValidationError("This set-up has expired. Start again to get a new QR code.")
    if held := wait_seconds([device]):
        raise ValidationError(_held_message(held))
    if not token.isdigit() or not device.verify_token(token):
        raise ValidationError(
            "That code does not match. Type the 6 digits your app shows now for StudyText "
            "(check that the phone's clock is right)."
        )
    with transaction.atomic():
        replaced = TOTPDevice.objects.filter(user=user, confirmed=True).exclude(pk=device.pk)
        had_one = replaced.exists()
        replaced.delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        codes = _new_recovery_codes(user)
        audit_record(
            actor=user,
            action="user.2fa_enrolled",
            obj=user,
            message="Two-factor sign-in "
            + ("moved to a new authenticator app." if had_one else "turned on."),
        )
    return device, codes


def recovery_codes_regenerate(*, user: User) -> list[str]:
    if not has_second_factor(user):
        raise ValidationError("Turn on two-factor sign-in first.")
    with transaction.atomic():
        codes = _new_recovery_codes(user)
        audit_record(
            actor=user,
            action="user.2fa_recovery_codes",
            obj=user,
            message="New recovery codes made; the old ones no longer work.",
        )
    return codes


def second_factor_verify(*, user: User, token: str) -> Device | None:
    """The device that accepts `token` (a TOTP code or a recovery code), or None (audited).
    Raises ValidationError while wrong codes have the app's device waiting."""
    token = "".join((token or "").split()).lower()
    devices = list(TOTPDevice.objects.filter(user=user, confirmed=True))
    if held := wait_seconds(devices):
        raise ValidationError(_held_message(held))
    if token:
        for device in devices:
            if token.isdigit() and device.verify_token(token):
                return device
        for device in StaticDevice.objects.filter(user=user, confirmed=True):
            if device.verify_token(token):
                audit_record(
                    actor=user,
                    action="user.2fa_recovery_used",
                    obj=user,
                    message=f"Signed in with a recovery code ({device.token_set.count()} left).",
                )
                return device
    audit_record(
        actor=user, action="user.2fa_failed", obj=user, message="A wrong second-factor code."
    )
    return None


def two_factor_remove(*, user: User) -> None:
    """A researcher turns two-factor sign-in off. Administrators cannot: the role needs it."""
    if user.is_server_admin or user.is_superuser:
        raise ValidationError(
            "Administrators must keep two-factor sign-in. To move it to a new phone, set it up "
            "again."
        )
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        audit_record(
            actor=user, action="user.2fa_removed", obj=user, message="Two-factor sign-in off."
        )


def two_factor_device_reset(*, device: Device, actor: User) -> None:
    """An administrator removes someone's device in the admin site (a lost phone)."""
    user = device.user
    with transaction.atomic():
        device.delete()
        audit_record(
            actor=actor,
            action="user.2fa_removed",
            obj=user,
            message=f"{type(device)._meta.verbose_name} removed by an administrator.",
        )
