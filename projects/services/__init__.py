import datetime
from functools import partial

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from billing.models import Account, AccountMembership
from billing.services import account_assert_project_slot
from projects import emails
from projects.access import EDITOR, OWNER, project_role, project_role_require
from projects.models import Membership, Project, RedcapInstance
from projects.signals import audit, project_status_changed, sending_hours_changed


def project_create(
    *,
    account: Account,
    redcap_instance: RedcapInstance,
    redcap_project_id: int,
    title: str,
    pi_name: str,
    pi_email: str,
    irb_protocol: str,
    owner,
    actor,
) -> Project:
    """Create a project under `account` with `owner` as its owner.

    Refused (ValidationError) when the account's plan has no project slot left.
    """
    with transaction.atomic():
        account_assert_project_slot(account=account)
        project = Project.objects.create(
            account=account,
            redcap_instance=redcap_instance,
            redcap_project_id=redcap_project_id,
            title=title,
            pi_name=pi_name,
            pi_email=pi_email,
            irb_protocol=irb_protocol,
            time_zone=account.time_zone,
        )
        Membership.objects.create(project=project, user=owner, role=Membership.Role.OWNER)
        audit.send(
            sender=Project,
            actor=actor,
            action="project.created",
            obj=project,
            message=f"Project created under account “{account.name}” with {owner} as owner.",
        )
    return project


# The federal calling-hours rule (47 CFR 64.1200(c)(1)): 8 a.m. to 9 p.m. in the recipient's
# local time. Hours outside it are allowed only with an explicit confirmation (docs/compliance.md).
CALLING_HOURS_START = datetime.time(8, 0)
CALLING_HOURS_END = datetime.time(21, 0)
CALLING_HOURS_RULE = "47 CFR 64.1200(c)(1)"
CALLING_HOURS_CONFIRM = (
    "These hours let texts go out before 8 a.m. or after 9 p.m. participant time, outside the "
    f"federal calling-hours rule ({CALLING_HOURS_RULE}). Tick the confirmation to keep them."
)
WEEKDAY_WORDS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _hours_words(start, end, days) -> str:
    def clock(t):
        return f"{t.hour % 12 or 12}:{t:%M} {'a.m.' if t.hour < 12 else 'p.m.'}"

    return f"{clock(start)} to {clock(end)} on {', '.join(WEEKDAY_WORDS[d] for d in sorted(days))}"


def _check_hours(start, end, days) -> list[int]:
    """Validate a sending window before anything is written; returns the days, sorted."""
    if start is None or end is None:
        raise ValidationError("Give both the earliest and the latest time.")
    if start >= end:
        raise ValidationError(
            "The latest time must be after the earliest time (sending hours cannot run past "
            "midnight)."
        )
    days = sorted(set(days or []))
    if not days or any(d not in range(7) for d in days):
        raise ValidationError("Choose at least one day of the week.")
    return days


def _check_calling_hours(start, end, *, confirmed: bool) -> None:
    if (start < CALLING_HOURS_START or end > CALLING_HOURS_END) and not confirmed:
        raise ValidationError(CALLING_HOURS_CONFIRM, code="calling_hours")


def project_update_sending_hours(
    *, project: Project, actor, start, end, days: list[int], confirmed: bool = False
) -> Project:
    """Set the project's sending hours: when texts may go out, in each participant's local time.

    Owners narrow them inside the bounds the server administrators set; administrators may set
    any hours inside their bounds too (they widen the bounds first). Hours before 8 a.m. or after
    9 p.m. need `confirmed` (the federal calling-hours rule). Every text waiting for the hours
    gets its new release time at once (the sending_hours_changed signal)."""
    # Server administrators act as owners (projects.access.project_role).
    project_role_require(user=actor, project=project, min_role=OWNER, doing="set its sending hours")
    days = _check_hours(start, end, days)
    bounds = (project.send_bounds_start, project.send_bounds_end, project.send_bounds_days)
    if start < bounds[0] or end > bounds[1] or not set(days) <= set(bounds[2]):
        raise ValidationError(
            f"The server administrators allow texts from {_hours_words(*bounds)}. Choose "
            "sending hours inside those, or ask them to widen the bounds."
        )
    _check_calling_hours(start, end, confirmed=confirmed)
    with transaction.atomic():
        project.send_window_start, project.send_window_end, project.send_days = start, end, days
        project.save(update_fields=["send_window_start", "send_window_end", "send_days"])
        audit.send(
            sender=Project,
            actor=actor,
            action="project.sending_hours_changed",
            obj=project,
            message=f"Sending hours: {_hours_words(start, end, days)}, participant time"
            + (f" (confirmed outside {CALLING_HOURS_RULE})." if confirmed else "."),
        )
        sending_hours_changed.send(sender=Project, project=project)
    return project


