"""Texts participants send us: store them, and honour STOP, START and HELP (docs/compliance.md).

One entry point, `inbound_receive`, for every way a reply arrives (Twilio's and Mosio's
webhooks, the sandbox phone simulator). Decisions, so a coordinator can predict them:

- Idempotent: a provider message id seen before through the same link (a retried webhook)
  stores nothing and does nothing again. Ids are scoped to the link, so another project's
  webhook cannot claim an id first and swallow this project's STOP. A reply without an id
  (Mosio's field name is unknown) is deduplicated by its content key (below).
- The number is matched against the participants of THE LINK'S project only, by its keyed
  fingerprint; the clear number is never stored. A number that matches nobody is still stored
  (participant empty): the project's owners see it in the inbox by its last 4 digits, and
  server administrators in the Django admin. Its STOP still
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
- Mosio replies may arrive twice, by webhook and by the poll, with no id the two share: a Mosio
  reply (and any reply without an id) is also deduplicated by its content key (`content_key`:
  link, phone fingerprint, body hash, 5-minute time bucket, the neighbouring buckets checked
  too, and the text the reply answers; docs/mosio.md M26). Two identical texts from one number
  within minutes answering the same text are one reply; a provider id is trusted (two texts
  with different ids are two replies).
- The team's inbox: every reply arrives unread; a sentence that reads like a wish to stop but
  is no keyword (`keywords.sounds_like_stop`) is flagged "possible opt-out, please review", and
  a text from a number that matches no participant is flagged for the owners.
- HELP is answered by StudyText only when the provider does not answer it itself
  (`provider_answers_keywords`: the link's setting, or the provider's default).
- HELP queues one reply through the normal outbox (a Message of kind "help": the sender's
  usual checks, quota units and pace). Its text is the project's "Reply to HELP", or a standard
  one with the PI's name and e-mail and "Reply STOP to opt out". It is sent even outside the sending
  hours (the participant has just texted us; see `release.prepare`), but never to an
  opted-out, withdrawn or non-consented participant, nor to a number that matches nobody.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.gateways import GATEWAYS, delivers_to_simulator, gateway_class, provider_label
from messaging.gateways.base import InboundSms
from messaging.keywords import Keyword, classify, sounds_like_stop
from messaging.models import Message, OptOut, Reply
from messaging.services import notices
from messaging.services.conversations import conversation_take_reply
from messaging.services.optouts import opt_out_record
from messaging.services.outbox import kick_sender
from messaging.signals import audit
from projects import crypto
from projects.access import EDITOR, project_role_require
from projects.models import ConsentEvent, Participant, Project, ProviderLink
from projects.selectors import project_provider_link
from projects.services.consent import consent_event_record
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


# docs/mosio.md M26: the time bucket of the content key.
CONTENT_BUCKET = timedelta(minutes=5)
LONG_BODY = 1600  # docs/mosio.md M20: longer replies are stored whole, and logged (no text)


def provider_answers_keywords(link: ProviderLink | None, provider: str) -> bool:
    """Whether the provider answers STOP/HELP itself, so StudyText sends no HELP text: the
    link's own setting, else the provider's default (Mosio and Twilio yes, the sandbox no)."""
    explicit = getattr(link, "provider_answers_keywords", None)
    if explicit is not None:
        return explicit
    return provider in GATEWAYS and gateway_class(provider).answers_keywords


def content_keys(
    *, link: ProviderLink, fingerprint: str, body: str, when: datetime, answers: int | None = None
) -> tuple[str, list[str]]:
    """The reply's content key and the keys of the neighbouring time buckets (docs/mosio.md
    M26): the webhook's time is ours, the poll's is Mosio's, and they may straddle a bucket.
    `answers` is the id of the text the reply answers, so the same answer to the next question
    (a text survey's "3", then "3") is a new reply, never a duplicate."""
    digest = hashlib.sha256((body or "").strip().encode()).hexdigest()
    bucket = int(when.timestamp() // CONTENT_BUCKET.total_seconds())
    anchor = "" if answers is None else f"|m{answers}"

    def key(b: int) -> str:
        return crypto.fingerprint(f"{link.pk}|{fingerprint}|{digest}|{b}{anchor}", purpose="reply")

    return key(bucket), [key(bucket - 1), key(bucket), key(bucket + 1)]


def _uses_content_key(link: ProviderLink, sms: InboundSms, provider: str) -> bool:
    return (link.provider == "mosio" and provider == "mosio") or not sms.provider_message_id


def _answers(participant: Participant | None, when: datetime) -> Message | None:
    """The participant's last text sent before the reply: the message it answers."""
    if participant is None:
        return None
    return (
        Message.objects.filter(participant=participant, sent_at__lte=when)
        .order_by("-sent_at", "-pk")
        .only("pk")
        .first()
    )


def _key_anchor(participant: Participant | None, when: datetime) -> int | None:
    """The id of the last text to the participant before the reply that a reply can answer:
    StudyText's own HELP answer is not one (a replayed HELP stays one reply)."""
    if participant is None:
        return None
    return (
        Message.objects.filter(participant=participant, sent_at__lte=when)
        .exclude(kind="help")
        .order_by("-sent_at", "-pk")
        .values_list("pk", flat=True)
        .first()
    )


def normalise_number(number: str) -> str:
    """A number as E.164 digits with its "+" (what the fingerprint is taken of)."""
    number = "".join(c for c in (number or "") if c.isdigit() or c == "+")
    if number and not number.startswith("+"):
        number = "+" + number
    return number


def inbound_receive(
    *, link: ProviderLink, sms: InboundSms, provider: str = "", via: str = Reply.Via.WEBHOOK
) -> tuple[Reply, bool]:
    """Store a reply that arrived through `link` and act on its keyword.

    `provider` names where it came from when that is not the link's provider (the simulator
    says "sandbox"); `via` how it came (webhook, poll, simulator). Returns (reply, created);
    created is False for a duplicate, which did nothing."""
    provider = provider or link.provider
    if sms.provider_message_id:
        seen = Reply.objects.filter(
            provider_link=link, provider=provider, provider_message_id=sms.provider_message_id
        ).first()
        if seen is not None:
            return seen, False
    number = normalise_number(sms.from_number)
    fingerprint = crypto.fingerprint(number, purpose="phone") if number else ""
    received_at = sms.received_at or timezone.now()
    participant = None
    if fingerprint:
        participant = (
            Participant.objects.filter(project_id=link.project_id, phone_fingerprint=fingerprint)
            .order_by("-in_redcap", "pk")
            .first()
        )
    dedup_key = ""
    if _uses_content_key(link, sms, provider):
        dedup_key, near = content_keys(
            link=link,
            fingerprint=fingerprint,
            body=sms.body,
            when=received_at,
            answers=_key_anchor(participant, received_at),
        )
        same = Reply.objects.filter(provider_link=link, dedup_key__in=near)
        if sms.provider_message_id:
            # The provider's id is trusted: a text with its own id is the same text only as a
            # copy that came without one (the webhook), never as another text with an id.
            same = same.filter(provider_message_id="")
        seen = same.first()
        if seen is not None:
            logger.info("A reply seen before (link %s, by content): not stored again.", link.pk)
            return seen, False
        if (
            sms.provider_message_id
            and Reply.objects.filter(provider_link=link, dedup_key=dedup_key).exists()
        ):
            dedup_key = ""  # another text with its own id holds the key; the id dedupes this one
    _log_oddities(link, sms, number)
    keyword = classify(sms.body) or ""
    flag = ""
    if participant is None and fingerprint:
        flag = Reply.Flag.UNKNOWN_NUMBER
    elif not keyword and sounds_like_stop(sms.body):
        flag = Reply.Flag.POSSIBLE_OPT_OUT
    try:
        with transaction.atomic():
            reply = Reply.objects.create(
                project_id=link.project_id,
                provider_link=link,
                participant=participant,
                provider=provider,
                provider_message_id=sms.provider_message_id,
                dedup_key=dedup_key,
                via=via,
                phone_fingerprint=fingerprint,
                phone_last4=crypto.last4(number) if number else "",
                body=sms.body,
                keyword=keyword,
                flag=flag,
                answers=_answers(participant, received_at),
                received_at=received_at,
            )
            reply.handled = _act(reply, provider=provider, participant=participant)
            # An open text survey takes the reply as an answer (services/conversations.py).
            reply.handled = conversation_take_reply(reply=reply, handled=reply.handled)
            if reply.handled:
                reply.save(update_fields=["handled"])
    except IntegrityError:
        # The same text, delivered twice at once (a retried webhook, or the webhook and the
        # poll): the other request stored and handled it.
        same = Reply.objects.filter(provider_link=link)
        if sms.provider_message_id:
            seen = same.filter(
                provider=provider, provider_message_id=sms.provider_message_id
            ).first()
            if seen is not None:
                return seen, False
        return same.get(dedup_key=dedup_key), False
    if participant is None:
        logger.info(
            "A reply from a number that matches no participant (project %s).", link.project_id
        )
    if flag:
        # Members who asked are e-mailed at once (a link, never the text): messaging/services/
        # notices.py. Robust: an e-mail that fails is logged and skips no later callback (the
        # Mosio poll commits many replies at once; a survey's write-back may follow).
        transaction.on_commit(lambda: notices.flag_notice_send(reply_id=reply.pk), robust=True)
    return reply, True


def _log_oddities(link: ProviderLink, sms: InboundSms, number: str) -> None:
    """What is odd about a reply, logged with the link only (never the number or the text);
    the reply is stored all the same."""
    if not number:
        logger.warning("A reply without a phone number (link %s): stored, unmatched.", link.pk)
    if not (sms.body or "").strip():
        logger.warning("An empty reply (link %s): stored.", link.pk)
    elif len(sms.body) > LONG_BODY:
        logger.warning(
            "A reply of %s characters, over %s (link %s): stored whole.",
            len(sms.body),
            LONG_BODY,
            link.pk,
        )


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
            consent_event_record(
                project_id=reply.project_id,
                fingerprint=fingerprint,
                kind=ConsentEvent.Kind.OPTED_OUT,
                source=ConsentEvent.Source.KEYWORD,
                detail="Texted a stop word (from a number that matched no participant then).",
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
        consent_event_record(
            project_id=reply.project_id,
            participant=participant,
            fingerprint=fingerprint,
            kind=ConsentEvent.Kind.OPTED_IN,
            source=ConsentEvent.Source.KEYWORD,
            detail="Texted START.",
        )
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
        if provider_answers_keywords(reply.provider_link, provider):
            return f"HELP: {provider_label(provider)} answers it itself; StudyText sent nothing."
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
    reply, _ = inbound_receive(link=link, sms=sms, provider="sandbox", via=Reply.Via.SIMULATOR)
    return reply
