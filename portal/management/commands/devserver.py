import contextlib
import os
import signal
import subprocess
import sys
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand

# Ctrl-C or SIGTERM stops everything within STOP_SECONDS, whatever the cluster is doing: the
# cluster gets GRACE_SECONDS to finish its tasks (a send in flight is cut short: the dispatcher's
# sweep recovers what it held, docs/sending.md), then it and every process it started are killed.
GRACE_SECONDS = 5
STOP_SECONDS = 10


class Command(BaseCommand):
    help = "Run the web server and the django-q2 cluster together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options):
        from projects.sandbox.services import sandbox_projects_restore

        # The REDCap sandbox keeps the projects it created in memory; bring back the linked ones
        # in this process, which serves the sandbox.
        restored = sandbox_projects_restore()
        if restored:
            self.stdout.write(f"REDCap sandbox: {restored} created project(s) restored.")
        # The cluster in a session (and process group) of its own: this command alone tells it
        # to stop, and can kill all of it, workers included, if it does not.
        cluster = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "qcluster"], start_new_session=True
        )
        self.stdout.write(f"django-q2 cluster started (pid {cluster.pid}).")

        def terminate(signum, frame):
            raise KeyboardInterrupt  # runserver turns it into an orderly exit

        signal.signal(signal.SIGTERM, terminate)
        try:
            call_command("runserver", addrport, use_reloader=False)
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal does not cut this
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self._stop(cluster)
            self.stdout.write("Web server and task cluster stopped.")

    @staticmethod
    def _stop(cluster: subprocess.Popen) -> None:
        def signal_group(signum: int) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(cluster.pid, signum)

        if cluster.poll() is None:
            cluster.send_signal(signal.SIGTERM)  # its main process stops its workers
            with contextlib.suppress(subprocess.TimeoutExpired):
                cluster.wait(timeout=GRACE_SECONDS)
        # Whatever is left of the cluster (a worker still sending, a process stuck "stopping").
        signal_group(signal.SIGKILL)
        deadline = time.monotonic() + STOP_SECONDS - GRACE_SECONDS
        while cluster.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
