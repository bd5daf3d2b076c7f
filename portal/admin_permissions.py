"""What a server administrator may do in the Django admin site: an explicit allow-list.

Every model registered in the admin site has a row here; a model missing from it is closed to
the role (and a test fails until someone decides its row). Actions are Django's four: view,
add, change, delete. The reasoning, model by model, is in docs/compliance.md ("Administrators").

Never in this list, for anyone:
- add or change of django-q2's schedules, tasks and queue (they name a Python function that
  the workers run: code execution with the workers' secrets);
- editing `is_superuser`, `is_staff`, groups or permissions (the role is granted and revoked
  by the audited actions on the user list);
- delete of outbox messages, attempts, replies, participants, opt-outs or audit events (the
  no-duplicate guarantee and the audit trail depend on them).
"""

V, A, C, D = "view", "add", "change", "delete"

SERVER_ADMIN_PERMISSIONS: dict[str, frozenset[str]] = {
    # People and the role
    "portal.user": frozenset({V, A, C}),  # name, time zone, active; never the role fields
    "auth.group": frozenset({V}),
    "portal.apitoken": frozenset({V, D}),  # revoke a leaked token (audited)
    "otp_totp.totpdevice": frozenset({V, D}),  # reset a lost phone (audited); no secrets shown
    "otp_static.staticdevice": frozenset({V, D}),
    # Onboarding and the audit log: changed on their own pages, where each step is audited
    "portal.onboardingrequest": frozenset({V}),
    "portal.onboardingcomment": frozenset({V}),
    "portal.onboardingattachment": frozenset({V}),  # opened on the request's page, checked there
    "portal.auditevent": frozenset({V}),
    # Billing
    "billing.plan": frozenset({V, A, C}),
    "billing.account": frozenset({V, A, C}),
    "billing.accountmembership": frozenset({V, A, C, D}),
    "billing.usageperiod": frozenset({V}),
    "billing.creditpackrequest": frozenset({V}),
    "billing.planchangerequest": frozenset({V}),
    "billing.projectusage": frozenset({V}),
    "billing.dailyusage": frozenset({V}),
    # Projects
    "projects.redcapinstance": frozenset({V, A, C}),
    "projects.project": frozenset({V, C}),  # no add (approval creates), no delete (cascades)
    "projects.membership": frozenset({V, A, C, D}),
    "projects.projectinvitation": frozenset({V, D}),
    "projects.redcaplink": frozenset({V}),
    "projects.providerlink": frozenset({V}),
    "projects.fieldmapping": frozenset({V}),
    "projects.participant": frozenset({V}),
    "projects.syncrun": frozenset({V}),
    "projects.dataentrytrigger": frozenset({V}),  # the address's secret is never shown
    "projects.recordrefresh": frozenset({V}),
    "projects.consentevent": frozenset({V}),  # append-only: the consent timeline's lines
    # Messaging
    "messaging.messagerule": frozenset({V}),
    "messaging.send": frozenset({V}),
    "messaging.message": frozenset({V}),
    "messaging.attempt": frozenset({V}),
    "messaging.optout": frozenset({V}),
    "messaging.senderlease": frozenset({V}),
    "messaging.earlyreceipt": frozenset({V}),
    "messaging.reply": frozenset({V}),
    "messaging.staffphone": frozenset({V}),  # added and confirmed by its owner (a texted code)
    "messaging.textsurvey": frozenset({V}),  # edited on the rule's form, where it is checked
    "messaging.conversation": frozenset({V}),  # answers never listed
    "messaging.teamalert": frozenset({V}),  # written by a trigger, sent by its task
    "messaging.triggerstate": frozenset({V}),  # the edge of a "logic becomes true" trigger
    # The task queue
    "django_q.schedule": frozenset({V}),
    "django_q.success": frozenset({V}),
    "django_q.failure": frozenset({V}),
    "django_q.ormq": frozenset({V}),
}


def server_admin_may(app_label: str, codename: str) -> bool:
    """`codename` is Django's `<action>_<model>` (as in "django_q.add_schedule")."""
    action, _, model = codename.partition("_")
    return action in SERVER_ADMIN_PERMISSIONS.get(f"{app_label}.{model}", frozenset())
