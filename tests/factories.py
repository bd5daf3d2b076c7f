import datetime
import secrets

import factory
from django.contrib.auth.models import Group
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from billing.models import Account, AccountMembership, Plan
from messaging.models import MessageRule
from portal.models import SERVER_ADMIN_GROUP, OnboardingRequest, User
from projects import crypto
from projects.models import (
    FieldMapping,
    Membership,
    Participant,
    Project,
    ProviderLink,
    RedcapInstance,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@uni.test")
    full_name = factory.Faker("name")
    email_verified = True
    password = factory.django.Password("a-good-long-password")


class ServerAdminFactory(UserFactory):
    """A server administrator with an authenticator app (administrators must have one);
    `totp_code(user)` gives its current code, `verified_login(client, user)` a full session."""

    is_staff = True

    @factory.post_generation
    def admin_group(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(Group.objects.get_or_create(name=SERVER_ADMIN_GROUP)[0])

    @factory.post_generation
    def authenticator(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            TOTPDevice.objects.get_or_create(
                user=obj, confirmed=True, defaults={"name": "Authenticator app"}
            )


def totp_code(user, *, offset: int = 0) -> str:
    """The code `user`'s authenticator shows now (offset: that many 30-second steps later)."""
    import time

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset * device.step
    return f"{totp.token():06d}"


def next_totp_code(user) -> str:
    """A code the server will accept now, even if a 30-second step ends before it checks it.

    The server accepts the counters current-1 .. current+1 (drift included) that are above the
    last one used. Taking `current` (never `current-1`, which a step that ends in between would
    refuse) or, after a sign-in this step, `current+1`; otherwise wait for the next step."""
    import time

    device = TOTPDevice.objects.get(user=user, confirmed=True)
    while True:
        now = time.time()
        current = int((now - device.t0) // device.step) + device.drift
        wanted = max(current, device.last_t + 1)
        if wanted <= current + 1:
            totp = TOTP(device.bin_key, device.step, device.t0, device.digits, drift=0)
            totp.time = device.t0 + wanted * device.step
            return f"{totp.token():06d}"
        time.sleep(max(0.1, (current - device.drift + 1) * device.step + device.t0 - now))


def dispatcher_scheduled(*, next_run) -> None:
    """The dispatcher's django-q2 schedule (every minute), next due at `next_run`."""
    from django_q.models import Schedule

    Schedule.objects.update_or_create(
        name="messaging-dispatch",
        defaults={
            "func": "messaging.tasks.dispatch",
            "schedule_type": "I",
            "minutes": 1,
            "repeats": -1,
            "next_run": next_run,
        },
    )


def dispatcher_ran(when) -> None:
    """A finished, successful run of the dispatcher task at `when` (django-q2's result row)."""
    import uuid

    from django_q.models import Task

    Task.objects.create(
        id=uuid.uuid4().hex,
        name="messaging-dispatch",
        func="messaging.tasks.dispatch",
        started=when,
        stopped=when,
        success=True,
    )


def dispatcher_working(now) -> None:
    """A dispatcher that works: it ran 30 s before `now` and is due again 30 s after."""
    half_minute = datetime.timedelta(seconds=30)
    dispatcher_scheduled(next_run=now + half_minute)
    dispatcher_ran(now - half_minute)


def text_waiting(project, participant, *, since, key: str = "adhoc:waiting"):
    """A text to `participant`, due at `since` and still queued (for the health checks)."""
    from messaging.models import Message

    return Message.objects.create(
        project=project,
        participant=participant,
        occurrence="adhoc",
        dedup_key=key,
        adhoc_body="Hi",
        due_at=since,
        not_before=since,
    )


def verified_login(client, user) -> None:
    """force_login plus a passed second factor, as after signing in with a code."""
    from django_otp import DEVICE_ID_SESSION_KEY

    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan
        django_get_or_create = ("name",)

    name = "Basic"
    project_limit = 4
    monthly_messages = 1000
    pack_size = 1000


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Lab account {n}")
    plan = factory.SubFactory(PlanFactory)
    time_zone = "America/New_York"

    @factory.post_generation
    def owners(obj, create, extracted, **kwargs):
        for user in extracted or []:
            AccountMembership.objects.create(
                account=obj, user=user, role=AccountMembership.Role.OWNER
            )


class RedcapInstanceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RedcapInstance
        django_get_or_create = ("name",)

    name = "University REDCap"
    api_url = "https://redcap.uni.test/api/"


# Sending hours open at every hour of every day, for tests that send whenever the suite runs
# (the default 9 a.m.-8 p.m., Monday to Friday, would hold texts queued at night). As a trait:
# ProjectFactory(always_open=True); on an existing project: .update(**ALWAYS_OPEN).
ALWAYS_OPEN = {
    "send_window_start": datetime.time(0, 0),
    "send_window_end": datetime.time(23, 59, 59, 999999),
    "send_days": [0, 1, 2, 3, 4, 5, 6],
}


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project
        skip_postgeneration_save = True

    class Params:
        always_open = factory.Trait(
            send_window_start=ALWAYS_OPEN["send_window_start"],
            send_window_end=ALWAYS_OPEN["send_window_end"],
            send_days=factory.LazyFunction(lambda: list(ALWAYS_OPEN["send_days"])),
        )

    account = factory.SubFactory(AccountFactory)
    redcap_instance = factory.SubFactory(RedcapInstanceFactory)
    redcap_project_id = factory.Sequence(lambda n: 1000 + n)
    title = factory.Faker("catch_phrase")
    pi_name = factory.Faker("name")
    pi_email = factory.Faker("email")
    irb_protocol = factory.Sequence(lambda n: f"IRB-2026-{n:04d}")

    @factory.post_generation
    def owner(obj, create, extracted, **kwargs):
        if extracted:
            Membership.objects.create(project=obj, user=extracted, role=Membership.Role.OWNER)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.VIEWER


class OnboardingRequestFactory(factory.django.DjangoModelFactory):
    """A complete request, submitted, asking for a new Basic account."""

    class Meta:
        model = OnboardingRequest

    requester = factory.SubFactory(UserFactory)
    status = OnboardingRequest.Status.SUBMITTED
    redcap_instance = factory.SubFactory(RedcapInstanceFactory)
    redcap_project_id = factory.Sequence(lambda n: 5000 + n)
    project_title = factory.Faker("catch_phrase")
    pi_name = factory.Faker("name")
    pi_email = factory.Faker("email")
    irb_protocol = factory.Sequence(lambda n: f"IRB-2026-{n:04d}")
    irb_status = OnboardingRequest.IrbStatus.APPROVED
    summary = "Adults with type 2 diabetes get weekly survey invitations."
    expected_participants = 120
    expected_messages_per_month = 500
    message_kinds = factory.LazyFunction(lambda: ["invitation", "reminder"])
    new_account_name = factory.Sequence(lambda n: f"New lab {n}")
    new_account_plan = factory.SubFactory(PlanFactory)
    new_account_time_zone = "America/Chicago"
    attest_no_phi = True
    attest_consent = True
    submitted_at = factory.Faker("date_time_this_month", tzinfo=datetime.UTC)


class ParticipantFactory(factory.django.DjangoModelFactory):
    """A textable participant (consented, valid phone)."""

    class Meta:
        model = Participant

    project = factory.SubFactory(ProjectFactory)
    record_id = factory.Sequence(lambda n: str(n + 1))
    consented = True
    first_name = factory.Faker("first_name")

    @factory.lazy_attribute_sequence
    def phone_encrypted(self, n):
        return crypto.encrypt(f"+1202555{n % 10000:04d}")

    @factory.lazy_attribute_sequence
    def phone_fingerprint(self, n):
        return crypto.fingerprint(f"+1202555{n % 10000:04d}", purpose="phone")

    @factory.lazy_attribute_sequence
    def phone_last4(self, n):
        return f"{n % 10000:04d}"


# --- Billing (usage periods, credit packs, plan changes) ------------------------------------


class AccountMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountMembership

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(UserFactory)
    role = AccountMembership.Role.MEMBER


class UsagePeriodFactory(factory.django.DjangoModelFactory):
    """This month's period (in the account's time zone) unless start/end are given."""

    class Meta:
        model = "billing.UsagePeriod"

    account = factory.SubFactory(AccountFactory)
    start = factory.LazyAttribute(lambda o: _month_of(o.account)[0])
    end = factory.LazyAttribute(lambda o: _month_of(o.account)[1])
    included = factory.LazyAttribute(lambda o: o.account.plan.monthly_messages)
    credits = 0
    used = 0


def _month_of(account):
    from billing.services.quota import account_local_date, month_bounds

    return month_bounds(account_local_date(account=account))


class CreditPackRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.CreditPackRequest"

    account = factory.SubFactory(AccountFactory)
    packs = 1
    pack_size = factory.LazyAttribute(lambda o: o.account.plan.pack_size)
    units = factory.LazyAttribute(lambda o: o.packs * o.pack_size)
    requested_by = factory.SubFactory(UserFactory)


class PlanChangeRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.PlanChangeRequest"

    account = factory.SubFactory(AccountFactory)
    from_plan = factory.LazyAttribute(lambda o: o.account.plan)
    to_plan = factory.SubFactory(PlanFactory, name="Plus", project_limit=10, monthly_messages=3000)
    requested_by = factory.SubFactory(UserFactory)


class FieldMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FieldMapping

    project = factory.SubFactory(ProjectFactory)
    phone_field = "phone"
    consent_field = "sms_consent"
    consent_value = "1"
    time_zone_field = "tz"
    first_name_field = "first_name"
    date_fields = factory.LazyFunction(lambda: ["enrollment_date"])


class ProviderLinkFactory(factory.django.DjangoModelFactory):
    """A provider link; `provider="sandbox"` by default (tests force locmem via the override).

    `twilio=True`: a Twilio link with credentials of its own and the sender `sender_number`
    (fingerprinted as linking one stores it), for tests that talk to the loopback fake provider
    (settings.TWILIO_API_BASE)."""

    class Meta:
        model = ProviderLink

    class Params:
        sender_number = factory.Sequence(lambda n: f"+1415555{n % 10000:04d}")
        twilio = factory.Trait(
            provider="twilio",
            config_encrypted=factory.LazyAttribute(
                lambda o: crypto.encrypt_json(
                    {
                        "account_sid": "AC" + secrets.token_hex(16),
                        "auth_token": secrets.token_hex(16),
                        "sender": o.sender_number,
                    }
                )
            ),
            fingerprint=factory.LazyAttribute(
                lambda o: crypto.fingerprint(o.sender_number, purpose="provider:twilio")
            ),
            webhook_secret=factory.LazyFunction(lambda: secrets.token_urlsafe(32)),
        )

    project = factory.SubFactory(ProjectFactory)
    provider = "sandbox"
    config_encrypted = factory.LazyFunction(lambda: crypto.encrypt_json({}))
    fingerprint = factory.Sequence(lambda n: f"fp{n:062d}")
    webhook_secret = factory.Sequence(lambda n: f"hook-{n}-secret")
    rate_per_second = 100
    linked_by = factory.SubFactory(UserFactory)


class MessageRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageRule

    project = factory.SubFactory(ProjectFactory)
    kind = MessageRule.Kind.REMINDER
    name = factory.Sequence(lambda n: f"Reminder {n}")
    body = "Hi [first_name], a reminder from the study."
    schedule = MessageRule.Schedule.MANUAL
    status = MessageRule.Status.ACTIVE
    created_by = factory.SubFactory(UserFactory)
