from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal import demo


class Command(BaseCommand):
    help = (
        "Development only: print the demo administrator's current two-factor code (the "
        "authenticator seed_demo made), so `make run` needs no phone."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", nargs="?", default=demo.ADMIN_EMAIL)

    def handle(self, *args, email: str, **options):
        if not (settings.DEBUG and settings.SANDBOX_ENABLED):
            raise CommandError("demo_totp works only in development (DEBUG and SANDBOX_ENABLED).")
        try:
            code = demo.demo_totp_code(email)
        except LookupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(code)
