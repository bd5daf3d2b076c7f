"""A project's SMS provider link: every write, in one place.

The credentials are validated by the provider's gateway module (messaging/gateways/), checked
with the provider itself (its cheapest authenticated call), then stored encrypted on
`projects.models.ProviderLink`; links are paused (bad credentials, or by hand), resumed,
removed, and marked reachable again after an outage. The model lives in `projects` (the
project's other settings do, and `projects` never imports `messaging`: docs/architecture.md);
what a link may name comes from the gateway registry (`messaging.gateways.provider_choices`).
"""

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from messaging.gateways import GatewayError, gateway_class, provider_choices
from messaging.signals import audit
from projects import crypto
from projects.access import project_role_require
from projects.models import Membership, Project, ProviderLink
from projects.selectors import project_provider_link

OWNER = Membership.Role.OWNER
MIN_RATE = Decimal("0.1")
MAX_RATE = Decimal("500")


def providers_offered() -> list[tuple[str, str]]:
    """Mosio and Twilio; the sandbox phone simulator only where the sandbox is on (never in
    production, where a "linked" simulator would silently text nobody)."""
    return [
        (slug, label)
        for slug, label in provider_choices()
        if not gateway_class(slug).is_fake or settings.SANDBOX_ENABLED
    ]


def _display(cls, config: dict[str, str]) -> dict[str, str]:
    secret = cls.secret_keys()
    shown = {}
    for field in cls.config_fields:
        value = config.get(field.key, "")
        if not value:
            continue
        shown[field.label] = f"••••{value[-4:]}" if field.key in secret else value
    return shown


# Every frame below (the gateway's HTTP call) holds the credentials: error reports hide them all.
@sensitive_variables()
def provider_link_save(
    *, project: Project, provider: str, config: dict[str, str], rate_per_second, actor
) -> ProviderLink:
    """Validate the credentials, check them with the provider, then store them encrypted."""
    # Checked before anything else: no provider call for a non-owner.
    project_role_require(user=actor, project=project, min_role=OWNER, doing="link its SMS provider")
    if provider not in dict(providers_offered()):
        names = " or ".join(label for _, label in providers_offered())
        raise ValidationError({"provider": f"Choose {names}."})
    try:
        rate = Decimal(str(rate_per_second))
    except ArithmeticError as exc:
        raise ValidationError({"rate_per_second": "Give the send rate as a number."}) from exc
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValidationError(
            {
                "rate_per_second": "Use a rate between 0.1 and 500 segments per second (1 for a US "
                "long code, 3 for toll-free)."
            }
        )
    cls = gateway_class(provider)
    cleaned = cls.validate_config(config)
    if provider == "sandbox":
        cleaned = {"project": str(project.pk)}
    try:
        description = cls(cleaned).check_credentials()
    except GatewayError as exc:
        raise ValidationError(
            f"{cls.label} did not accept these credentials: {exc.message}"
        ) from exc
    display = _display(cls, cleaned)
    display["Provider's answer"] = description
    return provider_link_store(
        project=project,
        provider=provider,
        config=cleaned,
        display=display,
        rate_per_second=rate,
        actor=actor,
    )


@sensitive_variables()
def provider_link_store(
    *,
    project: Project,
    provider: str,
    config: dict[str, str],
    display: dict[str, str],
    rate_per_second,
    actor,
) -> ProviderLink:
    """Store credentials `provider_link_save` validated and checked, encrypted (a new link
    starts running; a replaced one is resumed).

    The gateway's `identity_key` names what may serve only one project (the Mosio API key, the
    Twilio sender): its keyed fingerprint is unique across projects.
    """
    project_role_require(user=actor, project=project, min_role=OWNER, doing="link its SMS provider")
    cls = gateway_class(provider)
    identity = config.get(cls.identity_key) or str(project.pk)
    fp = crypto.fingerprint(identity, purpose=f"provider:{provider}")
    if ProviderLink.objects.filter(fingerprint=fp).exclude(project=project).exists():
        what = cls.identity_label
        raise ValidationError(
            f"This {what} is already linked to another StudyText project. One {what} serves one "
            "project (as REDCap also requires): use the one issued for this project."
        )
    try:
        with transaction.atomic():
            existing = (
                ProviderLink.objects.select_for_update(no_key=True).filter(project=project).first()
            )
            link = existing or ProviderLink(
                project=project, webhook_secret=secrets.token_urlsafe(32)
            )
            link.provider = provider
            link.config_encrypted = crypto.encrypt_json(config)
            link.display = display
            link.fingerprint = fp
            link.rate_per_second = rate_per_second
            link.linked_by = actor
            link.last_checked_at = timezone.now()
            link.last_error = ""
            link.is_paused = False
            link.paused_reason = ""
            link.save()
            audit.send(
                sender=ProviderLink,
                actor=actor,
                action="provider_link.replaced" if existing else "provider_link.created",
                obj=project,
                message=f"{link.get_provider_display()} credentials "
                f"{'replaced' if existing else 'linked'}.",
            )
    except IntegrityError as exc:  # a concurrent link of the same identity
        raise ValidationError("These credentials were just linked to another project.") from exc
    return link


