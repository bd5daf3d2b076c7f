"""The Django admin site, open only to a session that has passed the second factor.

Django's own check is `is_active and is_staff`; ours adds a verified TOTP or recovery code
(django-otp), so a stolen password alone never reaches the admin site. Its sign-in page is the
portal's own (with the throttle and the second-factor step), not Django's admin login form.
"""

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect
from django.urls import reverse


class StudyTextAdminSite(admin.AdminSite):
    site_header = "StudyText administration"
    site_title = "StudyText"
    # The model list on the left of every page takes 300 px that wide change lists need to fit
    # at 1280 px; the index page (Home in the breadcrumbs) lists the models instead.
    enable_nav_sidebar = False

    def has_permission(self, request) -> bool:
        user = request.user
        verified = getattr(user, "is_verified", lambda: False)()
        return bool(user.is_active and user.is_staff and verified)

    def login(self, request, extra_context=None):
        """Anyone sent here signs in on the portal's page, then comes back (`next`)."""
        target = request.GET.get("next") or reverse("admin:index")
        if request.user.is_authenticated:
            # Signed in but not verified: the second-factor step (or, without the role, home).
            if request.user.is_staff:
                return redirect_to_login(target, reverse("two-factor-verify"))
            return redirect("dashboard")
        return redirect_to_login(target)
