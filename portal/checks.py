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


@register(Tags.security, deploy=True)
def check_no_loopback_redcap_in_production(app_configs, **kwargs) -> list[Error]:
    """REDCAP_ALLOW_LOOPBACK_HTTP lets a REDCap address be this machine over http: the
    development sandbox only (projects/netguard.py)."""
    if settings.REDCAP_ALLOW_LOOPBACK_HTTP and not settings.DEBUG:
        return [
            Error(
                "REDCAP_ALLOW_LOOPBACK_HTTP is on while DEBUG is off: REDCap tokens could be sent "
                "over plain http to services on this machine.",
                hint="Set REDCAP_ALLOW_LOOPBACK_HTTP=false in the production environment.",
                id="portal.E008",
            )
        ]
    return []


# Django's e-mail backends that deliver nothing to anyone, and what each does with the mail.
NON_DELIVERING_EMAIL_BACKENDS = {
    "django.core.mail.backends.console.EmailBackend": "prints every e-mail to the console",
    "django.core.mail.backends.locmem.EmailBackend": "keeps every e-mail in memory",
    "django.core.mail.backends.dummy.EmailBackend": "throws every e-mail away",
    "django.core.mail.backends.filebased.EmailBackend": "writes every e-mail to a file",
}


@register(Tags.security, deploy=True)
def check_email_is_delivered_in_production(app_configs, **kwargs) -> list[Error]:
    """EMAIL_URL defaults to consolemail:// for development. In production nobody could verify
    their address, reset a password or hear about their request: sign-up would be a dead end."""
    backend = settings.EMAIL_BACKEND
    if backend in NON_DELIVERING_EMAIL_BACKENDS and not settings.DEBUG:
        return [
            Error(
                f"The e-mail backend is “{backend}” while DEBUG is off: it "
                f"{NON_DELIVERING_EMAIL_BACKENDS[backend]}, so nobody receives the links to "
                "verify an address or reset a password, nor the news about their requests.",
                hint="Set EMAIL_URL to the institution's SMTP server, for example "
                "smtp+tls://user:password@smtp.example.edu:587.",
                id="portal.E006",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_secret_key_is_set(app_configs, **kwargs) -> list[Error]:
    """A throwaway key (DJANGO_SECRET_KEY unset) changes at every start and differs between
    workers: every sign-in, form and password-reset link would break."""
    if settings.SECRET_KEY_IS_THROWAWAY:
        return [
            Error(
                "DJANGO_SECRET_KEY is not set, so this process made up a throwaway key.",
                hint="Set DJANGO_SECRET_KEY to a long random value; .env.example shows how.",
                id="portal.E007",
            )
        ]
    return []
