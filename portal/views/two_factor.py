"""Two-factor sign-in pages: the code after the password, setting up an app, recovery codes."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal import throttle
from portal.forms import EnrolForm, PasswordConfirmForm, SecondFactorForm
from portal.services import two_factor
from projects.forms import error_text

SETUP_SESSION_KEY = "two_factor_setup_device"


def _next(request, default: str = "dashboard"):
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


@never_cache
@login_required
def verify(request):
    """The second step of sign-in: a code from the app, or a recovery code."""
    user = request.user
    if user.is_verified():
        return _next(request)
    if not two_factor.has_second_factor(user):
        return redirect("two-factor-setup")
    form = SecondFactorForm(request.POST or None)
    if request.method == "POST":
        limited = throttle.rate_limit(
            request, "two_factor", f"2fa:{user.pk}", what="Too many codes were tried."
        )
        if limited:
            return limited
        if form.is_valid():
            try:
                device = two_factor.second_factor_verify(user=user, token=form.cleaned_data["code"])
            except ValidationError as exc:
                form.add_error("code", error_text(exc))
                device = False
            if device:
                otp_login(request, device)
                return _next(request)
            if device is None:
                form.add_error(
                    "code",
                    "That code does not match, or it was already used. Wait for the app to "
                    "show the next one and type it, or use one of your recovery codes.",
                )
    return render(
        request, "portal/two_factor_verify.html", {"form": form, "next": _next_value(request)}
    )


def _next_value(request) -> str:
    return request.POST.get("next") or request.GET.get("next") or ""


@never_cache
@login_required
def setup(request):
    """Set up (or move to a new phone) the authenticator app. Someone who already has one must
    have passed it in this session: a password alone never replaces the second factor."""
    user = request.user
    if two_factor.has_second_factor(user) and not user.is_verified():
        return redirect("two-factor-verify")
    form = EnrolForm(request.POST or None)
    device = None
    device_id = request.session.get(SETUP_SESSION_KEY)
    if device_id:
        device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
    if request.method == "POST" and form.is_valid() and device is not None:
        try:
            device, codes = two_factor.totp_device_confirm(
                user=user, device_id=device.pk, token=form.cleaned_data["code"]
            )
        except ValidationError as exc:
            form.add_error("code", error_text(exc))
        else:
            request.session.pop(SETUP_SESSION_KEY, None)
            otp_login(request, device)
            return render(
                request,
                "portal/two_factor_codes.html",
                {"codes": codes, "next": _next_value(request), "first": True},
            )
    elif request.method == "POST" and device is None:
        form.add_error(None, "This set-up has expired. Scan the new QR code below.")
    if device is None or request.method == "GET":
        device = two_factor.totp_device_start(user=user)
        request.session[SETUP_SESSION_KEY] = device.pk
    return render(
        request,
        "portal/two_factor_setup.html",
        {
            "form": form,
            "qr": mark_safe(two_factor.qr_svg(device)),  # noqa: S308 (drawn by qrcode, no input)
            "secret": two_factor.secret_for_typing(device),
            "next": _next_value(request),
            "replacing": two_factor.has_second_factor(user),
        },
    )


@never_cache
@login_required
@require_POST
def recovery_codes(request):
    try:
        codes = two_factor.recovery_codes_regenerate(user=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
        return redirect("profile")
    return render(request, "portal/two_factor_codes.html", {"codes": codes, "first": False})


@login_required
def remove(request):
    form = PasswordConfirmForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            two_factor.two_factor_remove(user=request.user)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, "Two-factor sign-in is off.")
        return redirect("profile")
    return render(request, "portal/two_factor_remove.html", {"form": form})
