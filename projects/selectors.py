from django.db.models import Case, Count, Q, QuerySet, Value, When
from django.db.models.functions import Length

from billing.models import Account, AccountMembership
from projects.models import (
    FieldMapping,
    Membership,
    Participant,
    Project,
    ProviderLink,
    RedcapInstance,
    RedcapLink,
    SyncRun,
)


def projects_for_user(*, user) -> QuerySet[Project]:
    """Projects the user may see: all of them for a server administrator, else their own."""
    qs = Project.objects.select_related("account", "redcap_instance")
    if user.is_server_admin:
        return qs
    return qs.filter(memberships__user=user)


def project_field_mapping(*, project: Project | int) -> FieldMapping | None:
    """The project's field mapping, or None before its fields are mapped."""
    return FieldMapping.objects.filter(project=project).first()


def project_provider_link(*, project: Project | int) -> ProviderLink | None:
    """The project's SMS provider link, or None before one is linked (its config decrypts only
    when read)."""
    return ProviderLink.objects.filter(project=project).first()


def project_redcap_link(*, project: Project | int) -> RedcapLink | None:
    """The project's REDCap link, or None before its token is linked."""
    return RedcapLink.objects.filter(project=project).first()


def redcap_instances_offered() -> QuerySet[RedcapInstance]:
    return RedcapInstance.objects.filter(is_active=True)


READY = Q(issue="", in_redcap=True, consented=True, withdrawn=False, redcap_opted_out=False)
PARTICIPANT_FILTERS = {
    "ready": READY,
    "not_usable": ~Q(issue="") & Q(in_redcap=True),
    "withdrawn": Q(withdrawn=True, in_redcap=True),
    "opted_out": Q(redcap_opted_out=True, in_redcap=True),
    "gone": Q(in_redcap=False),
    "all": Q(),
}


def participant_counts(*, project: Project) -> dict[str, int]:
    """How many in each view of the participants page, in one aggregate query; `optout_pending`
    counts the opt-outs still waiting to be written to REDCap."""
    return Participant.objects.filter(project=project).aggregate(
        total=Count("id"),
        **{
            show: Count("id", filter=condition)
            for show, condition in PARTICIPANT_FILTERS.items()
            if show != "all"
        },
        optout_pending=Count("id", filter=~Q(optout_write_pending="")),
    )


def in_redcap_order(qs: QuerySet[Participant]) -> QuerySet[Participant]:
    """Participants in the order REDCap lists its records (docs/redcap.md): ids that are whole
    numbers first, by value (1, 2, 12, 13, 20, not 1, 12, 13, 2, 20); then the others, shorter
    first, so that DAG-prefixed ids read 12-2 before 12-10."""
    return qs.alias(
        record_id_not_number=Case(
            When(record_id__regex=r"^[0-9]+$", then=Value(0)), default=Value(1)
        ),
        record_id_length=Length("record_id"),
    ).order_by("record_id_not_number", "record_id_length", "record_id")


def participants_for_project(
    *, project: Project, show: str = "ready", search: str = ""
) -> QuerySet[Participant]:
    qs = Participant.objects.filter(project=project).filter(
        PARTICIPANT_FILTERS.get(show, PARTICIPANT_FILTERS["ready"])
    )
    if search:
        term = search.strip()
        qs = qs.filter(Q(record_id=term) | Q(first_name__icontains=term) | Q(phone_last4=term[-4:]))
    return in_redcap_order(qs)


def sync_run_latest(*, project: Project) -> SyncRun | None:
    return SyncRun.objects.filter(project=project).order_by("-created_at").first()


def project_setup_state(*, project: Project) -> dict[str, bool]:
    """Which set-up steps are done, without loading the secrets."""
    return {
        "redcap": RedcapLink.objects.filter(project=project).exists(),
        "provider": ProviderLink.objects.filter(project=project).exists(),
        "mapping": FieldMapping.objects.filter(project=project).exists(),
        "synced": SyncRun.objects.filter(project=project, status=SyncRun.Status.SUCCEEDED).exists(),
    }


def project_links(*, project: Project) -> dict:
    """The state of the project's REDCap and SMS-provider links, without their secrets."""
    redcap = (
        RedcapLink.objects.filter(project=project)
        .only("last_checked_at", "last_error", "redcap_project_title")
        .first()
    )
    provider = (
        ProviderLink.objects.filter(project=project)
        .only(
            "provider",
            "is_paused",
            "paused_reason",
            "last_checked_at",
            "last_error",
            "rate_per_second",
        )
        .first()
    )
    return {"redcap": redcap, "provider": provider}


def account_project_slots(*, project: Project) -> dict[str, int]:
    """The project's account: its plan's project limit and the projects taking a slot now."""
    account = project.account
    return {
        "limit": account.plan.project_limit,
        "used": Project.objects.filter(account=account).exclude(status="archived").count(),
    }


def accounts_to_move_to(*, project: Project, user) -> QuerySet[Account]:
    """Billing accounts `user` may move `project` to: any other account for a server
    administrator; for an owner of the project, the other accounts they own; else none."""
    qs = Account.objects.exclude(pk=project.account_id).select_related("plan").order_by("name")
    if getattr(user, "is_server_admin", False):
        return qs
    if not project.memberships.filter(user=user, role=Membership.Role.OWNER).exists():
        return qs.none()
    return qs.filter(memberships__user=user, memberships__role=AccountMembership.Role.OWNER)
