"""Test texts: "Send a test to my phone", and the code that verifies that phone.

A test goes to the editor's own verified number, never to a participant: the text is rendered as
the preview shows it (piped for a chosen record; survey links are the sample link, so nobody
answers a survey in a participant's name). It is a Message row like any other (kind "test",
`to_user` set, no participant), written before the provider call with its attempt, and counted
against the quota; the log marks it as a test. It is sent at once, from the request, outside the
sender's queue and pacing: one text pressed by hand (see docs/sending.md, "Test texts").
Nothing a test meets (a refusal, a receipt) touches a participant.
"""

import datetime
import secrets
import uuid

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from billing.services import quota_release, quota_reserve, quota_units_for
from messaging import piping, segments
from messaging.gateways import GatewayError, Reason, delivers_to_simulator, get_gateway
from messaging.models import Attempt, Message, StaffPhone
from messaging.services.provider_links import provider_link_pause
from messaging.services.record import record_successes, status_callback_url
from messaging.services.rules import SAMPLE_LINK
from messaging.signals import audit
from projects import crypto
from projects.access import EDITOR, project_role_require
from projects.models import Participant, Project, ProviderLink
from projects.selectors import project_field_mapping, project_provider_link

Status = Message.Status
TEST = "test"
CODE_VALID_FOR = datetime.timedelta(minutes=15)
CODE_RESEND_AFTER = datetime.timedelta(minutes=1)
CODE_MAX_TRIES = 5
CODE_TEXT = "Your StudyText code is {code}. It expires in 15 minutes."
MASKED_CODE = CODE_TEXT.format(code="••••••")
NO_PHONE = (
    "Add your own mobile number and confirm it with the code we text you, then send the test: "
    "a test goes only to a number you have confirmed."
)


def verified_phone(*, user) -> StaffPhone | None:
    return StaffPhone.objects.filter(user=user, verified_at__isnull=False).first()


def _code_fingerprint(user, code: str) -> str:
    return crypto.fingerprint(f"{user.pk}:{code}", purpose="staff-phone-code")


def _link_ready(project: Project) -> ProviderLink:
    if project.status != Project.Status.ACTIVE:
        raise ValidationError(
            f"The project is {project.get_status_display().lower()}: no texts go out, tests "
            "included."
        )
    link = project_provider_link(project=project)
    if link is None:
        raise ValidationError("Link the project's SMS provider before sending a test.")
    if link.is_paused:
        raise ValidationError(
            "Sending is paused for this project's SMS provider. Resume it on the SMS provider "
            "page first."
        )
    return link


@sensitive_variables("phone", "body")
def _send(
    *,
    project: Project,
    actor,
    phone: str,
    body: str,
    kept: str,
    note: str,
    action: str,
    kind: str = TEST,
    rule=None,
) -> Message:
    """One text to a staff member's phone: checked, counted, written with its attempt, sent,
    recorded. `kept` is the text the log keeps (a code is masked there). ValidationError, with
    the reason, when it cannot go or the provider refused it."""
    link = _link_ready(project)
    count = segments.count(body)
    units = quota_units_for(messages=1, segments=count.segments)
    now = timezone.now()
    with transaction.atomic():
        if not quota_reserve(project=project, units=units):
            raise ValidationError(
                "The account's quota for this month is used up, and a "
                + ("test" if kind == TEST else "text to a staff phone")
                + " counts against it too. Ask for credit packs on the account's usage page."
            )
        message = Message.objects.create(
            project=project,
            to_user=actor,
            rule=rule,
            kind=kind,
            occurrence=note[:64],
            dedup_key=f"test:{uuid.uuid4()}",
            status=Status.SENDING,
            due_at=now,
            not_before=now,
            body=kept,
            segments=count.segments,
            encoding=count.encoding,
            units=units,
            reserved_at=now,
            provider=link.provider,
            created_by=actor if kind == TEST else None,
        )
        # Written with the row: the sweep never puts a test back in the queue.
        Attempt.objects.create(message=message, started_at=now)
        audit.send(
            sender=Message,
            actor=actor if kind == TEST else None,
            action=action,
            obj=message,
            message=f"{note} to the phone ending in {phone[-4:]}.",
        )
    try:
        result = get_gateway(link).send(
            to=phone, body=body, status_callback=status_callback_url(link)
        )
    except GatewayError as exc:
        _record_refusal(message, exc, link)
        raise ValidationError(f"The provider did not take the test: {exc.message}") from exc
    record_successes([(message, result)])
    message.refresh_from_db()
    return message


