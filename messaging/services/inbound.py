"""Texts participants send us: store them, and honour STOP, START and HELP (docs/compliance.md).

One entry point, `inbound_receive`, for every way a reply arrives (Twilio's and Mosio's
webhooks, the sandbox phone simulator). Decisions, so a coordinator can predict them:

- Idempotent: a provider message id seen before through the same link (a retried webhook)
  stores nothing and does nothing again. Ids are scoped to the link, so another project's
  webhook cannot claim an id first and swallow this project's STOP. A reply without an id
  (Mosio's field name is unknown) cannot be deduplicated.
- The number is matched against the participants of THE LINK'S project only, by its keyed
  fingerprint; the clear number is never stored. A number that matches nobody is still stored
  (participant empty): only server administrators see it, in the Django admin. Its STOP still
  goes on the project's suppression list, so a later sync that brings the number in cannot
  text it.
- STOP (any wording `keywords.classify` recognises) opts the number out at once
  (`opt_out_record`: suppression list, queued and held texts cancelled, REDCap write-back,
  audited). StudyText never sends its own STOP confirmation: Twilio (long codes) and Mosio
  confirm STOP themselves, and a second text to a number that just opted out is refused with
  21610. The sandbox has no provider, so the phone simulator shows a system line in its place.
- START (or UNSTOP; YES while no text survey is open) lifts the number's opt-out only when it
  came from a reply keyword or from the provider's own unsubscribe (21610: the participant
  texted STOP to the provider). An opt-out set by study staff, or the REDCap opt-out field,
  is never lifted by a text. From a number that is not opted out, START is conversation.
- HELP queues one reply through the normal outbox (a Message of kind "help": the sender's
  usual checks, quota units and pace). Its text is the project's "Reply to HELP", or a standard
  one with the PI's name and e-mail and "Reply STOP to opt out". It is sent even outside the sending
  hours (the participant has just texted us; see `release.prepare`), but never to an
  opted-out, withdrawn or non-consented participant, nor to a number that matches nobody.
"""

from __future__ import annotations

import logging
import uuid

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.gateways import delivers_to_simulator, provider_label
from messaging.gateways.base import InboundSms
from messaging.keywords import Keyword, classify
from messaging.models import Message, OptOut, Reply
from messaging.services.conversations import conversation_take_reply
from messaging.services.optouts import opt_out_record
from messaging.services.outbox import kick_sender
from messaging.signals import audit
from projects import crypto
from projects.access import EDITOR, project_role_require
from projects.models import Participant, Project, ProviderLink
from projects.selectors import project_provider_link
from projects.services.participants import participant_optout_write_back_request

logger = logging.getLogger(__name__)

# Opt-outs a START from the same number may lift (never STAFF; REDCap's is a separate flag).
START_LIFTS = (OptOut.Source.KEYWORD, OptOut.Source.PROVIDER)


def help_text(project: Project) -> str:
    """What a HELP reply says: the project's own answer, or the standard one."""
    if project.help_reply.strip():
        return project.help_reply.strip()
    return (
        f"{project.title}: questions? Contact {project.pi_name} at {project.pi_email}. "
        "Msg&data rates may apply. Reply STOP to opt out."
    )


def _normalise(number: str) -> str:
    number = "".join(c for c in (number or "") if c.isdigit() or c == "+")
    if number and not number.startswith("+"):
        number = "+" + number
    return number


def inbound_receive(
    *, link: ProviderLink, sms: InboundSms, provider: str = ""
) -> tuple[Reply, bool]:
    """Store a reply that arrived through `link` and act on its keyword.

    `provider` names where it came from when that is not the link's provider (the simulator
    says "sandbox"). Returns (reply, created); created is False for a duplicate, which did
    nothing."""
    provider = provider or link.provider
    if sms.provider_message_id:
        seen = Reply.objects.filter(
            provider_link=link, provider=provider, provider_message_id=sms.provider_message_id
        ).first()
        if seen is not None:
            return seen, False
    number = _normalise(sms.from_number)
    fingerprint = crypto.fingerprint(number, purpose="phone") if number else ""
    participant = None
    if fingerprint:
        participant = (
            Participant.objects.filter(project_id=link.project_id, phone_fingerprint=fingerprint)
            .order_by("-in_redcap", "pk")
            .first()
        )
    keyword = classify(sms.body) or ""
    try:
        with transaction.atomic():
            reply = Reply.objects.create(
                project_id=link.project_id,
                provider_link=link,
                participant=participant,
                provider=provider,
                provider_message_id=sms.provider_message_id,
                phone_fingerprint=fingerprint,
                phone_last4=crypto.last4(number) if number else "",
                body=sms.body,
                keyword=keyword,
                received_at=sms.received_at or timezone.now(),
            )
            reply.handled = _act(reply, provider=provider, participant=participant)
            # An open text survey takes the reply as an answer (services/conversations.py).
            reply.handled = conversation_take_reply(reply=reply, handled=reply.handled)
            if reply.handled:
                reply.save(update_fields=["handled"])
    except IntegrityError:
        # The same webhook, delivered twice at once: the other request stored and handled it.
        return Reply.objects.get(
            provider_link=link, provider=provider, provider_message_id=sms.provider_message_id
        ), False
    if participant is None:
        logger.info(
            "A reply from a number that matches no participant (project %s).", link.project_id
        )
    return reply, True


