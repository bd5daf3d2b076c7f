import re

from django.conf import settings


def test_every_environment_variable_is_in_env_example():
    source = (settings.BASE_DIR / "portal" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\("([A-Z_]+)"', source))
    example_file = (settings.BASE_DIR / ".env.example").read_text()
    example = set(re.findall(r"^([A-Z_]+)=", example_file, re.M))
    assert read == example


def test_q2_times_out_a_task_before_it_could_be_handed_out_again():
    conf = settings.Q_CLUSTER
    assert conf["timeout"] < conf["retry"]
    assert 0 < conf["max_attempts"] <= 5
    assert conf["catch_up"] is False
    sender_seconds = settings.SENDER_MAX_SECONDS
    assert sender_seconds < conf["timeout"]


def test_sqlite_runs_with_wal_immediate_transactions_and_a_busy_timeout():
    from portal.settings import SQLITE_OPTIONS

    assert SQLITE_OPTIONS["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in SQLITE_OPTIONS["init_command"]
    assert SQLITE_OPTIONS["timeout"] >= 5