def staff_text_send(*, project: Project, user, phone: str, body: str, rule) -> Message:
    """An alert to the study team, texted to a member's own verified phone: sent at once like a
    test (written first, with its attempt), and counted against the quota like any text."""
    return _send(
        project=project,
        actor=user,
        phone=phone,
        body=body,
        kept=body,
        note=f"Team alert “{rule.name}”"[:64],
        action="message.team_alert_texted",
        kind="team_alert",
        rule=rule,
    )


def _record_refusal(message: Message, exc: GatewayError, link: ProviderLink) -> None:
    """A test is never retried: failed (its quota given back), or unconfirmed when the provider
    may have taken it (then the sweep asks the provider, as for any text)."""
    now = timezone.now()
    ambiguous = exc.reason == Reason.AMBIGUOUS
    code = str(exc.code or exc.status_code or "")[:32]
    with transaction.atomic():
        moved = Message.objects.filter(pk=message.pk, status=Status.SENDING).update(
            status=Status.UNKNOWN if ambiguous else Status.FAILED,
            units=message.units if ambiguous else 0,
            attempts=1,
            error=exc.message,
            error_code=code,
            updated_at=now,
        )
        Attempt.objects.filter(message=message, outcome=Attempt.Outcome.STARTED).update(
            outcome=Attempt.Outcome.AMBIGUOUS if ambiguous else Attempt.Outcome.FAILED,
            finished_at=now,
            error=exc.message[:1000],
            error_code=code,
        )
        if moved and not ambiguous:
            quota_release(
                project=message.project, units=message.units, reserved_at=message.reserved_at
            )
        if exc.reason == Reason.BAD_CREDENTIALS:
            provider_link_pause(
                link=link,
                reason=f"{link.get_provider_display()} refused the credentials: {exc.message}",
            )


def test_text_send(
    *, project: Project, actor, body: str, participant: Participant | None = None
) -> Message:
    """Send the text, as the preview renders it for `participant` (or with field names), to the
    editor's own verified phone."""
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="send test texts")
    staff_phone = verified_phone(user=actor)
    if staff_phone is None:
        raise ValidationError(NO_PHONE)
    mapping = project_field_mapping(project=project)
    body = body.strip()
    if not body:
        raise ValidationError("Write the text first; the test sends it as the preview shows it.")
    unknown = piping.unknown_tokens(body, mapping)
    if unknown:
        raise ValidationError(
            "Unknown piping: " + ", ".join(f"[{t}]" for t in unknown) + ". Fix it first."
        )
    if participant is not None and participant.project_id != project.pk:
        raise ValidationError("Choose a record of this project.")
    values = (
        piping.participant_values(participant, mapping)
        if participant
        else {t: f"[{t}]" for t in piping.allowed_tokens(mapping)}
    )
    text = piping.render(
        body,
        piping.PipingContext(values=values, survey_link=SAMPLE_LINK, survey_queue_link=SAMPLE_LINK),
    )
    if len(text) > piping.MAX_BODY_CHARS:
        raise ValidationError(
            f"After piping the text has {len(text):,} characters; carriers refuse texts over "
            f"{piping.MAX_BODY_CHARS:,}. Shorten it."
        )
    record = f"record {participant.record_id}" if participant else "field names"
    return _send(
        project=project,
        actor=actor,
        phone=staff_phone.phone,
        body=text,
        kept=text,
        note=f"Test text (piped for {record})",
        action="message.test_sent",
    )


