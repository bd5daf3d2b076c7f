"""What a web or worker process refuses at start, whatever `check --deploy` said.

`check --deploy` is advice someone has to run; these are refusals. With DEBUG off (production), a
process that would serve the REDCap sandbox, send every text to a fake gateway, print e-mails
instead of sending them, let REDCap be reached on this machine over http, or sign with a
throwaway secret key does not start. Called by portal/wsgi.py, portal/asgi.py and, for
`qcluster`, `runserver` and `devserver`, by PortalConfig.ready().
"""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def unsafe_runtime_problems() -> list[str]:
    """Each reason this configuration must not run with DEBUG off (empty when DEBUG is on)."""
    from portal.checks import NON_DELIVERING_EMAIL_BACKENDS

    if settings.DEBUG:
        return []
    problems = []
    if settings.SANDBOX_ENABLED:
        problems.append("SANDBOX_ENABLED is on: set SANDBOX_ENABLED=false.")
    if settings.SMS_GATEWAY_OVERRIDE:
        problems.append(
            f"SMS_GATEWAY_OVERRIDE is “{settings.SMS_GATEWAY_OVERRIDE}”: every text would go "
            "to a fake. Set SMS_GATEWAY_OVERRIDE= (empty)."
        )
    if settings.EMAIL_BACKEND in NON_DELIVERING_EMAIL_BACKENDS:
        problems.append(
            f"The e-mail backend {settings.EMAIL_BACKEND} "
            f"{NON_DELIVERING_EMAIL_BACKENDS[settings.EMAIL_BACKEND]}. Set EMAIL_URL to SMTP."
        )
    if settings.REDCAP_ALLOW_LOOPBACK_HTTP:
        problems.append(
            "REDCAP_ALLOW_LOOPBACK_HTTP is on (for the development sandbox only): set it to false."
        )
    if settings.SECRET_KEY_IS_THROWAWAY:
        problems.append("DJANGO_SECRET_KEY is not set (see .env.example).")
    return problems


def refuse_unsafe_runtime() -> None:
    problems = unsafe_runtime_problems()
    if problems:
        raise ImproperlyConfigured(
            "StudyText will not start with DEBUG off in this configuration:\n- "
            + "\n- ".join(problems)
        )
