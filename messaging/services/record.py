"""Recording what the provider answered (docs/sending.md, "5. One call, and failure classes"):
the gateway classifies a failure; this module decides what each class means for the message,
the participant, the quota and the provider link."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from billing.services import quota_release
from messaging.gateways import GatewayError, Reason, SendResult, backoff_delay
from messaging.models import Attempt, Message, OptOut
from messaging.services.claim import per_row
from messaging.services.optouts import opt_out_record
from messaging.services.provider_links import provider_link_pause
from projects.models import Participant, ProviderLink

Status = Message.Status
# Texts that never reached the provider are retried with capped, jittered backoff (seconds)
# for SENDER_RETRY_MINUTES from their first try (docs/sending.md, "Retries").
RETRY_BASE = 1.0
RETRY_CAP = 60.0


def status_callback_url(link: ProviderLink) -> str | None:
    if link.provider != "twilio":  # the provider that posts delivery receipts
        return None
    return settings.SITE_URL + reverse("twilio-status", args=[link.webhook_secret])


@dataclass
class Outcome:
    status: str
    reason: Reason | None = None
    retry_after: float | None = None


def record_successes(
    items: list[tuple[Message, SendResult]],
    *,
    accepted_at: dict[int, datetime.datetime] | None = None,
) -> None:
    """The provider accepted these: sent, and their attempts completed (one transaction, two
    UPDATEs whatever the number). A row the sweep already marked `unknown` becomes `sent` too.
    `accepted_at`: per message, when the provider's answer came (the sender records a moment
    later, several texts together); now otherwise."""
    if not items:
        return
    now = timezone.now()
    ids = [message.pk for message, _ in items]
    sids = {m.pk: r.provider_message_id[:64] for m, r in items}
    provider_ids = per_row("id", sids, models.CharField())
    attempt_ids = per_row("message_id", sids, models.CharField())
    sent_at = finished_at = now
    if accepted_at:
        adapt = connection.ops.adapt_datetimefield_value
        moments = {pk: adapt(accepted_at.get(pk) or now) for pk in ids}
        sent_at = per_row("id", moments, models.DateTimeField())
        finished_at = per_row("message_id", moments, models.DateTimeField())
    with transaction.atomic():
        Message.objects.filter(pk__in=ids, status__in=[Status.SENDING, Status.UNKNOWN]).update(
            status=Status.SENT,
            provider_message_id=provider_ids,
            sent_at=sent_at,
            attempts=F("attempts") + 1,
            error="",
            error_code="",
            updated_at=now,
        )
        Attempt.objects.filter(message_id__in=ids, outcome=Attempt.Outcome.STARTED).update(
            outcome=Attempt.Outcome.ACCEPTED,
            finished_at=finished_at,
            provider_message_id=attempt_ids,
        )
    for message, result in items:
        message.status = Status.SENT
        message.provider_message_id = result.provider_message_id[:64]


def record_failure(message: Message, exc: GatewayError, link: ProviderLink) -> Outcome:
    """Record a refused or unanswered call by its class (docs/sending.md, 5.). The status moves
    first, by a conditional UPDATE; the quota and the participant are touched only if it moved,
    so a row the sweep took over meanwhile is never released twice."""
    now = timezone.now()
    reason = exc.reason
    code = str(exc.code or exc.status_code or "")[:32]
    attempts = message.attempts + 1
    update = {"attempts": attempts, "error": exc.message, "error_code": code, "updated_at": now}
    outcome = Attempt.Outcome.FAILED
    release = False
    gave_up = False
    if reason.safe_to_retry or reason == Reason.BAD_CREDENTIALS:
        # The provider never took it: give the quota back; it goes out later. A short blip (a
        # refused connection, 429s) never fails a text: it is retried with capped, jittered
        # backoff for SENDER_RETRY_MINUTES from its first try (docs/sending.md).
        release = True
        update["units"] = 0
        if reason == Reason.BAD_CREDENTIALS or now - _first_try(message, now) < retry_period():
            delay = backoff_delay(
                attempts, base=RETRY_BASE, cap=RETRY_CAP, retry_after=exc.retry_after
            )
            update.update(status=Status.QUEUED, not_before=now + datetime.timedelta(seconds=delay))
            outcome = Attempt.Outcome.RETRY
        else:
            gave_up = True
            minutes = settings.SENDER_RETRY_MINUTES
            update.update(
                status=Status.FAILED,
                error=f"The provider could not be reached for {minutes} minutes "
                f"({attempts} tries): {exc.message}",
            )
    elif reason == Reason.AMBIGUOUS:
        update["status"] = Status.UNKNOWN  # may have gone out: reconcile, never resend blindly
        outcome = Attempt.Outcome.AMBIGUOUS
    else:
        release = True
        update.update(status=Status.FAILED, units=0)
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=Status.SENDING).update(**update)
        Attempt.objects.filter(message_id=message.pk, outcome=Attempt.Outcome.STARTED).update(
            outcome=outcome, finished_at=now, error=exc.message[:1000], error_code=code
        )
        if moved and release:
            quota_release(
                project=message.project, units=message.units, reserved_at=message.reserved_at
            )
        if moved and reason == Reason.INVALID_NUMBER:
            Participant.objects.filter(pk=message.participant_id).update(number_invalid=True)
        elif moved and reason == Reason.OPTED_OUT:
            opt_out_record(
                participant=message.participant,
                source=OptOut.Source.PROVIDER,
                detail=f"{link.get_provider_display()} reported the number unsubscribed ({code}).",
            )
        if reason.safe_to_retry:
            ProviderLink.objects.filter(pk=link.pk, unreachable_since__isnull=True).update(
                unreachable_since=now
            )
        if moved and gave_up:
            # The owners are told once per outage (the first text that gives up).
            first = ProviderLink.objects.filter(pk=link.pk, owners_told_at__isnull=True).update(
                owners_told_at=now
            )
            if first:
                transaction.on_commit(lambda: _alert_owners_unreachable(link, exc.message))
        if reason == Reason.BAD_CREDENTIALS:
            running = ProviderLink.objects.filter(pk=link.pk, is_paused=False).exists()
            provider_link_pause(
                link=link,
                reason=f"{link.get_provider_display()} refused the credentials: {exc.message}",
            )
            if running:  # one e-mail, not one per text that was in flight
                transaction.on_commit(lambda: _alert_owners_bad_credentials(link, exc.message))
    if moved:
        message.status = update["status"]
        message.attempts = attempts
        if release:
            message.units = 0
    return Outcome(update["status"] if moved else message.status, reason, exc.retry_after)


def retry_period() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.SENDER_RETRY_MINUTES)


def _first_try(message: Message, now: datetime.datetime) -> datetime.datetime:
    """When this text was first handed to the provider (its first attempt row)."""
    first = (
        Attempt.objects.filter(message_id=message.pk)
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return first or now


def _alert_owners_unreachable(link: ProviderLink, detail: str) -> None:
    from django.core.mail import send_mail

    from projects.emails import project_owners_emails

    recipients = project_owners_emails(link.project)
    if recipients:
        minutes = settings.SENDER_RETRY_MINUTES
        send_mail(
            f"[StudyText] Texts could not reach {link.get_provider_display()}",
            f"For {minutes} minutes StudyText could not reach {link.get_provider_display()} for "
            f"{link.project.title}, so texts that waited that long are marked failed; the others "
            f"go on retrying. Nothing was sent twice.\n\n{detail}\n\nThe message log lists "
            f"the failed texts; send them again once the provider answers:\n"
            f"{settings.SITE_URL}{reverse('message-log', args=[link.project_id])}?status=failed\n",
            None,
            recipients,
        )


def _alert_owners_bad_credentials(link: ProviderLink, detail: str) -> None:
    from billing import mail
    from projects.emails import project_owners_emails

    recipients = project_owners_emails(link.project)
    if recipients:
        mail.send(
            f"Texting paused for {link.project.title}",
            f"{link.get_provider_display()} refused the project's credentials, so StudyText paused "
            f"its texts. Nothing is lost: queued texts wait.\n\n{detail}\n\nReplace the "
            f"credentials on the project's set-up page, then resume sending:\n"
            f"{settings.SITE_URL}{reverse('project-provider', args=[link.project_id])}\n",
            recipients,
        )