@sensitive_variables("raw", "phone", "code")
def staff_phone_start(*, project: Project, actor, raw: str) -> StaffPhone:
    """Keep the editor's number (not verified yet) and text it a code through this project's
    provider (counted, and in the log as a test)."""
    project_role_require(user=actor, project=project, min_role=EDITOR, doing="send test texts")
    try:
        number = phonenumbers.parse(raw, "US")
        valid = phonenumbers.is_valid_number(number)
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise ValidationError(
            {
                "phone": "That is not a mobile number we can text. Type it with its area code, "
                "such as (615) 555-0101, or with + and the country code."
            }
        )
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        what = {
            phonenumbers.PhoneNumberType.FIXED_LINE: "a landline",
            phonenumbers.PhoneNumberType.TOLL_FREE: "a toll-free number",
            phonenumbers.PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
            phonenumbers.PhoneNumberType.SHARED_COST: "a shared-cost number",
            phonenumbers.PhoneNumberType.PAGER: "a pager",
        }.get(kind, "not a mobile number")
        raise ValidationError(
            {
                "phone": f"That number is {what}, which cannot receive texts. Give your own "
                "mobile number."
                if what != "not a mobile number"
                else "That is not a mobile number: give your own mobile number."
            }
        )
    phone = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    current = StaffPhone.objects.filter(user=actor).first()
    now = timezone.now()
    if (
        current
        and current.code_sent_at
        and now - current.code_sent_at < CODE_RESEND_AFTER
        and current.phone == phone
    ):
        raise ValidationError(
            {
                "phone": "A code was texted to this number less than a minute ago. Wait for it, "
                "or try again in a minute."
            }
        )
    code = f"{secrets.randbelow(10**6):06d}"
    body = CODE_TEXT.format(code=code)
    # Texted first: a refusal leaves the phone as it was (the failed text stays in the log).
    _send(
        project=project,
        actor=actor,
        phone=phone,
        body=body,
        # The log keeps it masked, except where the phone is the portal's own simulator.
        kept=body if delivers_to_simulator(_link_ready(project)) else MASKED_CODE,
        note="Phone verification code",
        action="staff_phone.code_sent",
    )
    staff_phone, _ = StaffPhone.objects.update_or_create(
        user=actor,
        defaults={
            "phone_encrypted": crypto.encrypt(phone),
            "phone_last4": phone[-4:],
            "verified_at": None,
            "code_fingerprint": _code_fingerprint(actor, code),
            "code_sent_at": now,
            "code_attempts": 0,
        },
    )
    return staff_phone


def staff_phone_verify(*, actor, code: str) -> StaffPhone:
    """Confirm the number with the code it received."""
    with transaction.atomic():
        staff_phone = StaffPhone.objects.select_for_update(no_key=True).filter(user=actor).first()
        if staff_phone is None or not staff_phone.code_fingerprint:
            raise ValidationError({"code": "Ask for a code first: type your number above."})
        if timezone.now() - staff_phone.code_sent_at > CODE_VALID_FOR:
            raise ValidationError({"code": "This code has expired. Ask for a new one."})
        if staff_phone.code_attempts >= CODE_MAX_TRIES:
            raise ValidationError({"code": "Too many wrong codes. Ask for a new one."})
        right = _code_fingerprint(actor, code.strip()) == staff_phone.code_fingerprint
        if right:
            staff_phone.verified_at = timezone.now()
            staff_phone.code_fingerprint = ""
            staff_phone.code_attempts = 0
            staff_phone.save()
            audit.send(
                sender=StaffPhone,
                actor=actor,
                action="staff_phone.verified",
                obj=staff_phone,
                message=f"Own phone ending in {staff_phone.phone_last4} confirmed for test texts.",
            )
        else:  # counted, and kept: the refusal below must not roll it back
            staff_phone.code_attempts += 1
            StaffPhone.objects.filter(pk=staff_phone.pk).update(
                code_attempts=staff_phone.code_attempts
            )
    if not right:
        left = CODE_MAX_TRIES - staff_phone.code_attempts
        tries = "1 try" if left == 1 else f"{left} tries"
        raise ValidationError({"code": f"That is not the code we texted. {tries} left."})
    return staff_phone


def staff_phone_remove(*, actor) -> None:
    with transaction.atomic():
        removed, _ = StaffPhone.objects.filter(user=actor).delete()
        if removed:
            audit.send(
                sender=StaffPhone,
                actor=actor,
                action="staff_phone.removed",
                obj=actor,
                message="Own phone for test texts removed.",
            )
