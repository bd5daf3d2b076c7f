"""The one place that decides who may reach a project. Every project-scoped view uses it."""

from django.core.exceptions import PermissionDenied
from django.http import Http404

from projects.models import Membership, Project

OWNER, EDITOR, VIEWER = Membership.Role.OWNER, Membership.Role.EDITOR, Membership.Role.VIEWER
ROLE_RANK = {VIEWER: 1, EDITOR: 2, OWNER: 3}


def project_role(*, user, project: Project) -> str | None:
    """The user's role on the project; server administrators act as owners."""
    if not user.is_authenticated:
        return None
    if user.is_server_admin:
        return Membership.Role.OWNER
    return (
        Membership.objects.filter(project=project, user=user).values_list("role", flat=True).first()
    )


def role_at_least(role: str | None, min_role: str) -> bool:
    """Whether `role` (None: not a member) is `min_role` or above (owner > editor > viewer)."""
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[min_role]


WHO = {
    Membership.Role.OWNER: "owners",
    Membership.Role.EDITOR: "owners and editors",
    Membership.Role.VIEWER: "members",
}


def project_role_require(*, user, project: Project, min_role: str, doing: str) -> str:
    """The user's role on the project, when it is `min_role` or above; otherwise PermissionDenied
    in words: "Only the project's owners can <doing>." Services call this for every write."""
    role = project_role(user=user, project=project)
    if not role_at_least(role, min_role):
        raise PermissionDenied(f"Only the project's {WHO[Membership.Role(min_role)]} can {doing}.")
    return role


def project_get_for_user(
    *, user, pk: int, min_role: str = Membership.Role.VIEWER
) -> tuple[Project, str]:
    """Return (project, role). Outsiders get 404; members below `min_role` get 403."""
    project = (
        Project.objects.select_related(
            "account", "account__plan", "redcap_instance", "status_changed_by"
        )
        .filter(pk=pk)
        .first()
    )
    if project is None:
        raise Http404("No such project.")
    role = project_role(user=user, project=project)
    if role is None:
        raise Http404("No such project.")
    if not role_at_least(role, min_role):
        raise PermissionDenied(
            f"This needs the {Membership.Role(min_role).label.lower()} role on the project; "
            f"you are a {Membership.Role(role).label.lower()}."
        )
    return project, role
