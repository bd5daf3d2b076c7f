from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings

from portal import demo


class Command(BaseCommand):
    help = (
        "Create the sandbox demo: an administrator, a researcher and a demo project (idempotent)."
    )

    def handle(self, *args, **options):
        password = settings.DEMO_PASSWORD
        if not password:
            raise CommandError("Set DEMO_PASSWORD (make run writes one into .env).")
        # The demo's own approval e-mails would only clutter the console at every start.
        quiet = override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend")
        with quiet, transaction.atomic():
            summary = demo.seed(password=password)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for line in summary:
            self.stdout.write(f"  {line}")
