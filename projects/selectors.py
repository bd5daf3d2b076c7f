from django.db.models import QuerySet

from projects.models import Project, RedcapInstance


def projects_for_user(*, user) -> QuerySet[Project]:
    """Projects the user may see: all of them for a server administrator, else their own."""
    qs = Project.objects.select_related("account", "redcap_instance")
    if user.is_server_admin:
        return qs
    return qs.filter(memberships__user=user)


def redcap_instances_offered() -> QuerySet[RedcapInstance]:
    return RedcapInstance.objects.filter(is_active=True)