@sensitive_variables()
def provider_link_test(*, link: ProviderLink, actor) -> str:
    """ "Test connection": the provider's cheapest authenticated call with the stored config."""
    project_role_require(
        user=actor, project=link.project, min_role=OWNER, doing="test its SMS provider link"
    )
    cls = gateway_class(link.provider)
    try:
        description = cls(link.config).check_credentials()
    except GatewayError as exc:
        ProviderLink.objects.filter(pk=link.pk).update(
            last_checked_at=timezone.now(), last_error=exc.message
        )
        raise ValidationError(exc.message) from exc
    ProviderLink.objects.filter(pk=link.pk).update(last_checked_at=timezone.now(), last_error="")
    return description


def provider_link_remove(*, project: Project, actor) -> None:
    """Delete the project's provider link, if any (its texts wait for a new one)."""
    project_role_require(
        user=actor, project=project, min_role=OWNER, doing="remove its SMS provider link"
    )
    with transaction.atomic():
        link = project_provider_link(project=project)
        if link is None:
            return
        link.delete()
        audit.send(
            sender=ProviderLink,
            actor=actor,
            action="provider_link.removed",
            obj=project,
            message=f"{link.get_provider_display()} credentials removed.",
        )


def provider_link_pause(*, link: ProviderLink, reason: str, actor=None) -> None:
    """Stop a provider link's sends (e.g. the provider refused its credentials)."""
    with transaction.atomic():
        updated = ProviderLink.objects.filter(pk=link.pk, is_paused=False).update(
            is_paused=True, paused_reason=reason, last_error=reason
        )
        if updated:
            audit.send(
                sender=ProviderLink,
                actor=actor,
                action="provider_link.paused",
                obj=link.project,
                message=f"Sending paused: {reason}",
            )


def provider_link_resume(*, link: ProviderLink, actor) -> None:
    project_role_require(
        user=actor, project=link.project, min_role=OWNER, doing="resume its SMS provider link"
    )
    with transaction.atomic():
        updated = ProviderLink.objects.filter(pk=link.pk, is_paused=True).update(
            is_paused=False, paused_reason=""
        )
        if updated:
            audit.send(
                sender=ProviderLink,
                actor=actor,
                action="provider_link.resumed",
                obj=link.project,
                message="Sending resumed.",
            )


def provider_link_reachable(*, link_id: int) -> None:
    """The provider answered again: the link no longer shows "unreachable, retrying", and the
    owners will be told of the next outage."""
    ProviderLink.objects.filter(pk=link_id, unreachable_since__isnull=False).update(
        unreachable_since=None, owners_told_at=None
    )


def provider_link_keywords_set(*, link: ProviderLink, answers: bool, actor) -> None:
    """Owners say whether the provider answers STOP/HELP itself (docs/compliance.md, "Keywords
    the provider answers"): when it does, StudyText sends no HELP text of its own. STOP is
    recorded either way."""
    project_role_require(
        user=actor, project=link.project, min_role=OWNER, doing="change who answers HELP"
    )
    with transaction.atomic():
        ProviderLink.objects.filter(pk=link.pk).update(provider_answers_keywords=bool(answers))
        audit.send(
            sender=ProviderLink,
            actor=actor,
            action="provider_link.keywords_changed",
            obj=link.project,
            message=(
                "The provider answers HELP itself: StudyText sends no HELP text."
                if answers
                else "StudyText answers HELP with the project's HELP text."
            ),
        )
