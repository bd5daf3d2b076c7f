"""The sandbox demo that `make run` seeds: who can sign in, and a working project to look at.

It goes through the same services a person would use, so the demo has its audit trail too. The
demo project is approved, linked to the REDCap sandbox and to the sandbox phone simulator, its
fields are mapped, and its first participant sync is queued. Seeding again changes nothing: each
step is skipped once done (and a researcher's own changes to the demo are kept).
"""

from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from billing.models import Plan
from messaging.services.provider_links import provider_link_save
from portal.models import User
from portal.services import onboarding
from portal.services.accounts import user_set_server_admin
from projects.models import (
    Project,
    RedcapInstance,
    SyncRun,
)
from projects.sandbox import services as sandbox
from projects.selectors import project_field_mapping, project_provider_link, project_redcap_link
from projects.services import mapping, sync

ADMIN_EMAIL = "admin@studytext.test"
RESEARCHER_EMAIL = "researcher@studytext.test"
SANDBOX_INSTANCE = "REDCap sandbox (simulated)"
DEMO_PID = 101
DEMO_SEND_RATE = Decimal("5")  # the simulator has no carrier limit; 5/s keeps the demo lively
# The sandbox project's contact form (projects/sandbox/data.py).
DEMO_MAPPING = {
    "phone_field": "phone",
    "consent_field": "sms_consent",
    "consent_value": "1",
    "time_zone_field": "tz",
    "first_name_field": "first_name",
    "optout_field": "optout",
    "withdrawn_logic": "[withdrawn] = '1'",
    "date_fields": ["enrollment_date"],
    "phone_region": "US",
    "time_zone": "America/New_York",
}


def _user(email: str, name: str, password: str) -> User:
    user, _ = User.objects.get_or_create(email=email, defaults={"full_name": name})
    user.email_verified = True
    user.is_active = True
    user.set_password(password)
    user.save()
    return user


def seed(*, password: str) -> list[str]:
    admin = _user(ADMIN_EMAIL, "Alex Admin", password)
    if not admin.is_server_admin:
        user_set_server_admin(user=admin, actor=None, grant=True)
    researcher = _user(RESEARCHER_EMAIL, "Riley Researcher", password)
    two_factor_line = demo_admin_two_factor(admin)

    instance, _ = RedcapInstance.objects.update_or_create(
        name=SANDBOX_INSTANCE,
        defaults={"api_url": f"{settings.SITE_URL}/sandbox/redcap/api/", "is_active": True},
    )
    project = Project.objects.filter(redcap_instance=instance, redcap_project_id=DEMO_PID).first()
    if project is None:
        request = onboarding.onboarding_request_create(
            requester=researcher,
            submit=True,
            data={
                "redcap_instance": instance,
                "redcap_project_id": DEMO_PID,
                "project_title": "Demo: Healthy Habits Study",
                "pi_name": "Dr. Pat Investigator",
                "pi_email": "pi@studytext.test",
                "irb_protocol": "IRB-2026-0042",
                "irb_status": "approved",
                "summary": "Adults in a 12-week healthy-habits program get weekly survey "
                "invitations and reminders by text.",
                "expected_participants": 25,
                "expected_messages_per_month": 200,
                "message_kinds": ["invitation", "reminder"],
                "new_account_name": "Demo Lab",
                "new_account_plan": Plan.objects.get(name="Basic"),
                "new_account_time_zone": "America/New_York",
                "attest_no_phi": True,
                "attest_consent": True,
            },
        )
        project = onboarding.onboarding_request_approve(
            onboarding_request=request, actor=admin, note="Demo project, approved at set-up."
        )
    connected = connect_demo_project(project=project, owner=researcher)
    return [
        f"Server administrator: {ADMIN_EMAIL}",
        f"Researcher:           {RESEARCHER_EMAIL}",
        f"Password (both):      {password}",
        f"Admin's second step:  {two_factor_line}",
        f"Demo project:         {project.title} (REDCap sandbox PID {DEMO_PID})",
        f"                      {connected}",
    ]


def connect_demo_project(*, project: Project, owner: User) -> str:
    """Link the demo project to the sandbox REDCap and phone simulator, map its fields, and
    queue its first sync. Returns one line saying what state it is in.

    No web server runs during `seed_demo`, so nothing here calls the sandbox over HTTP: the
    REDCap link and the data dictionary are read from the sandbox's data in this process
    (sandbox.redcap_link_set_sandbox), and the first sync is handed to django-q2's scheduler,
    which starts it about half a minute after `make run` starts the task cluster, when the web
    server is up. That sync is the live check of the link.
    """
    if not settings.SANDBOX_ENABLED:
        return "Not linked: SANDBOX_ENABLED is off, so there is no sandbox to link it to."
    if project_redcap_link(project=project) is None:
        sandbox.redcap_link_set_sandbox(project=project, actor=owner)
    if project_provider_link(project=project) is None:
        provider_link_save(
            project=project,
            provider="sandbox",
            config={},
            rate_per_second=DEMO_SEND_RATE,
            actor=owner,
        )
    if project_field_mapping(project=project) is None:
        mapping.field_mapping_save(
            project=project,
            actor=owner,
            data=dict(DEMO_MAPPING),
            dictionary=sandbox.dictionary_from_sandbox(project=project),
            ask_redcap_about_logic=False,
        )
    if not SyncRun.objects.filter(project=project).exists():
        # No actor: nobody pressed "Sync now"; the page says it is a scheduled sync.
        sync.sync_run_start(project=project, not_before=timezone.now())
        return (
            "Linked to the REDCap sandbox and the phone simulator; the first participant sync "
            "runs about 30 seconds after the task cluster starts."
        )
    return "Linked to the REDCap sandbox and the phone simulator."


def demo_admin_two_factor(admin: User) -> str:
    """Administrators sign in with a second factor, the demo's too: give it an authenticator
    (once) whose codes `manage.py demo_totp` prints, so the demo needs no phone."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if not TOTPDevice.objects.filter(user=admin, confirmed=True).exists():
        TOTPDevice.objects.create(user=admin, name="Demo authenticator", confirmed=True)
    return ".venv/bin/python manage.py demo_totp  (prints the current 6-digit code)"


def demo_totp_code(email: str = ADMIN_EMAIL) -> str:
    """The current code of the demo authenticator (development only; see demo_totp)."""
    import time

    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(
        user__email=email, confirmed=True, name="Demo authenticator"
    ).first()
    if device is None:
        raise LookupError(f"{email} has no demo authenticator; run `manage.py seed_demo`.")
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    return f"{totp.token():0{device.digits}d}"
