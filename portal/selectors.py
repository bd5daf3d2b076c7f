from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from portal.models import AuditEvent, OnboardingRequest


def onboarding_requests_for_user(*, user) -> QuerySet[OnboardingRequest]:
    return OnboardingRequest.objects.filter(requester=user).select_related(
        "redcap_instance", "project"
    )


def onboarding_request_get_for_user(*, user, pk: int) -> OnboardingRequest:
    """The request, if the user filed it or administers the server; 404 otherwise."""
    qs = OnboardingRequest.objects.select_related(
        "requester",
        "redcap_instance",
        "billing_account",
        "new_account_plan",
        "project",
        "decided_by",
    )
    if not user.is_server_admin:
        qs = qs.filter(requester=user)
    return get_object_or_404(qs, pk=pk)


def onboarding_requests_queue(
    *, status: str | None = None, instance_id: int | None = None, search: str = ""
) -> QuerySet[OnboardingRequest]:
    """The administrators' queue, oldest submission first. Default: requests awaiting a decision."""
    qs = OnboardingRequest.objects.select_related("requester", "redcap_instance")
    if status == "all":
        qs = qs.exclude(status=OnboardingRequest.Status.DRAFT)
    else:
        qs = qs.filter(status=status or OnboardingRequest.Status.SUBMITTED)
    if instance_id:
        qs = qs.filter(redcap_instance_id=instance_id)
    if search:
        term = search.strip()
        match = (
            Q(project_title__icontains=term)
            | Q(pi_name__icontains=term)
            | Q(irb_protocol__icontains=term)
            | Q(requester__email__icontains=term)
        )
        if term.isdigit():
            match |= Q(redcap_project_id=int(term))
        qs = qs.filter(match)
    return qs.order_by("submitted_at", "created_at")


def onboarding_request_counts_by_status() -> dict[str, int]:
    rows = OnboardingRequest.objects.values("status").annotate(n=Count("id"))
    counts = {status: 0 for status in OnboardingRequest.Status.values}
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def audit_events_for(*, obj) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(
        object_type=obj._meta.model_name, object_id=str(obj.pk)
    ).select_related("actor")


def audit_events(
    *, action: str = "", project_id: int | None = None, actor_email: str = ""
) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.select_related("actor")
    if action:
        qs = qs.filter(action__startswith=action)
    if project_id:
        qs = qs.filter(project_id=project_id)
    if actor_email:
        qs = qs.filter(actor__email__icontains=actor_email)
    return qs
