"""The suite's own order: transactional tests (the browser journeys, the concurrency races) flush
the database when they end, seeded plans and the administrators' group included, so every
ordinary database test must run before the first of them. pytest-django sorts them so, but a
session-scoped parametrization (pytest-playwright's browser) regroups tests that merely borrow a
fixture's name, like a parameter called `page`."""


def _transactional(item) -> bool:
    marker = item.get_closest_marker("django_db")
    flushed = marker is not None and (
        marker.kwargs.get("transaction") or marker.kwargs.get("reset_sequences")
    )
    fixtures = getattr(item, "fixturenames", [])
    return bool(flushed or "transactional_db" in fixtures or "live_server" in fixtures)


def _plain_db(item) -> bool:
    uses_db = item.get_closest_marker("django_db") is not None or "db" in getattr(
        item, "fixturenames", []
    )
    return uses_db and not _transactional(item)


def test_no_ordinary_database_test_runs_after_a_transactional_one(request):
    items = request.session.items
    first_flush = next((i for i, item in enumerate(items) if _transactional(item)), len(items))
    late = [item.nodeid for item in items[first_flush:] if _plain_db(item)]
    assert late == []


def test_every_file_named_serial_exists(request):
    """A serial file renamed or moved would silently run beside other tests again."""
    from tests.conftest import SERIAL_FILES

    missing = [name for name in SERIAL_FILES if not (request.config.rootpath / name).is_file()]
    assert missing == []
