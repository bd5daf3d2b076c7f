"""SMS gateways: a registry of slugs to dotted paths, imported lazily (healthchecks' style).

    gateway = get_gateway(link)          # link.provider, link.config (decrypted dict)
    result = gateway.send(to="+15551234567", body="...", status_callback=url)

settings.SMS_GATEWAY_OVERRIDE (a fake's slug) sends every project's texts through that fake.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from .base import (
    ConfigField,
    Gateway,
    GatewayError,
    InboundSms,
    Reason,
    SendResult,
    StatusUpdate,
    backoff_delay,
    mask_phone,
)

GATEWAYS: dict[str, str] = {
    "mosio": "messaging.gateways.mosio.MosioGateway",
    "twilio": "messaging.gateways.twilio.TwilioGateway",
    "sandbox": "messaging.gateways.sandbox.SandboxGateway",
    "console": "messaging.gateways.console.ConsoleGateway",
    "locmem": "messaging.gateways.locmem.LocmemGateway",
}
# What a project can pick on its provider link (ProviderLink.provider choices). The labels are
# the classes' own; a test keeps them in step.
PROVIDER_CHOICES: list[tuple[str, str]] = [
    ("mosio", "Mosio"),
    ("twilio", "Twilio"),
    ("sandbox", "Sandbox phone simulator"),
]
# What SMS_GATEWAY_OVERRIDE may name.
FAKE_GATEWAYS = frozenset({"sandbox", "console", "locmem"})


def gateway_class(slug: str) -> type[Gateway]:
    try:
        path = GATEWAYS[slug]
    except KeyError:
        raise ImproperlyConfigured(f"Unknown SMS gateway {slug!r}.") from None
    return import_string(path)


def override_slug() -> str:
    slug = getattr(settings, "SMS_GATEWAY_OVERRIDE", "") or ""
    if slug and slug not in FAKE_GATEWAYS:
        raise ImproperlyConfigured(
            f"SMS_GATEWAY_OVERRIDE must be one of {sorted(FAKE_GATEWAYS)} or empty, not {slug!r}."
        )
    return slug


def delivers_to_simulator(link: Any) -> bool:
    """Whether the phone simulator is where a provider link's texts show: a sandbox link, or
    any link while SMS_GATEWAY_OVERRIDE sends every project's texts through the sandbox."""
    if not link:
        return False
    return override_slug() == "sandbox" or getattr(link, "provider", "") == "sandbox"


@sensitive_variables()  # the decrypted config: never in a crash report
def get_gateway(link: Any, **kwargs: Any) -> Gateway:
    """The gateway for a provider link (anything with `.provider` and a decrypted `.config`).

    With SMS_GATEWAY_OVERRIDE set, the override fake is returned instead, and it never sees the
    link's credentials. Extra keyword arguments (client, timeout) go to the gateway.
    """
    slug = override_slug()
    if slug:
        gateway = gateway_class(slug)({}, **kwargs)
    else:
        gateway = gateway_class(link.provider)(dict(link.config or {}), **kwargs)
    gateway.link = link
    return gateway


__all__ = [
    "FAKE_GATEWAYS",
    "GATEWAYS",
    "PROVIDER_CHOICES",
    "ConfigField",
    "Gateway",
    "GatewayError",
    "InboundSms",
    "Reason",
    "SendResult",
    "StatusUpdate",
    "backoff_delay",
    "delivers_to_simulator",
    "gateway_class",
    "get_gateway",
    "mask_phone",
    "override_slug",
]
