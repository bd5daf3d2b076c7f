"""`manage.py check --deploy`: settings that must be right before the portal texts anyone."""

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_secrets_keys(app_configs, **kwargs) -> list[Error]:
    """Without these keys nobody can link REDCap or a provider (and a bad one fails at the first
    link, in front of a researcher): say so before going live."""
    errors = []
    keys = [k.strip() for k in settings.SECRETS_ENCRYPTION_KEYS if k and k.strip()]
    if not keys:
        errors.append(
            Error(
                "SECRETS_ENCRYPTION_KEYS is empty: REDCap tokens and provider credentials "
                "cannot be encrypted, so no project can be linked.",
                hint="Set it to one Fernet key (comma-separated, newest first, when rotating); "
                ".env.example shows how to make one.",
                id="portal.E001",
            )
        )
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            errors.append(
                Error(
                    f"SECRETS_ENCRYPTION_KEYS: key number {position} is not a Fernet key "
                    "(32 bytes, url-safe base64).",
                    hint="Replace it with a key made as .env.example shows.",
                    id="portal.E002",
                )
            )
    if not (settings.SECRETS_FINGERPRINT_KEY or "").strip():
        errors.append(
            Error(
                "SECRETS_FINGERPRINT_KEY is empty: the portal cannot tell whether a key is "
                "already linked to another project.",
                hint="Set it to a long random string, and never change it afterwards.",
                id="portal.E003",
            )
        )
    return errors


@register(Tags.security, deploy=True)
def check_no_sms_override_in_production(app_configs, **kwargs) -> list[Error]:
    """The override sends every project's texts to a fake: in production nobody would get one."""
    if settings.SMS_GATEWAY_OVERRIDE and not settings.DEBUG:
        return [
            Error(
                f"SMS_GATEWAY_OVERRIDE is “{settings.SMS_GATEWAY_OVERRIDE}” while DEBUG is off: "
                "every text would go to that fake gateway instead of the projects' providers.",
                hint="Set SMS_GATEWAY_OVERRIDE= (empty) in the production environment.",
                id="portal.E004",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_site_url_is_https(app_configs, **kwargs) -> list[Error]:
    """SITE_URL builds the links in e-mails (verification, password reset) and the provider
    webhooks: over plain http they would carry tokens in the clear."""
    if not settings.SITE_URL.lower().startswith("https://"):
        return [
            Error(
                f"SITE_URL is “{settings.SITE_URL}”, not an https:// address: links in e-mails "
                "and provider webhooks would travel unencrypted.",
                hint="Set SITE_URL to the portal's public https:// address.",
                id="portal.E005",
            )
        ]
    return []
