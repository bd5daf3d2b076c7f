from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from billing.selectors import credit_pack_requests_pending, plan_change_requests_pending
from messaging.selectors import sender_loops
from portal import selectors
from portal.health import health_report
from portal.models import OnboardingRequest


@login_required
def dashboard(request):
    user = request.user
    context = {
        "my_requests": selectors.onboarding_requests_for_user(user=user)[:20],
        "projects": selectors.dashboard_projects(user=user, limit=50),
        "failed_since": timezone.localdate() - selectors.FAILED_WINDOW,
    }
    if user.is_server_admin:
        counts = selectors.onboarding_request_counts_by_status()
        context["pending_count"] = counts[OnboardingRequest.Status.SUBMITTED]
        context["status_counts"] = [
            (value, label, counts[value]) for value, label in OnboardingRequest.Status.choices
        ]
        # The other two queues an administrator works through, beside the onboarding one.
        context["credit_pack_count"] = credit_pack_requests_pending().count()
        context["plan_change_count"] = plan_change_requests_pending().count()
        # Is the background work moving (what GET /api/health/ tells monitoring), and the
        # sender loop of each shard.
        context["health"] = health_report()
        context["sender"] = sender_loops()
    return render(request, "portal/dashboard.html", context)
