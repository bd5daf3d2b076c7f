"""The message form's recipient count after the REDCap filter (docs/sending.md, "Recipient
count"): asked of REDCap in a django-q2 task, kept in the cache under a token the form polls.
Only when the recipients choice, the logic or the records change (not on each keystroke)."""

import secrets

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django_q.tasks import async_task

from messaging.models import MessageRule
from messaging.services.outbox import rule_recipients
from projects.access import EDITOR, project_role_require
from projects.models import Project

TTL = 300  # seconds a result is kept for the form to fetch


def _key(project_id: int, user_id: int, token: str) -> str:
    return f"messaging:recipient-count:{project_id}:{user_id}:{token}"


def recipient_count_start(
    *, project: Project, actor, recipients: str, filter_logic: str, record_ids: list[str]
) -> str:
    """Start counting; returns the token to poll with."""
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="change its messages")
    if recipients not in MessageRule.Recipients.values:
        raise ValidationError("Choose who receives the text.")
    token = secrets.token_urlsafe(12)
    key = _key(project.pk, actor.pk, token)
    cache.set(key, {"status": "pending"}, TTL)
    async_task(
        "messaging.tasks.recipient_count",
        key,
        project.pk,
        recipients,
        filter_logic[:5000],
        record_ids[:5000],
        task_name="recipient-count",
    )
    return token


def recipient_count_execute(
    *, key: str, project_id: int, recipients: str, filter_logic: str, record_ids: list[str]
) -> dict:
    project = Project.objects.get(pk=project_id)
    rule = MessageRule(
        project=project, recipients=recipients, filter_logic=filter_logic, record_ids=record_ids
    )
    from projects.logic import LogicError, parse

    problem = ""
    if recipients == MessageRule.Recipients.FILTER:
        try:
            parse(filter_logic) if filter_logic.strip() else None
        except LogicError as exc:
            problem = f"REDCap would not accept this filter: {exc}"
        if not filter_logic.strip():
            problem = "Write the REDCap logic that picks them."
    if problem:
        result = {"status": "error", "message": problem}
    else:
        try:
            count = rule_recipients(rule=rule).count()
        except ValidationError as exc:
            result = {"status": "error", "message": " ".join(exc.messages)}
        else:
            result = {"status": "done", "count": count}
    cache.set(key, result, TTL)
    return result


def recipient_count_result(*, project: Project, actor, token: str) -> dict:
    got = cache.get(_key(project.pk, actor.pk, token))
    return got or {"status": "error", "message": "This count expired; change the choice again."}
