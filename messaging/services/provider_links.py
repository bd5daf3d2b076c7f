"""Linking a project's SMS provider: validate with the provider's module, check with the
provider itself, then store encrypted (projects.services.links)."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone

from messaging.gateways import GatewayError, gateway_class
from projects.models import Project, ProviderLink
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


def provider_link_save(
    *, project: Project, provider: str, config: dict[str, str], rate_per_second, actor
) -> ProviderLink:
    """Check the credentials with the provider (its cheapest authenticated call), then store."""
    if provider not in ProviderLink.Provider.values:
        raise ValidationError({"provider": "Choose Mosio, Twilio or the sandbox."})
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
    display["Checked"] = f"{description} ({timezone.now():%Y-%m-%d})"
    return provider_link_store(
        project=project,
        provider=provider,
        config=cleaned,
        identity=cleaned.get(IDENTITY_KEYS[provider], str(project.pk)),
        display=display,
        rate_per_second=rate,
        actor=actor,
    )


def provider_link_test(*, link: ProviderLink) -> str:
    """ "Test connection": the provider's cheapest authenticated call with the stored config."""
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
