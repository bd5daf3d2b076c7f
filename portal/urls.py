from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from messaging.views.phones import staff_phone_remove
from portal.forms import PasswordResetForm
from portal.views import accounts, audit, dashboard, onboarding, two_factor
from projects import det_views

auth_patterns = [
    path("login/", accounts.SignInView.as_view(), name="login"),
    path("login/unlock/<str:uidb64>/<str:token>/", accounts.signin_unlock, name="signin-unlock"),
    path("logout/", accounts.SignOutView.as_view(), name="logout"),
    path("two-factor/", two_factor.verify, name="two-factor-verify"),
    path("two-factor/setup/", two_factor.setup, name="two-factor-setup"),
    path(
        "two-factor/recovery-codes/",
        two_factor.recovery_codes,
        name="two-factor-recovery-codes",
    ),
    path("two-factor/remove/", two_factor.remove, name="two-factor-remove"),
    path("signup/", accounts.signup, name="signup"),
    path("verify/<str:uidb64>/<str:token>/", accounts.verify_email, name="verify-email"),
    path("verify/resend/", accounts.resend_verification, name="resend-verification"),
    path(
        "password/reset/",
        accounts.PasswordResetView.as_view(form_class=PasswordResetForm),
        name="password_reset",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path(
        "password/change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("profile/", accounts.profile_view, name="profile"),
    path("profile/phone/remove/", staff_phone_remove, name="staff-phone-remove"),
    path("profile/api-token/", accounts.api_token_create, name="api-token-create"),
    path("profile/api-token/revoke/", accounts.api_token_revoke, name="api-token-revoke"),
]

onboarding_patterns = [
    path("", onboarding.request_list, name="onboarding-list"),
    path("new/", onboarding.request_create, name="onboarding-create"),
    path("review/", onboarding.review_queue, name="onboarding-queue"),
    path("<int:pk>/", onboarding.request_detail, name="onboarding-detail"),
    path("<int:pk>/edit/", onboarding.request_edit, name="onboarding-edit"),
    path("<int:pk>/submit/", onboarding.request_submit, name="onboarding-submit"),
    path("<int:pk>/withdraw/", onboarding.request_withdraw, name="onboarding-withdraw"),
    path("<int:pk>/comment/", onboarding.request_comment, name="onboarding-comment"),
    path("<int:pk>/decide/", onboarding.request_decide, name="onboarding-decide"),
    path("<int:pk>/files/", onboarding.attachment_upload, name="onboarding-attachment-upload"),
    path(
        "<int:pk>/files/<int:attachment_id>/",
        onboarding.attachment_download,
        name="onboarding-attachment",
    ),
    path(
        "<int:pk>/files/<int:attachment_id>/remove/",
        onboarding.attachment_remove,
        name="onboarding-attachment-remove",
    ),
]

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("accounts/", include(auth_patterns)),
    path("requests/", include(onboarding_patterns)),
    path("audit/", audit.audit_log, name="audit-log"),
    path("projects/", include("projects.urls")),
    path("projects/", include("messaging.urls")),
    path("webhooks/", include("messaging.webhook_urls")),
    path("webhooks/redcap/<str:secret>/", det_views.receive, name="redcap-det"),
    path("billing/", include("billing.urls")),
    path("api/", include("portal.api.urls")),
    path("admin/", admin.site.urls),
    # Pages that name no icon (the admin site) make browsers ask for /favicon.ico. Lazy: the
    # hashed name of the file is known only once the static files are collected.
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("img/favicon.svg"))),
]

# The simulated REDCap (development and tests only; `check --deploy` refuses it in production).
if settings.SANDBOX_ENABLED:
    urlpatterns += [path("sandbox/redcap/", include("projects.sandbox.urls"))]
