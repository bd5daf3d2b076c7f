"""Alerts to the study team (docs/sending.md, "Alerts to the study team").

An alert rule with `notify_team` e-mails the chosen project members and fixed addresses (and
texts the members' own verified phones when `alert_sms`), instead of texting the participant. It
fires on REDCap logic becoming true or after a survey's completion (messaging/services/
triggers.py), one TeamAlert row per occurrence (its dedup key), delivered by a task that reads
the record's values from REDCap and pipes them in. The participant's phone number is never
piped into an e-mail. E-mails cost no quota; a text to a staff phone counts like any text.
"""

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from messaging import piping
from messaging.models import MessageRule, StaffPhone, TeamAlert
from projects.models import Membership, Project
from projects.redcap import RedcapError
from projects.selectors import project_field_mapping, project_provider_link
from projects.services.links import redcap_client_for

logger = logging.getLogger(__name__)
Trigger = MessageRule.Trigger
TEAM_TRIGGERS = (Trigger.LOGIC, Trigger.COMPLETION)


def phone_fields(mapping) -> set[str]:
    return {mapping.phone_field} if mapping and mapping.phone_field else set()


def validate_team_alert(rule: MessageRule, members: list, mapping, errors: dict) -> None:
    """The parts of an alert to the team the service checks without REDCap."""
    from messaging.services.rules import alert_emails_clean

    rule.alert_emails = alert_emails_clean(rule.alert_emails)
    if not members and not rule.alert_emails:
        errors["alert_members"] = (
            "An alert to the team needs at least one recipient: choose project members, or add "
            "an e-mail address."
        )
    bad = []
    for address in rule.alert_emails:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        errors["alert_emails"] = (
            f"{', '.join(f'“{b}”' for b in bad)} {'is' if len(bad) == 1 else 'are'} not "
            "an e-mail address. Write one address per line, like coordinator@university.edu."
        )
    member_ids = set(
        Membership.objects.filter(project_id=rule.project_id).values_list("user_id", flat=True)
    )
    strangers = [u for u in members if u.pk not in member_ids]
    if strangers:
        errors["alert_members"] = "Only members of this project can receive its alerts."
    if rule.trigger not in TEAM_TRIGGERS:
        errors["trigger"] = (
            "An alert to the team goes out when REDCap logic becomes true or after a survey was "
            "completed: choose one of those triggers."
        )
    used = set(piping.tokens(rule.body))
    phones = used & phone_fields(mapping)
    if phones:
        errors["body"] = (
            f"The participant's phone number ([{sorted(phones)[0]}]) is never put in an alert: "
            "remove it, and pipe [record_id] so the team can look the participant up."
        )
    if rule.alert_sms and not members:
        errors["alert_sms"] = "Texts go to members' own phones: choose the members to text."


def alert_fields(rule: MessageRule, mapping) -> list[str]:
    """The REDCap fields an alert's text pipes (never the phone)."""
    return sorted(set(piping.tokens(rule.body)) - {"record_id"} - phone_fields(mapping))


def _deliverable():
    """Unsent alerts of an active rule in an active project: a paused rule or project holds its
    alerts (handed out when active again); archiving a rule cancels them (`team_alerts_cancel`)."""
    return TeamAlert.objects.filter(
        sent_at__isnull=True,
        rule__status=MessageRule.Status.ACTIVE,
        project__status=Project.Status.ACTIVE,
    )


def team_alerts_cancel(*, rule: MessageRule, reason: str) -> int:
    """Mark the rule's unsent alerts as never to be sent (in the caller's transaction)."""
    return TeamAlert.objects.filter(rule=rule, sent_at__isnull=True).update(
        sent_at=timezone.now(), error=reason
    )


def team_alert_deliver(*, alert_id: int) -> TeamAlert | None:
    """E-mail (and text) one alert. Claimed first, so a duplicated task sends nothing twice."""
    now = timezone.now()
    if not _deliverable().filter(pk=alert_id).update(sent_at=now):
        return None
    alert = TeamAlert.objects.select_related("rule", "participant", "project").get(pk=alert_id)
    rule, project, participant = alert.rule, alert.project, alert.participant
    mapping = project_field_mapping(project=project)
    values = {"record_id": participant.record_id}
    fields = alert_fields(rule, mapping)
    errors = []
    if fields:
        try:
            client = redcap_client_for(project)
            rows = client.records(records=[participant.record_id], fields=fields)
        except (RedcapError, ValidationError) as exc:
            rows = []
            errors.append(f"REDCap did not answer, so the values are missing: {exc}")
        row = next(
            (r for r in rows if not r.get("redcap_repeat_instrument")), rows[0] if rows else {}
        )
        for name in fields:
            values[name] = str(row.get(name, "") or "")
    body = piping.render(rule.body, piping.PipingContext(values=values))
    members = list(rule.alert_members.filter(is_active=True, memberships__project=project))
    addresses = list(dict.fromkeys([*(m.email for m in members if m.email), *rule.alert_emails]))
    subject = f"StudyText alert: {rule.name} (record {participant.record_id}, {project.title})"
    sent = 0
    for address in addresses:
        try:
            sent += send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
        except OSError as exc:
            errors.append(f"An e-mail could not be sent: {exc.__class__.__name__}.")
    texts = 0
    if rule.alert_sms and project_provider_link(project=project) is not None:
        from messaging.services.test_texts import staff_text_send

        phones = StaffPhone.objects.filter(
            user__in=members, verified_at__isnull=False
        ).select_related("user")
        for phone in phones:
            try:
                staff_text_send(
                    project=project, user=phone.user, phone=phone.phone, body=body, rule=rule
                )
                texts += 1
            except ValidationError as exc:
                errors.append(" ".join(exc.messages))
    TeamAlert.objects.filter(pk=alert.pk).update(
        emails=sent, texts=texts, error="\n".join(errors)[:2000]
    )
    logger.info("Team alert %s: %s e-mails, %s texts.", alert.pk, sent, texts)
    alert.refresh_from_db()
    return alert


def team_alerts_queue(alerts: list[TeamAlert], *, now=None) -> int:
    """Write the alerts (a duplicate occurrence is ignored) and hand each new one that is due
    to a task; one due later (a follow-up's delay) is handed out by the dispatcher then
    (`team_alerts_hand_out_due`)."""
    if not alerts:
        return 0
    now = now or timezone.now()
    keys = [a.dedup_key for a in alerts]
    before = set(TeamAlert.objects.filter(dedup_key__in=keys).values_list("dedup_key", flat=True))
    TeamAlert.objects.bulk_create(alerts, ignore_conflicts=True)
    new = list(
        TeamAlert.objects.filter(dedup_key__in=set(keys) - before, due_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    transaction.on_commit(lambda: _hand_out(new))
    return len(set(keys) - before)


def _hand_out(pks) -> None:
    from django_q.tasks import async_task

    for pk in pks:
        async_task("messaging.tasks.team_alert_send", pk, task_name=f"team-alert-{pk}")


def team_alerts_hand_out_due(*, now=None) -> int:
    """For the dispatcher, every minute: alerts whose time has come, not sent yet."""
    now = now or timezone.now()
    pks = list(_deliverable().filter(due_at__lte=now).values_list("pk", flat=True)[:500])
    _hand_out(pks)
    return len(pks)
