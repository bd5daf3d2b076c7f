"""System checks of the messaging settings (run at start-up by every manage.py command,
qcluster and runserver included)."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from messaging.shards import shard_count


@register()
def check_sender_shards(app_configs, **kwargs) -> list[Error]:
    """SENDER_SHARDS must be a whole number of 1 or more (docs/sending.md, "Shards")."""
    try:
        shard_count()
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="Set SENDER_SHARDS to 1, or to the number of sender loops that send side "
                "by side (README, “Deployment”); every worker host must use the same number.",
                id="messaging.E001",
            )
        ]
    return []
