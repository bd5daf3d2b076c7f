"""The API tested against its own schema by schemathesis: every operation of the live schema (the
one `/api/schema/` serves), with a read-and-write token and anonymously, with generated valid
and invalid input. No 5xx, no answer that breaks the schema, and nothing the schema calls
invalid is accepted.

The portal is called in-process through its WSGI handler (real requests through every
middleware, on the test's own database connection), a few examples per operation so the suite
stays quick; raise SCHEMATHESIS_MAX_EXAMPLES for a deeper run."""

import os

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis import checks

from portal.api.base import MAX_ID
from tests.api.conftest import build_world

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))
# Generated calls come fast: the rate limit is tested on its own (test_limits.py).
NO_LIMITS = {"api": (10**9, 60), "api_anonymous": (10**9, 60)}


@pytest.fixture
def schema_world(db):
    return build_world()


def _schema():
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
    schema.config.generation.update(max_examples=MAX_EXAMPLES)
    # Invalid data must be refused; a body over 64 KB is refused before it is read, with the
    # documented 413 (portal/api/errors.py), which schemathesis does not count by default.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


# Loaded once, at collection, from the running portal's own /api/schema/ (no database needed).
schema = _schema()


@pytest.fixture(autouse=True)
def _in_process():
    """As Django's test client does: the handler must not close the test's database connection
    at the end of each request. Generated calls come fast, so no rate limit either."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with override_settings(RATE_LIMITS={**django_settings.RATE_LIMITS, **NO_LIMITS}):
            yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def _real_ids(case, world) -> None:
    """Point ids in the address at the study's real objects (an out-of-range or mistyped id is
    left as generated: the schema calls it invalid, and it must be refused)."""
    for name, value in list((case.path_parameters or {}).items()):
        if name in world.kwargs and isinstance(value, int) and 0 <= value <= MAX_ID:
            case.path_parameters[name] = world.kwargs[name]


# A request the schema allows may still be refused for what only the server knows (a REDCap
# project with an open request already, a rule the form would refuse): that is a 400 with the
# field named, not a defect. Every other check runs, negative_data_rejection included.
SKIP = [checks.positive_data_acceptance]

HYPOTHESIS = settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@schema.parametrize()
@HYPOTHESIS
def test_the_api_keeps_to_its_schema_with_a_token(case, schema_world):
    _real_ids(case, schema_world)
    case.call_and_validate(
        headers={"Authorization": f"Token {schema_world.tokens['owner']}"}, excluded_checks=SKIP
    )


@schema.parametrize()
@HYPOTHESIS
def test_the_api_keeps_to_its_schema_anonymously(case, schema_world):
    _real_ids(case, schema_world)
    case.call_and_validate(excluded_checks=SKIP)
