"""Personas, the network guard and the browser set-up shared by every test."""

import os
import shutil
import socket
from urllib.parse import urlsplit

import pytest

# Playwright's sync API runs an event loop in the test thread; without this the Django ORM raises
# SynchronousOnlyOperation inside browser tests (docs/architecture.md). Test-only.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# --- Network guard --------------------------------------------------------------------------
# Tests talk to the loopback only: the live server (REDCap sandbox, fake providers), PostgreSQL
# and Redis. Anything else is a forgotten mock and must fail loudly rather than text someone.
# The suite runs on PostgreSQL when DATABASE_URL names it (CI's second leg); some tests need it.
ON_POSTGRES = urlsplit(os.environ.get("DATABASE_URL", "")).scheme in (
    "postgres",
    "postgresql",
    "pgsql",
)
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


class UnmockedNetworkCall(RuntimeError):
    pass


def _guarded_getaddrinfo(host, *args, **kwargs):
    if host is not None and str(host) not in LOOPBACK:
        raise UnmockedNetworkCall(
            f"Unmocked outbound network call to {host!r}. Mock it with respx."
        )
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
        raise UnmockedNetworkCall(f"Unmocked outbound connection to {address!r}.")
    return _real_connect(self, address)


socket.getaddrinfo = _guarded_getaddrinfo
socket.socket.connect = _guarded_connect

# --- Serial tests ------------------------------------------------------------------------------
# `make test` runs the suite in two pytest-xdist workers, then these tests alone in one process
# (`-m serial`), so that nothing competes with them for the two cores: they measure the pacing and
# timing of the threaded sender, the DET coalescing window, "within N seconds" journeys, or start
# real processes (every `slow` test). A file listed here is serial as a whole.
SERIAL_FILES = {
    "tests/test_background.py",  # the real task cluster and devserver (slow)
    "tests/test_deploy.py",  # the Procfile's release and web processes (slow)
    "tests/messaging/test_last_gate.py",  # a STOP or the hours closing mid-send, by the clock
    "tests/messaging/test_read_ahead.py",  # slow links keeping their pace
    "tests/messaging/test_shards.py",  # sender loops racing, each link at its pace
    "tests/messaging/test_sending_hours.py",  # hours that open or close around a send
    "tests/messaging/test_reliability.py",  # pacing, retries and slow links of the sender
    "tests/messaging/test_fake_provider.py",  # the fake provider's relative pacing
    "tests/projects/test_det_reads.py",  # DET bursts coalesced within a settle window
    "tests/projects/test_sandbox_det.py",  # the sandbox posts its trigger within a deadline
    "tests/e2e/test_alerts_journey.py",  # an alert within 15 s of a save
    "tests/e2e/test_det_journey.py",  # a save reaches StudyText within 15 s
}


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on it
def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    for item in items:
        if item.get_closest_marker("slow") or (
            item.path.relative_to(root).as_posix() in SERIAL_FILES
        ):
            item.add_marker(pytest.mark.serial)


# --- Browser --------------------------------------------------------------------------------
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is required in CI and is missing at {CHROMIUM}.")
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped.")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


# --- Throttle counters -----------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit and sign-in counters live in the (local-memory) cache: each test starts clean."""
    from django.core.cache import cache

    cache.clear()
    yield


# --- The REDCap sandbox ----------------------------------------------------------------------
@pytest.fixture(autouse=True)
def fresh_sandbox():
    """The REDCap sandbox keeps its records in this process: each test starts (and leaves it)
    with the seed records, whatever an earlier test imported or created (about 0.3 ms)."""
    from projects.sandbox import store

    store.reset()
    yield
    store.reset()


# --- Personas -------------------------------------------------------------------------------
@pytest.fixture
def researcher(db):
    from tests.factories import UserFactory

    return UserFactory(email="riley@uni.test", full_name="Riley Researcher")


@pytest.fixture
def other_researcher(db):
    from tests.factories import UserFactory

    return UserFactory(email="olive@uni.test", full_name="Olive Other")


@pytest.fixture
def server_admin(db):
    from tests.factories import ServerAdminFactory

    return ServerAdminFactory(email="alex@uni.test", full_name="Alex Admin")


@pytest.fixture
def instance(db):
    from tests.factories import RedcapInstanceFactory

    return RedcapInstanceFactory()


@pytest.fixture
def as_user(client):
    """as_user(user) -> a test client signed in as that user (None: anonymous), with the
    second factor passed when the user has one (tests/portal/test_two_factor.py covers the
    session without it)."""
    from tests.factories import verified_login

    def _as(user):
        client.logout()
        if user is not None:
            verified_login(client, user)
        return client

    return _as


# --- Reference data --------------------------------------------------------------------------
# Migrations seed the plans and the administrators' group. A transactional test (threads, the
# live server) ends by flushing every table, which would leave later tests without them: every
# database test starts by putting back whatever is missing, exactly as the migrations write it.
@pytest.fixture(autouse=True)
def _reference_data(request):
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not {"db", "transactional_db", "live_server"} & names:
        return
    transactional = {"transactional_db", "live_server"} & names or (
        marker is not None and marker.kwargs.get("transaction")
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    import importlib

    from django.apps import apps

    from billing.models import Plan

    if not Plan.objects.exists():
        importlib.import_module("billing.migrations.0003_seed_plans").seed(apps, None)
        importlib.import_module(
            "portal.migrations.0003_server_admin_group_and_append_only_audit"
        ).create_group(apps, None)
