from axes.decorators import axes_dispatch
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from portal.forms import ProfileForm, ResendVerificationForm, SignInForm, SignUpForm
from portal.models import User
from portal.services import accounts, profile
from projects.forms import error_text


@method_decorator(axes_dispatch, name="dispatch")
class SignInView(auth_views.LoginView):
    form_class = SignInForm
    redirect_authenticated_user = True


def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = accounts.user_signup(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data["full_name"],
                time_zone=form.cleaned_data["time_zone"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return render(request, "registration/signup_done.html", {"email": user.email})
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
    token = getattr(request.user, "api_token", None)
    return render(request, "portal/profile.html", {"form": form, "token": token})


@never_cache  # the page shows the key itself: no browser or proxy may keep a copy
@login_required
@require_POST
def api_token_create(request):
    key = profile.api_token_create(user=request.user)
    return render(request, "portal/api_token_created.html", {"key": key})


@login_required
@require_POST
def api_token_revoke(request):
    profile.api_token_revoke(user=request.user)
    messages.success(request, "Your API token is revoked.")
    return redirect("profile")