def project_update_sending_bounds(
    *, project: Project, actor, start, end, days: list[int], confirmed: bool = False
) -> Project:
    """Server administrators: the bounds inside which the owners set the sending hours. The
    hours are narrowed to fit new, narrower bounds (and the waiting texts' release times
    recomputed)."""
    if not actor.is_server_admin:
        raise PermissionDenied("The bounds of the sending hours are set by the administrators.")
    days = _check_hours(start, end, days)
    _check_calling_hours(start, end, confirmed=confirmed)
    hours_start = max(project.send_window_start, start)
    hours_end = min(project.send_window_end, end)
    hours_days = sorted(set(project.send_days) & set(days))
    if hours_start >= hours_end or not hours_days:
        hours_start, hours_end, hours_days = start, end, days  # no overlap: the bounds themselves
    with transaction.atomic():
        project.send_bounds_start, project.send_bounds_end, project.send_bounds_days = (
            start,
            end,
            days,
        )
        project.send_window_start, project.send_window_end = hours_start, hours_end
        project.send_days = hours_days
        project.save(
            update_fields=[
                "send_bounds_start",
                "send_bounds_end",
                "send_bounds_days",
                "send_window_start",
                "send_window_end",
                "send_days",
            ]
        )
        audit.send(
            sender=Project,
            actor=actor,
            action="project.sending_bounds_changed",
            obj=project,
            message=f"Sending-hours bounds: {_hours_words(start, end, days)}; sending hours "
            f"{_hours_words(hours_start, hours_end, hours_days)}, participant time"
            + (f" (confirmed outside {CALLING_HOURS_RULE})." if confirmed else "."),
        )
        sending_hours_changed.send(sender=Project, project=project)
    return project


def project_update_help_reply(*, project: Project, actor, help_reply: str) -> Project:
    project_role_require(
        user=actor, project=project, min_role=EDITOR, doing="change the HELP reply"
    )
    with transaction.atomic():
        project.help_reply = help_reply.strip()
        project.save(update_fields=["help_reply"])
        audit.send(
            sender=Project,
            actor=actor,
            action="project.help_reply_changed",
            obj=project,
            message="HELP reply changed.",
        )
    return project


def retention_bounds() -> tuple[int, int, int]:
    """(default, least, most) days a project keeps message and reply texts: the
    administrators' settings (MESSAGE_RETENTION_DAYS, _MIN_DAYS, _MAX_DAYS)."""
    from django.conf import settings

    least, most = settings.MESSAGE_RETENTION_MIN_DAYS, settings.MESSAGE_RETENTION_MAX_DAYS
    return min(max(settings.MESSAGE_RETENTION_DAYS, least), most), least, most


def project_retention_days(project: Project) -> int:
    """How long this project keeps texts: the owner's choice, held within today's bounds."""
    default, least, most = retention_bounds()
    if project.retention_days is None:
        return default
    return min(max(project.retention_days, least), most)


def project_update_retention(*, project: Project, actor, days: int | None) -> Project:
    """Owners choose how long message and reply texts are kept, within the administrators'
    bounds; None goes back to the site's default."""
    project_role_require(
        user=actor, project=project, min_role=OWNER, doing="change how long texts are kept"
    )
    default, least, most = retention_bounds()
    if days is not None and not least <= days <= most:
        raise ValidationError(
            {"days": f"Choose between {least:,} and {most:,} days (the site's bounds)."}
        )
    with transaction.atomic():
        project.retention_days = days
        project.save(update_fields=["retention_days"])
        audit.send(
            sender=Project,
            actor=actor,
            action="project.retention_changed",
            obj=project,
            message=f"Message and reply texts are kept for {days or default:,} days"
            + (" (the site's default)." if days is None else "."),
        )
    return project


def project_move_account(*, project: Project, account: Account, actor) -> Project:
    """Bill `project` to another account from now on (usage already counted stays where it was).

    Server administrators, or someone who owns the project and the target account, may move it.
    Refused (ValidationError) when the target's plan has no project slot left; the target
    account's row is locked while counting, so two moves cannot both take its last slot.
    Archived projects do not take a slot.
    """
    is_admin = getattr(actor, "is_server_admin", False)
    if not is_admin:
        owns_project = Membership.objects.filter(
            project=project, user=actor, role=Membership.Role.OWNER
        ).exists()
        owns_account = account.memberships.filter(
            user=actor, role=AccountMembership.Role.OWNER
        ).exists()
        if not (owns_project and owns_account):
            raise PermissionDenied(
                "Only a server administrator, or an owner of both the project and the billing "
                "account, can move a project to that account."
            )
    with transaction.atomic():
        project = (
            Project.objects.select_for_update(no_key=True)
            .select_related("account")
            .get(pk=project.pk)
        )
        if project.account_id == account.pk:
            raise ValidationError(f"“{project.title}” is already billed to “{account.name}”.")
        if project.status != Project.Status.ARCHIVED:
            account_assert_project_slot(account=account)
        old_account = project.account
        project.account = account
        project.save(update_fields=["account"])
        audit.send(
            sender=Project,
            actor=actor,
            action="project.account_moved",
            obj=project,
            message=f"Moved from account “{old_account.name}” to “{account.name}”.",
            data={"from_account": old_account.pk, "to_account": account.pk},
        )
    return project


