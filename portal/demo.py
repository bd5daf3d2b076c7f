"""The sandbox demo that `make run` seeds: who can sign in, and a project to look at.

It goes through the same services a person would use, so the demo has its audit trail too.
"""

from django.conf import settings

from billing.models import Plan
from portal.models import User
from portal.services import onboarding
from portal.services.accounts import user_set_server_admin
from projects.models import Project, RedcapInstance

ADMIN_EMAIL = "admin@studytext.test"
RESEARCHER_EMAIL = "researcher@studytext.test"
SANDBOX_INSTANCE = "REDCap sandbox (simulated)"
DEMO_PID = 101


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
    return [
        f"Server administrator: {ADMIN_EMAIL}",
        f"Researcher:           {RESEARCHER_EMAIL}",
        f"Password (both):      {password}",
        f"Demo project:         {project.title} (REDCap sandbox PID {DEMO_PID})",
    ]
