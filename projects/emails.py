from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse

from projects.models import Membership


def member_invited(*, project, email: str, role: str, actor, has_account: bool) -> None:
    context = {
        "project": project,
        "email": email,
        "has_account": has_account,
        "role": Membership.Role(role).label.lower(),
        "actor": actor,
        "url": settings.SITE_URL + reverse("project-detail", args=[project.pk]),
        "signup_url": settings.SITE_URL + reverse("signup"),
    }
    verb = "added" if has_account else "invited"
    subject = f"[StudyText] You were {verb} to {project.title}"
    send_mail(subject, render_to_string("projects/email/invited.txt", context), None, [email])


def project_owners_emails(project) -> list[str]:
    return list(
        project.memberships.filter(role="owner", user__is_active=True).values_list(
            "user__email", flat=True
        )
    )
