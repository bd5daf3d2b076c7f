"""The example deployment in deploy/ (the README's "Deploying for real" uses it): the systemd units
and the Procfile name commands that exist, and the Procfile's release and web processes, run for
real on a fresh database with production settings (DEBUG off), answer the health check."""

import configparser
import importlib.util
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.core.management import get_commands

from tests.test_background import BASE_DIR, cluster_name, database_url, site_environment  # noqa: F401

DEPLOY = BASE_DIR / "deploy"
UNITS = ["studytext-web.service", "studytext-qcluster.service"]


def _procfile() -> dict[str, str]:
    lines = (DEPLOY / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))


def _unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(DEPLOY / name)
    return unit


def _check_command(words: list[str]) -> None:
    program = Path(words[0]).name
    if program == "gunicorn":
        assert words[1] == "portal.wsgi"
        assert importlib.util.find_spec(words[1]) is not None  # found, not run (it checks DEBUG)
    else:
        assert program == "python" and words[1] == "manage.py", words
        assert words[2] in get_commands(), f"no manage.py {words[2]}"


def test_the_procfile_names_commands_that_exist():
    processes = _procfile()
    assert set(processes) == {"release", "web", "worker"}
    for command in processes.values():
        _check_command(shlex.split(command.strip()))


@pytest.mark.parametrize("name", UNITS)
def test_the_systemd_units_name_commands_that_exist_and_stop_gently(name):
    unit = _unit(name)
    service = unit["Service"]
    words = shlex.split(service["ExecStart"])
    assert words[0].startswith(service["WorkingDirectory"])
    _check_command([words[0], *words[1:]])
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    if "qcluster" in words:
        # SIGTERM lets the task in hand finish: the unit must wait longer than a task may run.
        assert int(service["TimeoutStopSec"]) > settings.Q_CLUSTER["timeout"]
        assert service["Restart"] == "always"


def test_the_readme_deploys_with_these_files():
    readme = (BASE_DIR / "README.md").read_text()
    for name in [*UNITS, "Procfile"]:
        assert f"deploy/{name}" in readme, name
    assert "/api/health/" in readme
    assert "curl" in readme and "Authorization: Token" in readme


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_the_procfiles_release_and_web_processes_serve_the_health_check(
    database_url,  # noqa: F811
    cluster_name,  # noqa: F811
    tmp_path,
):
    """As a deploy would: `release` migrates a fresh database, then `web` (gunicorn, DEBUG off)
    answers /api/ and /api/health/ (working: the schedules were just registered)."""
    env = site_environment(database_url, cluster_name)
    env.update(
        DJANGO_DEBUG="false",
        SMS_GATEWAY_OVERRIDE="",
        EMAIL_URL="smtp://127.0.0.1:1",  # never used here; a console backend may not start
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SITE_URL="https://studytext.example.edu",
        PORT=str(_free_port()),
        PATH=f"{Path(os.sys.executable).parent}:{os.environ.get('PATH', '')}",
    )
    processes = _procfile()

    def command(name: str) -> str:
        return processes[name].strip().replace(".venv/bin/", f"{Path(os.sys.executable).parent}/")

    # The Procfile's own lines, through a shell, as a Procfile runner starts them.
    release = subprocess.run(  # noqa: S602
        command("release"),
        shell=True,
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert release.returncode == 0, release.stderr
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        web = subprocess.Popen(  # noqa: S602
            command("web"),
            shell=True,
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/api/health/", timeout=5)
                break
            except httpx.TransportError:
                assert web.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.3)
        body = health.json()
        assert health.status_code == 200, (body, log.read_text()[-2000:])
        assert body["database"]["ok"] and body["broker"]["ok"]
        root = httpx.get(f"{base}/api/", timeout=5)
        assert root.status_code == 200
        assert root.json()["documentation"]["health"].endswith("/api/health/")
        assert httpx.get(f"{base}/api/projects/", timeout=5).status_code == 401
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


def test_gunicorn_access_logs_leave_out_query_strings_and_referrers():
    """A Mosio webhook GET carries the number, the text and the API key in its query string."""
    config: dict = {}
    exec((BASE_DIR / "gunicorn.conf.py").read_text(), config)  # noqa: S102 - our own file
    fmt = config["access_log_format"]
    assert "%(U)s" in fmt
    for atom in ("%(r)s", "%(q)s", "%(f)s", "{"):
        assert atom not in fmt
