from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal import emails, throttle
from portal.audit import audit_record
from portal.forms import (
    ApiTokenForm,
    ProfileForm,
    ResendVerificationForm,
    SignInForm,
    SignUpForm,
)
from portal.models import User
from portal.services import accounts, profile
from portal.services.two_factor import has_second_factor, needs_second_factor
from projects.forms import error_text
from projects.services.members import invitations_accept


class SignInView(auth_views.LoginView):
    """Password sign-in behind the throttle (portal/throttle.py), then the second factor for
    those who need it. Sign-ins, failures and pauses are audited."""

    form_class = SignInForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        username = throttle.normalise_username(request.POST.get("username"))
        blocked = throttle.signin_blocked(request, username)
        if blocked is not None:
            return self._paused(blocked)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form):
        if form.has_error("__all__", "invalid_login"):
            username = throttle.normalise_username(self.request.POST.get("username"))
            paused_now = throttle.signin_failed(self.request, username)
            user = User.objects.filter(email__iexact=username).first() if username else None
            ip = throttle.client_ip(self.request)
            if user is not None:
                audit_record(
                    actor=None,
                    action="user.sign_in_failed",
                    obj=user,
                    message="A wrong password.",
                    data={"ip": ip},
                )
                if paused_now:
                    self._account_paused(user, ip)
            blocked = throttle.signin_blocked(self.request, username)
            if blocked is not None:
                return self._paused(blocked)
        return super().form_invalid(form)

    def form_valid(self, form):
        user = form.get_user()
        response = super().form_valid(form)
        throttle.signin_succeeded(self.request, response, user.email)
        audit_record(
            actor=user,
            action="user.signed_in",
            obj=user,
            message="Signed in with a password"
            + ("; the second factor is next." if needs_second_factor(user) else "."),
            data={"ip": throttle.client_ip(self.request)},
        )
        invitations_accept(user=user)
        if needs_second_factor(user):
            step = "two-factor-verify" if has_second_factor(user) else "two-factor-setup"
            second = redirect_to_login(self.get_success_url(), reverse(step))
            for cookie in response.cookies.values():
                second.cookies[cookie.key] = cookie
            return second
        return response

    def _paused(self, blocked):
        minutes = max(1, -(-blocked.retry_after // 60))
        response = render(
            self.request,
            "registration/locked_out.html",
            {"reason": blocked.reason, "minutes": minutes},
            status=429,
        )
        response["Retry-After"] = str(blocked.retry_after)
        return response

    def _account_paused(self, user: User, ip: str) -> None:
        audit_record(
            actor=None,
            action="user.locked_out",
            obj=user,
            message="Sign-in from unknown browsers paused after several wrong passwords; the "
            "owner was e-mailed an unlock link.",
            data={"ip": ip},
        )
        uid = urlsafe_base64_encode(force_bytes(user.pk))
        token = throttle.unlock_token.make_token(user)
        url = settings.SITE_URL + reverse("signin-unlock", args=[uid, token])
        emails.signin_paused(user, url, settings.SIGNIN_WINDOW_MINUTES)


def signin_unlock(request, uidb64: str, token: str):
    """The link in the "sign-in paused" e-mail: this browser becomes one the account knows."""
    try:
        user = User.objects.get(pk=urlsafe_base64_decode(uidb64).decode(), is_active=True)
    except (User.DoesNotExist, ValueError, TypeError, OverflowError):
        user = None
    if user is None or not throttle.unlock_token.check_token(user, token):
        messages.error(
            request, "This link has expired or was already used. Sign in, or reset your password."
        )
        return redirect("login")
    response = redirect("login")
    throttle.remember_device(response, user.email)
    audit_record(
        actor=user,
        action="user.sign_in_unlocked",
        obj=user,
        message="A browser was allowed to sign in from the e-mailed link.",
        data={"ip": throttle.client_ip(request)},
    )
    messages.success(request, "This browser can sign in to your account now.")
    return response


class SignOutView(auth_views.LogoutView):
    def post(self, request, *args, **kwargs):
        user = request.user if request.user.is_authenticated else None
        response = super().post(request, *args, **kwargs)
        if user is not None:
            audit_record(actor=user, action="user.signed_out", obj=user, message="Signed out.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """At most a few reset e-mails per address typed and per client, so the page cannot be
    used to flood someone's inbox."""

    def post(self, request, *args, **kwargs):
        target = throttle.normalise_username(request.POST.get("email"))
        limited = throttle.rate_limit(
            request, "password_reset", what="Too many password-reset requests."
        ) or throttle.rate_limit(
            request,
            "password_reset_target",
            f"reset:{target}",
            what="Several reset links were already sent to that address.",
        )
        return limited or super().post(request, *args, **kwargs)


def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST":
        limited = throttle.rate_limit(request, "signup", what="Too many sign-ups from here.")
        if limited:
            return limited
    if request.method == "POST" and form.is_valid():
        try:
            accounts.user_signup(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data["full_name"],
                time_zone=form.cleaned_data["time_zone"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            # The same page whether or not the address already had an account.
            return render(
                request, "registration/signup_done.html", {"email": form.cleaned_data["email"]}
            )
    return render(request, "registration/signup.html", {"form": form})


def verify_email(request, uidb64: str, token: str):
    try:
        accounts.user_verify_email(uidb64=uidb64, token=token)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, "Your e-mail address is confirmed. Sign in to continue.")
    return redirect("login")


def resend_verification(request):
    form = ResendVerificationForm(request.POST or None)
    if request.method == "POST":
        target = throttle.normalise_username(request.POST.get("email"))
        limited = throttle.rate_limit(
            request, "resend_verification", what="Too many requests for confirmation links."
        ) or throttle.rate_limit(
            request,
            "resend_verification_target",
            f"resend:{target}",
            what="Several confirmation links were already sent to that address.",
        )
        if limited:
            return limited
    if request.method == "POST" and form.is_valid():
        user = User.objects.filter(
            email__iexact=form.cleaned_data["email"], email_verified=False, is_active=True
        ).first()
        if user:
            accounts.user_send_verification(user=user)
        # Same answer either way, so the form does not reveal who has an account.
        messages.info(
            request,
            "If that address has an unconfirmed account, a new confirmation link is on its way.",
        )
        return redirect("login")
    return render(request, "registration/resend_verification.html", {"form": form})


@login_required
def profile_view(request):
    form = ProfileForm(
        request.POST or None,
        initial={"full_name": request.user.full_name, "time_zone": request.user.time_zone},
    )
    if request.method == "POST" and form.is_valid():
        profile.user_update_profile(user=request.user, **form.cleaned_data)
        messages.success(request, "Profile saved.")
        return redirect("profile")
    return render(request, "portal/profile.html", _profile_context(request, form=form))


def _profile_context(request, **extra) -> dict:
    return {
        "token": getattr(request.user, "api_token", None),
        "token_form": ApiTokenForm(),
        "two_factor": has_second_factor(request.user),
        "must_keep_two_factor": request.user.is_server_admin or request.user.is_superuser,
        **extra,
    }


@never_cache  # the page shows the key itself: no browser or proxy may keep a copy
@login_required
@require_POST
def api_token_create(request):
    token_form = ApiTokenForm(request.POST)
    if token_form.is_valid():
        try:
            key = profile.api_token_create(user=request.user, **token_form.cleaned_data)
        except ValidationError as exc:
            token_form.add_error(None, exc)
        else:
            return render(request, "portal/api_token_created.html", {"key": key})
    form = ProfileForm(
        initial={"full_name": request.user.full_name, "time_zone": request.user.time_zone}
    )
    context = _profile_context(request, form=form)
    context["token_form"] = token_form
    return render(request, "portal/profile.html", context, status=400)


@login_required
@require_POST
def api_token_revoke(request):
    profile.api_token_revoke(user=request.user)
    messages.success(request, "Your API token is revoked.")
    return redirect("profile")
