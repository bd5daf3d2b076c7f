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
# What SMS_GATEWAY_OVERRIDE may name.
FAKE_GATEWAYS = frozenset({"sandbox", "console", "locmem"})


def gateway_class(slug: str) -> type[Gateway]:
    try:
        path = GATEWAYS[slug]
    except KeyError:
        raise ImproperlyConfigured(f"Unknown SMS gateway {slug!r}.") from None
    return import_string(path)


def provider_choices() -> list[tuple[str, str]]:
    """What a project can pick on its provider link, in the registry's order, with the classes'
    own labels: (slug, label) of every `linkable` gateway. ProviderLink.provider takes its
    choices from here (messaging.apps installs them: projects never imports messaging)."""
    return [(slug, cls.label) for slug in GATEWAYS if (cls := gateway_class(slug)).linkable]


def provider_label(slug: str) -> str:
    """ "Twilio" for "twilio"; the slug itself for one the registry does not know."""
    return gateway_class(slug).label if slug in GATEWAYS else slug


def override_slug() -> str:
    slug = getattr(settings, "SMS_GATEWAY_OVERRIDE", "") or ""
    if slug and slug not in FAKE_GATEWAYS:
        raise ImproperlyConfigured(
            f"SMS_GATEWAY_OVERRIDE must be one of {sorted(FAKE_GATEWAYS)} or empty, not {slug!r}."
        )
    return slug


def delivers_to_simulator(link: Any) -> bool:
    """Whether the phone simulator is where a provider link's texts show: a sandbox link, or
    any link while SMS_GATEWAY_OVERRIDE sends every project's texts through the sandbox. Never
    while SANDBOX_ENABLED is off, whatever a project's stored provider says."""
    if not link or not settings.SANDBOX_ENABLED:
        return False
    return override_slug() == "sandbox" or getattr(link, "provider", "") == "sandbox"


class SandboxOffGateway(Gateway):
    """What a sandbox link gets while SANDBOX_ENABLED is off: every call fails as bad
    credentials, so the sender pauses the link and says why (nothing is "sent")."""

    slug = "sandbox-off"
    label = "Sandbox phone simulator (off)"

    def _refuse(self) -> GatewayError:
        return GatewayError(
            "This project's SMS provider is the sandbox phone simulator, which is turned off "
            "on this site. Link a real provider on the SMS provider page.",
            reason=Reason.BAD_CREDENTIALS,
        )

    def send(self, *, to: str, body: str, status_callback: str | None = None) -> SendResult:
        raise self._refuse()

    def check_credentials(self) -> str:
        raise self._refuse()

    def find_sent(self, *, to: str, body: str, since) -> str | None:
        raise self._refuse()


@sensitive_variables()  # the decrypted config: never in a crash report
def get_gateway(link: Any, **kwargs: Any) -> Gateway:
    """The gateway for a provider link (anything with `.provider` and a decrypted `.config`).

    With SMS_GATEWAY_OVERRIDE set, the override fake is returned instead, and it never sees the
    link's credentials. Extra keyword arguments (client, timeout) go to the gateway.
    """
    slug = override_slug()
    if (slug or link.provider) == "sandbox" and not settings.SANDBOX_ENABLED:
        # A project linked to the simulator in development, on a site where it is off: its
        # texts must not "send" to a simulator nobody can see.
        gateway = SandboxOffGateway({}, **kwargs)
    elif slug:
        gateway = gateway_class(slug)({}, **kwargs)
    else:
        gateway = gateway_class(link.provider)(dict(link.config or {}), **kwargs)
    gateway.link = link
    return gateway


__all__ = [
    "FAKE_GATEWAYS",
    "GATEWAYS",
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
    "provider_choices",
    "provider_label",
]