def _act(reply: Reply, *, provider: str, participant: Participant | None) -> str:
    """Carry out the reply's keyword; returns the note shown next to it ("" for conversation)."""
    fingerprint = reply.phone_fingerprint
    if not fingerprint or not reply.keyword:
        return ""
    active = OptOut.objects.filter(
        project_id=reply.project_id, phone_fingerprint=fingerprint, revoked_at=None
    ).first()
    if reply.keyword == Keyword.STOP:
        if active is not None:
            return "Already opted out."
        detail = f"Replied “{reply.body.strip()[:60]}”."
        if participant is not None:
            opt_out_record(participant=participant, source=OptOut.Source.KEYWORD, detail=detail)
        else:
            OptOut.objects.create(
                project_id=reply.project_id,
                phone_fingerprint=fingerprint,
                source=OptOut.Source.KEYWORD,
                detail=detail,
            )
            audit.send(
                sender=OptOut,
                actor=None,
                action="participant.opted_out",
                obj=reply.project,
                message=f"A number ending {reply.phone_last4} that matches no participant "
                "texted STOP: it is on the suppression list.",
            )
        if provider == "sandbox":
            return "Opted out: nothing more is sent. (A real provider confirms STOP itself.)"
        name = provider_label(provider)
        return f"Opted out: nothing more is sent. {name} confirms STOP itself."
    if reply.keyword == Keyword.START:
        if active is None:
            return ""  # not opted out: START is conversation
        if active.source not in START_LIFTS:
            return f"Not opted back in: the opt-out was {active.get_source_display().lower()}."
        OptOut.objects.filter(pk=active.pk).update(revoked_at=timezone.now())
        if participant is not None:
            participant_optout_write_back_request(participant_id=participant.pk, opted_out=False)
        audit.send(
            sender=OptOut,
            actor=None,
            action="participant.opted_in",
            obj=participant or reply.project,
            message=(
                f"Record {participant.record_id}"
                if participant
                else f"A number ending {reply.phone_last4}"
            )
            + " texted START: texts may be sent again.",
        )
        return "Opted back in: texts may be sent again."
    if reply.keyword == Keyword.HELP:
        if participant is None:
            return "HELP from a number that matches no participant: not answered."
        if active is not None:
            return "HELP from an opted-out number: not answered."
        now = timezone.now()
        Message.objects.create(
            project_id=reply.project_id,
            participant=participant,
            kind="help",
            occurrence="help",
            dedup_key=f"help:{reply.pk}",
            adhoc_body=help_text(reply.project),
            due_at=now,
            not_before=now,
        )
        kick_sender()
        return "Answered with the HELP reply."
    return ""


def simulator_reply(*, participant: Participant, body: str, actor) -> Reply:
    """A coordinator texts from a sandbox phone: fed to inbound_receive as a webhook would be.

    Editors and owners only, and only for a project whose texts go to the phone simulator."""
    project = participant.project
    project_role_require(
        user=actor, project=project, min_role=EDITOR, doing="reply on the phone simulator"
    )
    link = project_provider_link(project=project)
    if not delivers_to_simulator(link):
        raise ValidationError("This project does not use the sandbox phone simulator.")
    body = body.strip()
    if not body:
        raise ValidationError({"body": "Write the reply."})
    if not participant.phone_encrypted:
        raise ValidationError("This participant has no phone number.")
    sms = InboundSms(
        provider_message_id=f"SIM{uuid.uuid4().hex}",
        from_number=crypto.decrypt(participant.phone_encrypted),
        body=body,
    )
    reply, _ = inbound_receive(link=link, sms=sms, provider="sandbox")
    return reply
