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
    from tests.fakes.provider import FakeProvider

    fake = FakeProvider().start()
    with override_settings(
        TWILIO_API_BASE=fake.twilio_api_base, MOSIO_API_BASE=fake.mosio_api_base
    ):
        yield fake
    fake.stop()


@pytest.fixture
def fake_redcap(fake_provider):
    """Link a project's REDCap to the fake provider's record export, which answers what texts
    pipe at release: `fake_provider.redcap_records[record][field]` ("<field> <record>" when not
    set), nothing for records in `redcap_gone`, HTTP 503 with `redcap_down`."""
    from projects import crypto
    from projects.models import RedcapInstance, RedcapLink
    from tests.factories import UserFactory

    def link(project, *, token: str = "A" * 32):
        instance = RedcapInstance.objects.create(
            name=f"Fake REDCap {project.pk}", api_url=fake_provider.redcap_api_url
        )
        project.redcap_instance = instance
        project.save(update_fields=["redcap_instance"])
        RedcapLink.objects.create(
            project=project,
            token_encrypted=crypto.encrypt(token),
            token_last4=crypto.last4(token),
            token_fingerprint=crypto.fingerprint(token, purpose="redcap-token"),
            linked_by=UserFactory(),
        )
        return fake_provider

    return link
