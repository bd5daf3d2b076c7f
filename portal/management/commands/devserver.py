import signal
import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server and the django-q2 cluster together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options):
        cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"])  # noqa: S603
        self.stdout.write(f"django-q2 cluster started (pid {cluster.pid}).")
        try:
            call_command("runserver", addrport, use_reloader=False)
        finally:
            if cluster.poll() is None:
                cluster.send_signal(signal.SIGTERM)
                try:
                    cluster.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    cluster.kill()
            self.stdout.write("Web server and task cluster stopped.")
