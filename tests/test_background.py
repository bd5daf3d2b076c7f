"""The real background path, end to end: no `sync` queue, no test settings.

The rest of the suite runs django-q2 inline. This test migrates a database of its own in a
subprocess (the schedules are registered there, by post_migrate), seeds a project, queues a "send
now" before the cluster starts (the task must be in the broker: enqueued by transaction.on_commit)
and another while it runs, then runs `manage.py qcluster` with portal.settings: real worker
processes, the sender's thread pool, the broker and the scheduler. It stops the cluster with
SIGTERM as a service manager would, and checks every text went to the provider exactly once,
nothing failed, every schedule ran, and the cluster's log shows no "database is locked" and no
traceback.

Backends follow the environment, so CI's two legs cover both brokers: by default a temporary
SQLite file (WAL, IMMEDIATE, busy timeout) with the ORM broker; with DATABASE_URL=postgres://...
a fresh database on that server (created and dropped here); with REDIS_URL the Redis broker,
under a cluster name of its own so that nothing else on that Redis takes its tasks.

Slow (about two minutes: the scheduler first runs 30 s after the cluster starts). It runs in
`make test` and CI; select it alone with `pytest -m slow`.
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import ON_POSTGRES

pytestmark = pytest.mark.slow

BASE_DIR = Path(__file__).resolve().parent.parent
PARTICIPANTS = 30
SEND_RULE = "messaging.tasks.send_queued"
SCHEDULES = {
    "messaging-dispatch": "messaging.tasks.dispatch",
    "messaging-retention": "messaging.tasks.retention_purge",
    "messaging-mosio-poll": "messaging.tasks.mosio_poll",
    "messaging-reply-digest": "messaging.tasks.reply_digest",
    "messaging-surveys": "messaging.tasks.conversations_tick",
    "participant-sync-all": "projects.tasks.participant_sync_all",
    "Start monthly usage periods": "billing.tasks.usage_periods_start",
    "portal-database-statistics": "portal.tasks.refresh_statistics",
}
# Generous: a loaded 2-core machine, each process importing Django.
STEP_TIMEOUT = 180
WAIT_SECONDS = 150  # all sent and every schedule run once (the scheduler's first tick is at 30 s)
WAIT_TIMEOUT = WAIT_SECONDS + STEP_TIMEOUT
STOP_SECONDS = 60


@pytest.fixture
def database_url(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    if ON_POSTGRES:
        yield from _fresh_postgres_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'site.sqlite3'}"


def _fresh_postgres_database(url: str):
    import environ
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(url)
    server = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    name = f"studytext_background_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**server) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlsplit(url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(**server) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture
def cluster_name():
    name = f"studytext-background-{uuid.uuid4().hex[:12]}"
    yield name
    redis_url = os.environ.get("REDIS_URL", "")
    if redis_url:
        import redis

        client = redis.Redis.from_url(redis_url)
        try:
            for key in client.scan_iter(f"django_q:{name}:*"):
                client.delete(key)
        finally:
            client.close()


def site_environment(database_url: str, cluster_name: str) -> dict[str, str]:
    """The environment of a real site (portal.settings), with every setting that matters here
    given explicitly, so a developer's .env cannot change the test."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        # The console SMS gateway and e-mail below are development fakes: with DEBUG off the
        # worker refuses to start with them (portal/runtime_guards.py).
        DJANGO_DEBUG="true",
        DJANGO_SECRET_KEY="background-test-secret-key",
        SECRETS_ENCRYPTION_KEYS="w2nrQiDO3D_4uvgFdTsmaMCiQ_Qx0pb4fwTJ3dJsMBE=",
        SECRETS_FINGERPRINT_KEY="background-test-fingerprint-key",
        DATABASE_URL=database_url,
        REDIS_URL=os.environ.get("REDIS_URL", ""),
        Q_CLUSTER_NAME=cluster_name,
        Q_WORKERS="2",
        SMS_GATEWAY_OVERRIDE="console",
        SANDBOX_ENABLED="false",
        EMAIL_URL="consolemail://",
        QUOTA_UNIT="message",
        SENDER_THREADS="16",
        SENDER_MAX_IN_FLIGHT_PER_LINK="16",
        SENDER_MAX_SECONDS="40",
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    return env


