"""Fixtures for the messaging tests: a clean locmem outbox, and a loopback fake provider."""

import pytest
from django.test import override_settings

from messaging.gateways import locmem
from tests.projects.conftest import (  # noqa: F401  (a project on the live REDCap sandbox)
    linked_project,
    mapped_project,
    sandbox_instance,
    sandbox_project,
)


@pytest.fixture(autouse=True)
def _clean_locmem_outbox():
    locmem.reset()
    yield
    locmem.reset()


@pytest.fixture
def outbox():
    """The locmem gateway's outbox, like Django's mail.outbox."""
    return locmem.outbox


@pytest.fixture
def fake_provider():
    """A started loopback FakeProvider, with both provider base URLs pointed at it."""
    from benchmarks.fake_provider import FakeProvider

    fake = FakeProvider().start()
    with override_settings(
        TWILIO_API_BASE=fake.twilio_api_base, MOSIO_API_BASE=fake.mosio_api_base
    ):
        yield fake
    fake.stop()
