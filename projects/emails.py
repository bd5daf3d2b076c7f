from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse


def member_invited(*, project, email: str, role: str, actor) -> None:
    context = {
        "project": project,
        "role": role,
        "actor": actor,
        "url": settings.SITE_URL + reverse("project-detail", args=[project.pk]),
        "signup_url": settings.SITE_URL + reverse("signup"),
    }
    subject = f"[StudyText] You were added to {project.title}"
    send_mail(subject, render_to_string("projects/email/invited.txt", context), None, [email])


def project_owners_emails(project) -> list[str]:
    return list(
        project.memberships.filter(role="owner", user__is_active=True).values_list(
            "user__email", flat=True
        )
    )
