"""What the messaging pages share: who may edit, the sending hours in words, set-up steps."""

import datetime

from django.urls import reverse
from django.utils.dateformat import time_format

from billing.access import account_role
from messaging.models import WEEKDAY_NAMES
from projects.access import role_at_least
from projects.models import Membership
from projects.selectors import project_setup_state


def can_edit(role) -> bool:
    return role_at_least(role, Membership.Role.EDITOR)


def sending_hours(project) -> str:
    """The project's sending window in words: "between 9:00 a.m. and 8:00 p.m., Mon–Fri"."""
    start, end = project.send_window_start, project.send_window_end
    if start <= datetime.time(0, 0) and end >= datetime.time(23, 59):
        hours = "at any hour"
    else:
        hours = f"between {time_format(start, 'g:i a')} and {time_format(end, 'g:i a')}"
    days = sorted(set(project.send_days or []))
    if len(days) == 7:
        return f"{hours}, every day"
    if days == [0, 1, 2, 3, 4]:
        return f"{hours}, Monday to Friday"
    return f"{hours}, on " + ", ".join(WEEKDAY_NAMES[d] for d in days if 0 <= d < 7)


def sees_account(user, project) -> bool:
    """Whether the billing account's page would open for this user (a project member need not
    be on the account: a link would be a 404)."""
    return account_role(user=user, account=project.account) is not None


def missing_setup_steps(project) -> list[tuple[str, str]]:
    """Set-up steps still to do before anything can be sent, with where to do them."""
    setup = project_setup_state(project=project)
    steps = [
        ("redcap", "link REDCap", reverse("project-redcap", args=[project.pk])),
        ("provider", "link the SMS provider", reverse("project-provider", args=[project.pk])),
        ("mapping", "map the fields", reverse("project-fields", args=[project.pk])),
        ("synced", "sync the participants", reverse("project-participants", args=[project.pk])),
    ]
    return [(label, url) for key, label, url in steps if not setup[key]]