def run(args: list[str], env: dict, timeout: float = STEP_TIMEOUT) -> str:
    done = subprocess.run(
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def step(env: dict, name: str, *args, timeout: float = STEP_TIMEOUT) -> dict:
    out = run(["-m", "tests.background_steps", name, *map(str, args)], env, timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def start_cluster(env: dict, log) -> subprocess.Popen:
    """`manage.py qcluster` writing to `log`, in a process group of its own (nothing outlives
    the test: stop_cluster, or SIGKILL to the group)."""
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "qcluster"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_cluster(cluster: subprocess.Popen) -> int:
    """SIGTERM to the cluster's main process (as systemd or Ctrl-C would), then wait for it and
    every process it started to exit."""
    cluster.send_signal(signal.SIGTERM)
    code = cluster.wait(timeout=STOP_SECONDS)
    deadline = time.monotonic() + 15
    while group_alive(cluster.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    return code


def test_the_task_cluster_sends_every_text_exactly_once_with_no_lock_errors(
    database_url, cluster_name, tmp_path
):
    env = site_environment(database_url, cluster_name)
    run(["manage.py", "migrate", "--noinput"], env, timeout=600)
    seeded = step(env, "seed", PARTICIPANTS)
    before, during = seeded["rules"]

    # Queued before any worker runs: the sender task is in the broker, put there on commit.
    first = step(env, "send", seeded["owner"], before)
    assert first["total"] == PARTICIPANTS
    assert first["queued_tasks"] == [SEND_RULE]

    log_path = tmp_path / "qcluster.log"
    with log_path.open("w") as log:
        cluster = start_cluster(env, log)
        try:
            sent_first = step(env, "wait", PARTICIPANTS, WAIT_SECONDS, timeout=WAIT_TIMEOUT)
            assert sent_first["done"], f"{sent_first}\n{log_path.read_text()[-8000:]}"
            # Queued while the workers run: picked up from the broker by the live cluster.
            second = step(env, "send", seeded["owner"], during)
            assert second["total"] == PARTICIPANTS
            waited = step(
                env, "wait", 2 * PARTICIPANTS, WAIT_SECONDS, "schedules", timeout=WAIT_TIMEOUT
            )
            exit_code = stop_cluster(cluster)
            orphans = group_alive(cluster.pid)
        finally:
            if group_alive(cluster.pid):
                os.killpg(cluster.pid, signal.SIGKILL)
            if cluster.poll() is None:
                cluster.wait(timeout=STOP_SECONDS)
    cluster_log = log_path.read_text()

    assert waited["done"], f"Not done in {WAIT_SECONDS} s: {waited}\n{cluster_log[-8000:]}"
    assert exit_code == 0, cluster_log
    assert not orphans, "A cluster process outlived SIGTERM."

    result = step(env, "report")
    postgres = urlsplit(database_url).scheme != "sqlite"
    assert result["database"] == ("postgresql" if postgres else "sqlite")
    assert result["journal_mode"] == ("" if postgres else "wal")
    assert result["broker"] == ("Redis" if env["REDIS_URL"] else "ORM")
    total = 2 * PARTICIPANTS
    assert result["messages"] == total
    assert result["by_status"] == {"sent": total}
    # Exactly once: one provider call per text, each accepted, each with its own provider id.
    assert result["attempt_rows"] == total
    assert result["attempt_outcomes"] == {"accepted": total}
    assert result["attempts_per_message"] == [1]
    assert result["message_attempts"] == [1]
    assert result["provider_ids"] == total
    assert cluster_log.count("SMS to ") == total  # the console gateway's line per text

    assert result["failures"] == []
    assert SEND_RULE in result["successes"]
    assert {name: s["func"] for name, s in result["schedules"].items()} == SCHEDULES
    assert all(s["ran"] for s in result["schedules"].values()), result["schedules"]
    assert result["queued_tasks"] == []

    assert "database is locked" not in cluster_log
    assert "Traceback" not in cluster_log, cluster_log
    assert " ERROR " not in cluster_log, cluster_log


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_the_web_server_and_the_cluster_within_10_s_mid_send(
    database_url, cluster_name, tmp_path, how
):
    """`make run` ends in `manage.py devserver`. Ctrl-C in its terminal (SIGINT to the whole
    foreground process group), or SIGTERM to it alone (a service manager), must stop the web
    server and every cluster process within 10 seconds, even with a send in flight (a link at
    one text a second, 30 texts: the sender is mid-send when the signal comes)."""
    import re
    import socket
    import urllib.request

    env = site_environment(database_url, cluster_name)
    env["DJANGO_DEBUG"] = "true"  # the development server, as `make run` starts it
    run(["manage.py", "migrate", "--noinput"], env, timeout=600)
    seeded = step(env, "seed", PARTICIPANTS, 1)
    step(env, "send", seeded["owner"], seeded["rules"][0])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path / "devserver.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "devserver", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group, like a terminal's foreground job
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
        )
        cluster_pid = None
        try:
            deadline = time.monotonic() + STEP_TIMEOUT
            status = None
            while time.monotonic() < deadline and status is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/") as r:
                        status = r.status
                except OSError:
                    time.sleep(0.5)
            assert status == 200, log_path.read_text()
            found = re.search(r"cluster started \(pid (\d+)\)", log_path.read_text())
            assert found, log_path.read_text()
            cluster_pid = int(found.group(1))
            # Mid-send: the sender has sent some texts and has more to send.
            sending_now = step(env, "wait", 2, STEP_TIMEOUT, timeout=STEP_TIMEOUT)
            assert sending_now["done"], f"{sending_now}\n{log_path.read_text()[-4000:]}"
            assert sending_now["by_status"].get("sent", 0) < PARTICIPANTS
            signalled = time.monotonic()
            if how == "ctrl-c":
                os.killpg(server.pid, signal.SIGINT)
            else:
                server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=STOP_SECONDS)
            while (group_alive(server.pid) or group_alive(cluster_pid)) and (
                time.monotonic() - signalled < 15
            ):
                time.sleep(0.1)
            took = time.monotonic() - signalled
            orphans = group_alive(server.pid) or group_alive(cluster_pid)
        finally:
            for pgid in (server.pid, cluster_pid):
                if pgid and group_alive(pgid):
                    os.killpg(pgid, signal.SIGKILL)
            if server.poll() is None:
                server.wait(timeout=STOP_SECONDS)
    output = log_path.read_text()
    assert "Web server and task cluster stopped." in output, output
    assert not orphans, f"A process outlived the signal:\n{output}"
    assert took <= 10, f"Stopping took {took:.1f} s:\n{output}"
    assert code == 0, f"exit status {code}:\n{output}"
    assert "Traceback" not in output, output


# --- Shards across clusters (docs/sending.md, "Shards") ------------------------------------------
SHARD_LINKS = 40
SHARD_TEXTS = 30  # per link: 15 s of its pace
SHARD_RATE = 2.0  # texts a second, each link
TAKEOVER_SECONDS = 240
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="sender loops in several clusters race on PostgreSQL (CI's second leg, with Redis)",
)


