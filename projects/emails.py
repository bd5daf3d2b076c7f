from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from billing import mail
from projects.models import Membership, Project


def member_invited(*, project, email: str, role: str, actor) -> None:
    context = {
        "project": project,
        "email": email,
        "role": Membership.Role(role).label.lower(),
        "actor": actor,
        "url": settings.SITE_URL + reverse("project-detail", args=[project.pk]),
        "signup_url": settings.SITE_URL + reverse("signup"),
    }
    subject = f"You were invited to {project.title}"
    mail.send(subject, render_to_string("projects/email/invited.txt", context), [email])


def project_owners_emails(project) -> list[str]:
    return list(
        project.memberships.filter(role="owner", user__is_active=True).values_list(
            "user__email", flat=True
        )
    )


def project_status_changed(*, project_id: int) -> None:
    """Tell the owners that the administrators suspended (or unsuspended) their project."""
    project = Project.objects.get(pk=project_id)
    recipients = project_owners_emails(project)
    if not recipients:
        return
    context = {
        "project": project,
        "url": settings.SITE_URL + reverse("project-settings", args=[project.pk]),
    }
    subject = f"{project.title} is {project.get_status_display().lower()}"
    if project.status == Project.Status.PAUSED:  # unsuspended projects come back paused
        subject = f"{project.title} is no longer suspended"
    body = render_to_string("projects/email/status_changed.txt", context)
    mail.send(subject, body, recipients)
