"""Linking a project's SMS provider: validate with the provider's module, check with the
provider itself, then store encrypted (projects.services.links)."""

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from messaging.gateways import GatewayError, gateway_class
from projects.access import project_role
from projects.models import Membership, Project, ProviderLink
from projects.services.links import provider_link_store

# What may serve only one project, per provider (REDCap enforces one Mosio key per project).
IDENTITY_KEYS = {"mosio": "api_key", "twilio": "sender", "sandbox": "project"}
MAX_RATE = Decimal("500")


def _display(cls, config: dict[str, str]) -> dict[str, str]:
    secret = cls.secret_keys()
    shown = {}
    for field in cls.config_fields:
        value = config.get(field.key, "")
        if not value:
            continue
        shown[field.label] = f"••••{value[-4:]}" if field.key in secret else value
    return shown


def providers_offered() -> list[tuple[str, str]]:
    """Mosio and Twilio; the sandbox phone simulator only where the sandbox is on (never in
    production, where a "linked" simulator would silently text nobody)."""
    return [
        (value, label)
        for value, label in ProviderLink.Provider.choices
        if value != ProviderLink.Provider.SANDBOX or settings.SANDBOX_ENABLED
    ]


# Every frame below (the gateway's HTTP call) holds the credentials: error reports hide them all.
@sensitive_variables()
def provider_link_save(
    *, project: Project, provider: str, config: dict[str, str], rate_per_second, actor
) -> ProviderLink:
    """Check the credentials with the provider (its cheapest authenticated call), then store."""
    # Checked here too (provider_link_store checks again): no provider call for a non-owner.
    if project_role(user=actor, project=project) != Membership.Role.OWNER:
        raise PermissionDenied("Only the project's owners can link its SMS provider.")
    if provider not in dict(providers_offered()):
        names = " or ".join(label for _, label in providers_offered())
        raise ValidationError({"provider": f"Choose {names}."})
    try:
        rate = Decimal(str(rate_per_second))
    except ArithmeticError as exc:
        raise ValidationError({"rate_per_second": "Give the send rate as a number."}) from exc
    if not Decimal("0.1") <= rate <= MAX_RATE:
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
        identity=cleaned.get(IDENTITY_KEYS[provider], str(project.pk)),
        display=display,
        rate_per_second=rate,
        actor=actor,
    )


@sensitive_variables()
def provider_link_test(*, link: ProviderLink, actor) -> str:
    """ "Test connection": the provider's cheapest authenticated call with the stored config."""
    if project_role(user=actor, project=link.project) != Membership.Role.OWNER:
        raise PermissionDenied("Only the project's owners can test its SMS provider link.")
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


def provider_link_reachable(*, link_id: int) -> None:
    """The provider answered again: the link no longer shows "unreachable, retrying", and the
    owners will be told of the next outage."""
    ProviderLink.objects.filter(pk=link_id, unreachable_since__isnull=False).update(
        unreachable_since=None, owners_told_at=None
    )
