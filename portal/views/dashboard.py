from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from portal import selectors
from portal.models import OnboardingRequest
from projects.selectors import projects_for_user


@login_required
def dashboard(request):
    user = request.user
    context = {
        "my_requests": selectors.onboarding_requests_for_user(user=user)[:20],
        "projects": projects_for_user(user=user)[:50],
    }
    if user.is_server_admin:
        counts = selectors.onboarding_request_counts_by_status()
        context["pending_count"] = counts[OnboardingRequest.Status.SUBMITTED]
        context["status_counts"] = [
            (value, label, counts[value]) for value, label in OnboardingRequest.Status.choices
        ]
    return render(request, "portal/dashboard.html", context)
