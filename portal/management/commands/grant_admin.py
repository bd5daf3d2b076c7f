from django.core.management.base import BaseCommand, CommandError

from portal.models import User
from portal.services.accounts import user_set_server_admin


class Command(BaseCommand):
    help = "Give a signed-up user the server-administrator role (use for the first administrator)."

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--revoke", action="store_true", help="Remove the role instead.")

    def handle(self, *args, email: str, revoke: bool, **options):
        user = User.objects.filter(email__iexact=email).first()
        if user is None:
            raise CommandError(f"No account uses {email}. Sign up first, then run this again.")
        user_set_server_admin(user=user, actor=None, grant=not revoke)
        if not revoke and not user.email_verified:
            user.email_verified = True
            user.save(update_fields=["email_verified"])
        verb = "removed from" if revoke else "granted to"
        self.stdout.write(self.style.SUCCESS(f"Server-administrator role {verb} {user.email}."))
