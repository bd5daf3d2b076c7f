from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_sandbox_off_in_production(app_configs, **kwargs) -> list[Error]:
    """The REDCap sandbox answers to fixed, published tokens: never in production."""
    if settings.SANDBOX_ENABLED and not settings.DEBUG:
        return [
            Error(
                "SANDBOX_ENABLED is on while DEBUG is off: the simulated REDCap (with its "
                "published demo tokens) would be served in production.",
                hint="Set SANDBOX_ENABLED=false in the production environment.",
                id="projects.E001",
            )
        ]
    return []
