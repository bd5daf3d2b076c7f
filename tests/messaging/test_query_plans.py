"""The log, the overview and the rules list read their texts off the indexes made for them
(messaging/migrations/0004), on SQLite and on PostgreSQL: no full scan of the texts and no sort
of all of them, checked with each database's own EXPLAIN on the queries the pages run, with the
planner's statistics fresh (portal.tasks.refresh_statistics on SQLite, ANALYZE on PostgreSQL).
benchmarks/pages.py times the same pages at a million texts."""

import datetime
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from messaging.models import Message, MessageRule, Send
from messaging.paging import LogCursor
from portal.tasks import refresh_statistics
from tests.factories import MessageRuleFactory, ParticipantFactory, ProjectFactory

pytestmark = pytest.mark.django_db
TEXTS = 12_000
STATUSES = ["delivered"] * 14 + ["sent", "failed", "undelivered", "skipped", "queued"]


@pytest.fixture
def big_project(researcher):
    """A project with a year of texts; a second project so that no index is trivially unique."""
    project = ProjectFactory(owner=researcher)
    other = ProjectFactory()
    people = [ParticipantFactory(project=project, record_id=str(n)) for n in range(40)]
    rules = [MessageRuleFactory(project=project, status="active") for _ in range(3)]
    send = Send.objects.create(project=project, rule=rules[0], created_by=researcher, total=0)
    now = timezone.now()
    rows = []
    for i in range(TEXTS):
        due = now - datetime.timedelta(minutes=44 * (TEXTS - i))
        status = STATUSES[i % len(STATUSES)]
        went = status in ("delivered", "sent", "undelivered")
        rows.append(
            Message(
                project=project if i % 10 else other,
                participant=people[i % len(people)],
                rule=rules[i % len(rules)],
                send=send if i % 97 == 0 else None,
                occurrence=str(i),
                dedup_key=f"plan-{i}",
                status=status,
                due_at=due,
                not_before=due,
                sent_at=due + datetime.timedelta(seconds=5) if went else None,
            )
        )
    Message.objects.bulk_create(rows, batch_size=2000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    else:
        refresh_statistics()
    return project


def _message_queries(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return [
        q["sql"]
        for q in captured.captured_queries
        if q["sql"].startswith("SELECT") and '"messaging_message"' in q["sql"]
    ]


def _sqlite_plan(sql: str) -> tuple[str, list[str]]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + sql)
        plan = [row[-1] for row in cursor.fetchall()]
    problems = [line for line in plan if re.match(r"SCAN (messaging_message|U\d)\b", line)]
    # A sort of every row; ordering ties on the last column ("RIGHT PART") is cheap.
    problems += [line for line in plan if line == "USE TEMP B-TREE FOR ORDER BY"]
    return "\n".join(plan), problems


def _postgresql_plan(sql: str) -> tuple[str, list[str]]:
    # With a few thousand rows PostgreSQL rightly reads the whole table; asked to plan as for
    # a large one (no sequential scan), it must find an index that serves the query.
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
            plan = cursor.fetchone()[0]
        finally:
            cursor.execute("RESET enable_seqscan")
    plan = json.loads(plan) if isinstance(plan, str) else plan
    problems, indexes = [], []

    def walk(node: dict) -> None:
        relation = node.get("Relation Name")
        if node["Node Type"] == "Seq Scan" and relation == "messaging_message":
            problems.append(f"Seq Scan on messaging_message ({node.get('Filter', '')})")
        if node.get("Index Name", "").startswith(("message", "messaging_m")):
            indexes.append(node["Index Name"])
        if node["Node Type"] == "Sort" and node.get("Plan Rows", 0) > 1000:
            problems.append(f"Sort of {node['Plan Rows']} rows")
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    if not indexes:
        problems.append("no index used on messaging_message")
    return json.dumps(plan), problems


def _plan(sql: str) -> tuple[str, list[str]]:
    """The plan as text, and what is wrong with it."""
    if connection.vendor == "postgresql":
        return _postgresql_plan(sql)
    return _sqlite_plan(sql)


# What each page's plans must show: the index made for it, and for the date filter and keyset
# pages a range on due_at itself (a function of due_at, as `__date` was, cannot seek it).
EXPECTED = {
    "log": [r"message_project_due"],
    "log by date": [r"message_project_due", r"due_at ?>", r"due_at ?<"],
    "log by status": [r"message_project_status"],
    "log by rule": [r"message_rule_due"],
    "log, a deep page": [r"message_project_due", r"due_at ?<"],
    "overview": [r"message_project_status", r"message_project_sent"],
    "rules list": [r"message_rule_due"],
}


def _pages(project) -> dict[str, str]:
    log = reverse("message-log", args=[project.pk])
    middle = Message.objects.filter(project=project).order_by("-due_at", "-id")[TEXTS // 2]
    day = timezone.localdate() - datetime.timedelta(days=120)
    rule = MessageRule.objects.filter(project=project).first()
    return {
        "log": log,
        "log by date": f"{log}?since={day}&until={day + datetime.timedelta(days=6)}",
        # One status: (project, status, due_at) gives its texts in the log's order. (A group
        # of statuses, "failed,undelivered", is two ranges the planner merges or sorts.)
        "log by status": f"{log}?status=failed",
        "log by rule": f"{log}?rule={rule.pk}",
        "log, a deep page": f"{log}?before={LogCursor.older_than(middle).token()}",
        "overview": reverse("project-detail", args=[project.pk]),
        "rules list": reverse("rule-list", args=[project.pk]),
    }


def test_the_log_overview_and_rules_list_read_their_indexes(as_user, researcher, big_project):
    client = as_user(researcher)
    found = {}
    for page, url in _pages(big_project).items():
        queries = _message_queries(client, url)
        assert queries, f"{page} reads no texts?"
        plans = []
        for sql in queries:
            plan, problems = _plan(sql)
            plans.append(plan)
            if problems:
                found[f"{page}: {sql[:160]}"] = problems
        missing = [p for p in EXPECTED[page] if not re.search(p, "\n".join(plans))]
        if missing:
            found[f"{page}: plans lack"] = [*missing, *plans]
    assert found == {}, json.dumps(found, indent=1)
