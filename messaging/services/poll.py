"""Polling Mosio's text history for replies and statuses (docs/mosio.md, "Polling").

Mosio documents no inbound webhook outside REDCap (M21), so every active Mosio link is polled:
the `messaging-mosio-poll` schedule runs each minute, and each link is asked again once
`MOSIO_POLL_SECONDS` have passed since its last poll (or, after an error, once its backoff is
over). Decisions, so an owner can predict them:

- The cursor is the newest history time Mosio showed us (`ProviderLink.poll_cursor`). The next
  poll asks `Since` that time: Mosio's `Since` is taken to include it (M8), so the last item is
  seen again and deduplicated (its `Id`, and the content key of M26; an item with neither id
  nor date by its number and text). A restart resumes from the
  stored cursor; a first poll starts at the link's creation, at most `MOSIO_POLL_LOOKBACK_HOURS`
  back.
- Inbound texts go through `inbound.inbound_receive`, exactly as a webhook's do, so a reply that
  arrives both ways is recorded once and a HELP is answered once.
- Outgoing items that carry a status (M27) move their text forward through
  `receipts.receipt_apply` (never back). Mosio usually reports none (M12): such texts stay
  "sent", which the log shows as "Sent (Mosio does not report delivery)".
- When Mosio errs (down, a bad key, a malformed page), the cursor stays where it was, so nothing
  is lost; the link waits `MOSIO_POLL_SECONDS` × 2^(failures in a row) (at most an hour, or Mosio's
  Retry-After) before it is asked again. One link's failure never stops another's poll.
- Logs name the link, counts and the error, never a phone number or a text.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.gateways import GatewayError, get_gateway
from messaging.gateways.mosio import HISTORY_LIMIT
from messaging.models import Reply
from messaging.services.inbound import inbound_receive, normalise_number
from messaging.services.receipts import receipt_apply
from projects import crypto
from projects.models import Project, ProviderLink

logger = logging.getLogger(__name__)

MAX_PAGES = 5  # per link and poll: a backlog is worked off over several polls
MAX_BACKOFF = timedelta(hours=1)


@dataclass
class PollReport:
    link_id: int
    ok: bool = True
    replies: int = 0  # new replies stored
    duplicates: int = 0
    receipts: int = 0  # texts moved forward
    error: str = ""


def links_due(*, now: datetime | None = None):
    """The Mosio links to poll now: not archived, not waiting out a backoff or the interval."""
    now = now or timezone.now()
    return (
        ProviderLink.objects.filter(provider="mosio")
        .exclude(project__status=Project.Status.ARCHIVED)
        .filter(Q(poll_next_at__isnull=True) | Q(poll_next_at__lte=now))
        .order_by("poll_next_at", "pk")
    )


def mosio_poll_all(*, now: datetime | None = None) -> list[PollReport]:
    """Poll every Mosio link that is due, each on its own: one failing link stops no other."""
    reports = []
    for link_id in links_due(now=now).values_list("pk", flat=True):
        reports.append(mosio_poll_link(link_id=link_id, now=now))
    return reports


def _backoff(link: ProviderLink, retry_after: float | None) -> timedelta:
    base = timedelta(seconds=settings.MOSIO_POLL_SECONDS)
    delay = min(base * (2 ** min(link.poll_failures + 1, 10)), MAX_BACKOFF)
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay


def mosio_poll_link(*, link_id: int, now: datetime | None = None) -> PollReport:
    """Poll one link's history; on an error, keep the cursor and back off."""
    now = now or timezone.now()
    report = PollReport(link_id=link_id)
    retry_after = None
    try:
        with transaction.atomic():
            # Two polls at once (a slow one overlapping the next minute's): the second skips.
            link = (
                ProviderLink.objects.select_for_update(skip_locked=True, no_key=True, of=("self",))
                .select_related("project")
                .filter(pk=link_id)
                .first()
            )
            if link is None:
                report.ok = False
                report.error = "busy"
                return report
            _poll(link, report=report, now=now)
    except GatewayError as exc:
        report.ok, report.error, retry_after = False, str(exc), exc.retry_after
    except Exception as exc:  # noqa: BLE001 - one link's bug must not stop the others
        report.ok = False
        report.error = f"Unexpected error while reading Mosio's history ({type(exc).__name__})."
        logger.exception("Polling Mosio failed unexpectedly (link %s).", link_id)
    if not report.ok and report.error != "busy":
        _failed(link_id, report=report, retry_after=retry_after, now=now)
    elif report.ok:
        logger.info(
            "Polled Mosio (link %s): %s new replies, %s seen before, %s texts moved on.",
            link_id,
            report.replies,
            report.duplicates,
            report.receipts,
        )
    return report


def _poll(link: ProviderLink, *, report: PollReport, now: datetime) -> None:
    gateway = get_gateway(link)
    if not hasattr(gateway, "poll_history"):
        # SMS_GATEWAY_OVERRIDE sends through a fake, which has no history to read.
        link.poll_next_at = now + timedelta(seconds=settings.MOSIO_POLL_SECONDS)
        link.save(update_fields=["poll_next_at"])
        return
    lookback = now - timedelta(hours=settings.MOSIO_POLL_LOOKBACK_HOURS)
    since = link.poll_cursor or max(link.linked_at or lookback, lookback)
    for _ in range(MAX_PAGES):
        page = gateway.poll_history(since=since)
        for reason in page.skipped:
            logger.warning("Mosio's history for link %s held %s.", link.pk, reason)
        for sms in page.inbound:
            if _undated_seen(link, sms):
                report.duplicates += 1
                continue
            _, created = inbound_receive(link=link, sms=sms, via=Reply.Via.POLL)
            if created:
                report.replies += 1
            else:
                report.duplicates += 1
        for ids, status in page.receipts:
            for provider_id in ids:
                moved = receipt_apply(
                    link=link, provider_message_id=provider_id, provider_status=status
                )
                if moved:
                    report.receipts += 1
                    break
        advanced = page.newest is not None and page.newest > since
        if advanced:
            since = page.newest
        if page.count < HISTORY_LIMIT or not advanced:
            break
    link.poll_cursor = since
    link.polled_at = now
    link.poll_failures = 0
    link.poll_error = ""
    link.poll_next_at = now + timedelta(seconds=settings.MOSIO_POLL_SECONDS)
    link.save(
        update_fields=["poll_cursor", "polled_at", "poll_failures", "poll_error", "poll_next_at"]
    )


def _undated_seen(link: ProviderLink, sms) -> bool:
    """An item with neither an id nor a date (M9 says both come) has no time bucket of its own:
    it is the same reply as an earlier poll's with that number and exactly that text."""
    if sms.provider_message_id or sms.received_at:
        return False
    number = normalise_number(sms.from_number)
    fingerprint = crypto.fingerprint(number, purpose="phone") if number else ""
    return Reply.objects.filter(
        provider_link=link, via=Reply.Via.POLL, phone_fingerprint=fingerprint, body=sms.body
    ).exists()


def _failed(link_id: int, *, report: PollReport, retry_after, now: datetime) -> None:
    link = ProviderLink.objects.filter(pk=link_id).first()
    if link is None:
        return
    delay = _backoff(link, retry_after)
    ProviderLink.objects.filter(pk=link_id).update(
        poll_failures=link.poll_failures + 1,
        poll_error=report.error[:300],
        poll_next_at=now + delay,
    )
    logger.warning(
        "Polling Mosio failed (link %s, %s in a row); next try in %s s: %s",
        link_id,
        link.poll_failures + 1,
        int(delay.total_seconds()),
        report.error,
    )