Status = Project.Status
# (from, to) -> (audit verb, who may: "owner" or "admin"). Everything that leaves "archived" or
# "suspended" lands on "paused": texting resumes only when the team presses Resume.
STATUS_CHANGES = {
    (Status.ACTIVE, Status.PAUSED): ("paused", "owner"),
    (Status.PAUSED, Status.ACTIVE): ("resumed", "owner"),
    (Status.ACTIVE, Status.ARCHIVED): ("archived", "owner"),
    (Status.PAUSED, Status.ARCHIVED): ("archived", "owner"),
    (Status.ARCHIVED, Status.PAUSED): ("unarchived", "owner"),
    (Status.ACTIVE, Status.SUSPENDED): ("suspended", "admin"),
    (Status.PAUSED, Status.SUSPENDED): ("suspended", "admin"),
    (Status.SUSPENDED, Status.PAUSED): ("unsuspended", "admin"),
}


def project_status_changes_for(*, project: Project, user) -> list[str]:
    """The statuses `user` may move `project` to now (for the Settings page's buttons)."""
    role = project_role(user=user, project=project)
    is_admin = getattr(user, "is_server_admin", False)
    return [
        to
        for (frm, to), (_, who) in STATUS_CHANGES.items()
        if frm == project.status
        and (is_admin or (who == "owner" and role == Membership.Role.OWNER))
    ]


def project_set_status(*, project: Project, status: str, actor, reason: str = "") -> Project:
    """Pause, resume, archive, un-archive, suspend or unsuspend a project.

    Owners pause, resume, archive and un-archive; only server administrators suspend (with a
    reason the team sees) and unsuspend. An archived or suspended project comes back paused.
    Un-archiving takes a project slot again: refused, with the numbers, when the account's plan
    is full (the project's row and then the account's are locked, so two cannot take the last
    slot). No text goes out unless the project is active.
    """
    reason = reason.strip()
    is_admin = getattr(actor, "is_server_admin", False)
    project_role_require(
        user=actor, project=project, min_role=OWNER, doing="pause, resume or archive it"
    )
    try:
        wanted = Status(status)
    except ValueError:
        raise ValidationError(f"“{status}” is not a project status.") from None
    with transaction.atomic():
        project = (
            Project.objects.select_for_update(no_key=True)
            .select_related("account")
            .get(pk=project.pk)
        )
        current = project.status
        change = STATUS_CHANGES.get((current, wanted))
        if change is None:
            raise ValidationError(_status_refusal(project, wanted))
        verb, who = change
        if who == "admin" and not is_admin:
            raise PermissionDenied(
                "This project was suspended by the server administrators; only they can change "
                "its status."
                if current == Status.SUSPENDED
                else "Only the server administrators suspend projects."
            )
        if wanted == Status.SUSPENDED and not reason:
            raise ValidationError({"reason": "Say why, so the team knows what to fix."})
        if current == Status.ARCHIVED:
            account_assert_project_slot(account=project.account)
        project.status = wanted
        project.status_reason = "" if wanted == Status.ACTIVE else reason
        project.status_changed_at = timezone.now()
        project.status_changed_by = actor
        project.save(
            update_fields=["status", "status_reason", "status_changed_at", "status_changed_by"]
        )
        audit.send(
            sender=Project,
            actor=actor,
            action=f"project.{verb}",
            obj=project,
            message=f"Project {STATUS_WORDS[verb]}." + (f" Reason: {reason}" if reason else ""),
            data={"from": current, "to": wanted},
        )
        project_status_changed.send(sender=Project, project=project, old=current, new=wanted)
        if verb in ("suspended", "unsuspended"):
            transaction.on_commit(
                partial(emails.project_status_changed, project_id=project.pk), robust=True
            )
    return project


STATUS_WORDS = {
    "paused": "paused: no texts go out until it is resumed",
    "resumed": "resumed: texts go out again",
    "archived": "archived: no texts go out and it no longer takes a project slot",
    "unarchived": "un-archived; it is paused until the team resumes it",
    "suspended": "suspended by the server administrators",
    "unsuspended": "unsuspended; it is paused until the team resumes it",
}


def _status_refusal(project: Project, wanted: str) -> str:
    if project.status == wanted:
        return f"“{project.title}” is already {project.get_status_display().lower()}."
    if project.status == Status.ARCHIVED:
        return "An archived project is un-archived first; it comes back paused."
    if project.status == Status.SUSPENDED:
        return "A suspended project is unsuspended first; it comes back paused."
    if wanted == Status.ACTIVE:
        return "Only a paused project can be resumed."
    return (
        f"A project cannot go from {project.get_status_display().lower()} to "
        f"{Status(wanted).label.lower()}."
    )
