from django.core.management.base import BaseCommand

from projects.services.links import secrets_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret (REDCap tokens, provider credentials, phone numbers) under "
        "the newest key in SECRETS_ENCRYPTION_KEYS. Put the new key first, run this, then remove "
        "the old keys."
    )

    def handle(self, *args, **options):
        count = secrets_rotate()
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} secrets under the newest key."))
