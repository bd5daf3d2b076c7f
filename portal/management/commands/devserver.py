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
        from projects.services.sandbox import sandbox_projects_restore

        # The REDCap sandbox keeps the projects it created in memory; bring back the linked ones
        # in this process, which serves the sandbox.
        restored = sandbox_projects_restore()
        if restored:
            self.stdout.write(f"REDCap sandbox: {restored} created project(s) restored.")
        cluster = subprocess.Popen([sys.executable, "manage.py", "qcluster"])  # noqa: S603
        self.stdout.write(f"django-q2 cluster started (pid {cluster.pid}).")
        interrupted = False
        try:
            call_command("runserver", addrport, use_reloader=False)
        except (KeyboardInterrupt, SystemExit):
            # Ctrl-C (runserver turns it into sys.exit(0)) reached the whole foreground process
            # group: the cluster got it too and is stopping. A second signal in the middle of its
            # shutdown would break it, so wait for it first.
            interrupted = True
        finally:
            self._stop(cluster, already_signalled=interrupted)
            self.stdout.write("Web server and task cluster stopped.")

    @staticmethod
    def _stop(cluster: subprocess.Popen, *, already_signalled: bool) -> None:
        if already_signalled:
            try:
                cluster.wait(timeout=20)
                return
            except subprocess.TimeoutExpired:
                pass
        if cluster.poll() is None:
            cluster.send_signal(signal.SIGTERM)
            try:
                cluster.wait(timeout=15)
            except subprocess.TimeoutExpired:
                cluster.kill()
