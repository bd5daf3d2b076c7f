"""E-mail notifications. Called after the transaction that caused them commits."""

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from billing import mail
from portal.models import SERVER_ADMIN_GROUP, OnboardingComment, OnboardingRequest, User


def server_admin_emails() -> list[str]:
    admins = User.objects.filter(is_active=True).filter(
        groups__name=SERVER_ADMIN_GROUP
    ) | User.objects.filter(is_active=True, is_superuser=True)
    return sorted(set(admins.values_list("email", flat=True)))


def _send(template: str, context: dict, recipients: list[str]) -> None:
    if not recipients:
        return
    context = {**context, "site_url": settings.SITE_URL}
    subject = render_to_string(f"portal/email/{template}_subject.txt", context)
    mail.send(subject, render_to_string(f"portal/email/{template}.txt", context), recipients)


def _request_url(onboarding_request: OnboardingRequest) -> str:
    return settings.SITE_URL + reverse("onboarding-detail", args=[onboarding_request.pk])


def onboarding_request_submitted(
    onboarding_request: OnboardingRequest, *, resubmitted: bool
) -> None:
    _send(
        "request_submitted",
        {
            "req": onboarding_request,
            "resubmitted": resubmitted,
            "url": _request_url(onboarding_request),
        },
        server_admin_emails(),
    )


def onboarding_request_decided(onboarding_request: OnboardingRequest) -> None:
    """The decision, e-mailed to the researcher. An approval links to the new project's page
    (where the next steps are), anything else to the request."""
    if onboarding_request.status == OnboardingRequest.Status.APPROVED:
        url = settings.SITE_URL + reverse("project-detail", args=[onboarding_request.project_id])
    else:
        url = _request_url(onboarding_request)
    _send(
        "request_decided",
        {"req": onboarding_request, "url": url},
        [onboarding_request.requester.email],
    )


def onboarding_comment_added(comment: OnboardingComment) -> None:
    onboarding_request = comment.request
    if comment.author_id == onboarding_request.requester_id:
        recipients = server_admin_emails()
    else:
        recipients = [onboarding_request.requester.email]
    recipients = [r for r in recipients if r != comment.author.email]
    _send(
        "request_comment",
        {"req": onboarding_request, "comment": comment, "url": _request_url(onboarding_request)},
        recipients,
    )


def email_verification(user: User, url: str) -> None:
    _send("verify_email", {"user": user, "url": url}, [user.email])


def signup_existing_account(user: User) -> None:
    _send(
        "signup_existing",
        {
            "user": user,
            "login_url": settings.SITE_URL + reverse("login"),
            "reset_url": settings.SITE_URL + reverse("password_reset"),
        },
        [user.email],
    )


def signin_paused(user: User, url: str, minutes: int) -> None:
    _send("signin_paused", {"user": user, "url": url, "minutes": minutes}, [user.email])
