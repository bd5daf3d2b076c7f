import datetime

from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from messaging.models import Message, MessageRule, Reply
from messaging.selectors import INBOX_OPEN
from portal.models import AuditEvent, OnboardingRequest
from projects.models import FieldMapping, Membership, ProviderLink, RedcapLink, SyncRun
from projects.selectors import projects_for_user


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


def onboarding_comments_for(*, onboarding_request: OnboardingRequest) -> QuerySet:
    return onboarding_request.comments.select_related("author").order_by("created_at", "id")


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


SUBMITTED_ACTIONS = ("onboarding_request.submitted", "onboarding_request.resubmitted")


def last_submission_data(*, obj: OnboardingRequest) -> dict:
    """What the audit log kept of the request's latest submission: its `values` and, for a
    resubmission, its `changes` since the one before ({} if none was kept)."""
    data = (
        audit_events_for(obj=obj)
        .filter(action__in=SUBMITTED_ACTIONS)
        .order_by("-created_at", "-id")
        .values_list("data", flat=True)
        .first()
    )
    return data or {}


def participant_consent_events(*, participant) -> QuerySet[AuditEvent]:
    """A participant's opt-outs and opt-ins (texted, from the provider, by staff, written to
    REDCap), oldest first, from the audit log."""
    return (
        AuditEvent.objects.filter(
            object_type="participant",
            object_id=str(participant.pk),
            action__startswith="participant.",
        )
        .select_related("actor")
        .order_by("created_at", "id")
    )


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


def _count_per_project(qs: QuerySet) -> Coalesce:
    """A correlated COUNT of `qs` rows for each project (0 when none), for an annotation."""
    counted = (
        qs.filter(project=OuterRef("pk"))
        .order_by()
        .values("project")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


FAILED_WINDOW = datetime.timedelta(days=7)


def dashboard_projects(*, user, limit: int = 50) -> list:
    """The user's projects (every project for an administrator) with what a coordinator checks
    first: which set-up steps are done, how many messages are active, and what is waiting on
    someone (held and unconfirmed texts, texts due in the last 7 days that failed, replies in
    the inbox). One query,
    however many projects and messages there are."""
    of_project = {"project": OuterRef("pk")}
    # Texts due since local midnight 7 days ago: the list the "failed this week" badge links
    # to (the log's ?since=), counted off the (project, due_at, status) index.
    since = timezone.make_aware(
        datetime.datetime.combine(timezone.localdate() - FAILED_WINDOW, datetime.time.min)
    )
    projects = list(
        projects_for_user(user=user)
        .annotate(
            has_redcap=Exists(RedcapLink.objects.filter(**of_project)),
            has_provider=Exists(ProviderLink.objects.filter(**of_project)),
            provider_paused=Exists(ProviderLink.objects.filter(**of_project, is_paused=True)),
            has_mapping=Exists(FieldMapping.objects.filter(**of_project)),
            has_synced=Exists(
                SyncRun.objects.filter(**of_project, status=SyncRun.Status.SUCCEEDED)
            ),
            active_rules=_count_per_project(
                MessageRule.objects.filter(status=MessageRule.Status.ACTIVE)
            ),
            held_count=_count_per_project(Message.objects.filter(status=Message.Status.HELD)),
            unconfirmed_count=_count_per_project(
                Message.objects.filter(status=Message.Status.UNKNOWN)
            ),
            failed_count=_count_per_project(
                Message.objects.filter(
                    status__in=[Message.Status.FAILED, Message.Status.UNDELIVERED],
                    due_at__gte=since,
                )
            ),
            # The inbox (messaging.selectors.inbox_replies): replies from unknown numbers
            # count for the project's owners only (and administrators, who act as owners).
            inbox_known=_count_per_project(
                Reply.objects.filter(INBOX_OPEN, participant__isnull=False)
            ),
            inbox_unknown=_count_per_project(
                Reply.objects.filter(INBOX_OPEN, participant__isnull=True)
            ),
            is_owner=Value(True)
            if user.is_server_admin
            else Exists(
                Membership.objects.filter(**of_project, user=user, role=Membership.Role.OWNER)
            ),
        )
        # Projects with something waiting come first, so none hides beyond the limit.
        .annotate(
            attention=Case(
                When(
                    Q(held_count__gt=0)
                    | Q(failed_count__gt=0)
                    | Q(unconfirmed_count__gt=0)
                    | Q(provider_paused=True)
                    | Q(inbox_known__gt=0)
                    | Q(is_owner=True, inbox_unknown__gt=0),
                    then=Value(0),
                ),
                default=Value(1),
            )
        )
        .order_by("attention", "title", "pk")[:limit]
    )
    for project in projects:
        steps = [project.has_redcap, project.has_provider, project.has_mapping, project.has_synced]
        project.setup_done = sum(steps)
        project.setup_complete = all(steps)
        project.inbox_count = project.inbox_known + (
            project.inbox_unknown if project.is_owner else 0
        )
        project.needs_attention = bool(
            project.inbox_count
            or project.held_count
            or project.failed_count
            or project.unconfirmed_count
            or project.provider_paused
        )
    return projects