@postgres_only
def test_two_clusters_on_one_broker_send_a_shard_each_and_one_takes_over_a_killed_ones_shard(
    database_url, cluster_name, tmp_path
):
    """Two qcluster processes (as on two hosts) share the database and the broker, with
    SENDER_SHARDS=2 and one worker each: each runs the loop of one shard. One is killed with
    SIGKILL mid-send. Its shard's links get no text until its lease runs out; then the other
    cluster's loop takes the shard over. The killed loop's claimed texts wait for the sweep
    (run here at once), which queues them again or asks the provider. In the end every text
    reached the provider exactly once, and no link went faster than its pace."""
    from tests.fakes.provider import FakeProvider

    fake = FakeProvider(latency_ms=20).start()  # in this process, which mostly waits
    env = site_environment(database_url, cluster_name)
    env.update(
        SMS_GATEWAY_OVERRIDE="",
        TWILIO_API_BASE=fake.twilio_api_base,
        SENDER_SHARDS="2",
        Q_WORKERS="1",  # one loop per cluster at a time
    )
    total = SHARD_LINKS * SHARD_TEXTS
    logs = {name: tmp_path / f"cluster-{name}.log" for name in ("a", "b")}
    try:
        run(["manage.py", "migrate", "--noinput"], env, timeout=600)
        seeded = step(env, "seed_links", SHARD_LINKS, SHARD_TEXTS, SHARD_RATE)
        link_of = {n: int(link) for link, numbers in seeded["numbers"].items() for n in numbers}
        assert step(env, "send_all", seeded["owner"], *seeded["rules"])["total"] == total

        def parities_called(since: float, until: float = math.inf) -> set[int]:
            """The shards (link id % 2) whose links got a call between the two moments."""
            with fake.lock:
                return {link_of[to] % 2 for at, to in fake.calls if since < at < until}

        with logs["a"].open("w") as log_a, logs["b"].open("w") as log_b:
            clusters = {"a": start_cluster(env, log_a), "b": start_cluster(env, log_b)}
            try:
                # Side by side: both shards are being sent, each by one cluster.
                deadline = time.monotonic() + STEP_TIMEOUT
                while time.monotonic() < deadline:
                    if len(fake.calls) >= total // 6 and parities_called(time.time() - 1) == {0, 1}:
                        break
                    time.sleep(0.1)
                assert parities_called(time.time() - 1) == {0, 1}, logs["a"].read_text()[-4000:]
                os.killpg(clusters["a"].pid, signal.SIGKILL)
                killed_at = time.time()
                clusters["a"].wait(timeout=STOP_SECONDS)
                sent_by_then = len(fake.calls)

                # The killed loop's lease (30 s, renewed every 10 s) stands for 20 s at least:
                # only the other shard's links are texted meanwhile (from the second after the
                # kill, when the killed loop's last calls have arrived, to the 18th).
                time.sleep(max(0.0, killed_at + 18 - time.time()))
                window = parities_called(killed_at + 1, killed_at + 18)
                # The takeover waits for the lease (up to 30 s). The other cluster's loop has
                # mostly finished its own shard by then (a loop still running would ask for a
                # loop at its next renewal: test_shards.py), so the dispatcher's next run starts
                # it (every minute, on a scheduler that looks every 30 s): about two minutes at
                # worst (117 s in one run here).
                settled = step(
                    env, "settled", total, TAKEOVER_SECONDS, timeout=TAKEOVER_SECONDS + STEP_TIMEOUT
                )
                swept = step(env, "sweep_stranded")
                waited = step(env, "wait", total, WAIT_SECONDS, timeout=WAIT_TIMEOUT)
                exit_code = stop_cluster(clusters["b"])
            finally:
                for cluster in clusters.values():
                    if group_alive(cluster.pid):
                        os.killpg(cluster.pid, signal.SIGKILL)
                    if cluster.poll() is None:
                        cluster.wait(timeout=STOP_SECONDS)
        result = step(env, "report")
        stats = fake.stats()
        with fake.lock:
            calls = list(fake.calls)
    finally:
        fake.stop()
    log_b = logs["b"].read_text()

    assert sent_by_then < total  # killed mid-send
    assert len(window) == 1, window  # the killed cluster's shard: no text until its lease ran out
    (kept,) = window
    killed_shard = 1 - kept
    assert settled["done"], f"{settled}\n{log_b[-8000:]}"
    # The killed loop's shard was taken over: what it had not claimed was sent by the other.
    taken_over = [at for at, to in calls if link_of[to] % 2 == killed_shard and at > killed_at + 18]
    assert taken_over, f"{settled}\n{log_b[-8000:]}"
    assert waited["done"], f"{waited}\n{swept}\n{log_b[-8000:]}"
    assert exit_code == 0, log_b

    assert result["by_status"] == {"sent": total}, (result["by_status"], swept)
    assert (stats["accepted"], stats["duplicates"]) == (total, 0)
    assert result["provider_ids"] == total
    # Each link at its pace (MIN_SPACING of the gap, as the loop allows; a little less for the
    # arrival times' jitter), also across the takeover.
    by_link: dict[int, list[float]] = {}
    for at, to in sorted(calls):
        by_link.setdefault(link_of[to], []).append(at)
    assert len(by_link) == SHARD_LINKS
    for link, moments in by_link.items():
        gaps = [b - a for a, b in zip(moments, moments[1:], strict=False)]
        assert min(gaps) >= 0.6 / SHARD_RATE, (link, sorted(gaps)[:3])
    assert "Traceback" not in log_b, log_b
    assert " ERROR " not in log_b, log_b
