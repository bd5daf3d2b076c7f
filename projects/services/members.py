"""Project members: owners invite people by e-mail and change roles."""

from django.core.exceptions import ValidationError
from django.db import transaction

from projects import emails
from projects.access import OWNER, VIEWER, project_role_require
from projects.models import Membership, Project, ProjectInvitation
from projects.signals import audit

Role = Membership.Role


def _assert_owner(project: Project, actor) -> None:
    project_role_require(user=actor, project=project, min_role=OWNER, doing="manage its members")


def _owner_count_locked(project: Project) -> int:
    """Count the owners with the project row locked, so that two owners demoting or removing
    each other at the same moment cannot leave the project with none."""
    Project.objects.select_for_update(no_key=True).filter(pk=project.pk).first()
    return Membership.objects.filter(project=project, role=Role.OWNER).count()


def member_invite(*, project: Project, email: str, role: str, actor) -> ProjectInvitation:
    """Invite an address to the project. Whoever holds it joins when they next sign in (or
    confirm a new account) with it: the answer and the e-mail are the same whether or not the
    address has an account, so inviting never reveals who has one (docs/compliance.md)."""
    _assert_owner(project, actor)
    email = email.strip().lower()
    if role not in Role.values:
        raise ValidationError({"role": "Choose owner, editor or viewer."})
    with transaction.atomic():
        if project.memberships.filter(user__email__iexact=email).exists():
            raise ValidationError({"email": f"{email} is already a member of this project."})
        if project.invitations.filter(email=email).exists():
            raise ValidationError({"email": f"{email} has already been invited."})
        result = ProjectInvitation.objects.create(
            project=project, email=email, role=role, invited_by=actor
        )
        message = f"{email} invited as {Role(role).label.lower()}."
        audit.send(
            sender=Project, actor=actor, action="member.invited", obj=project, message=message
        )
        transaction.on_commit(
            lambda: emails.member_invited(project=project, email=email, role=role, actor=actor)
        )
    return result


def member_change_role(*, membership: Membership, role: str, actor) -> Membership:
    project = membership.project
    _assert_owner(project, actor)
    if role not in Role.values:
        raise ValidationError({"role": "Choose owner, editor or viewer."})
    with transaction.atomic():
        owners = _owner_count_locked(project)
        membership = Membership.objects.select_for_update(no_key=True).get(pk=membership.pk)
        if membership.role == Role.OWNER and role != Role.OWNER and owners == 1:
            raise ValidationError(
                "A project needs at least one owner. Make someone else an owner first."
            )
        old = membership.role
        if old == role:
            return membership
        membership.role = role
        membership.save(update_fields=["role"])
        audit.send(
            sender=Project,
            actor=actor,
            action="member.role_changed",
            obj=project,
            message=f"{membership.user.email}: {Role(old).label} → {Role(role).label}.",
        )
    return membership


def member_remove(*, membership: Membership, actor) -> None:
    project = membership.project
    if membership.user_id != actor.pk:
        _assert_owner(project, actor)
    with transaction.atomic():
        owners = _owner_count_locked(project)
        membership = Membership.objects.select_for_update(no_key=True).get(pk=membership.pk)
        if membership.role == Role.OWNER and owners == 1:
            raise ValidationError("A project needs at least one owner. Add another owner first.")
        email = membership.user.email
        membership.delete()
        audit.send(
            sender=Project,
            actor=actor,
            action="member.removed",
            obj=project,
            message=f"{email} removed from the project.",
        )


def invitation_cancel(*, invitation: ProjectInvitation, actor) -> None:
    _assert_owner(invitation.project, actor)
    with transaction.atomic():
        invitation.delete()
        audit.send(
            sender=Project,
            actor=actor,
            action="member.invitation_cancelled",
            obj=invitation.project,
            message=f"Invitation of {invitation.email} cancelled.",
        )


def invitations_accept(*, user) -> list[Membership]:
    """Turn pending invitations for the user's (verified) e-mail into memberships. Called when
    an address is confirmed and at each sign-in."""
    memberships = []
    if not user.email_verified:
        return memberships
    with transaction.atomic():
        for invitation in ProjectInvitation.objects.filter(email__iexact=user.email).select_related(
            "project"
        ):
            membership, _ = Membership.objects.get_or_create(
                project=invitation.project, user=user, defaults={"role": invitation.role}
            )
            memberships.append(membership)
            audit.send(
                sender=Project,
                actor=user,
                action="member.joined",
                obj=invitation.project,
                message=f"{user.email} accepted the invitation.",
            )
            invitation.delete()
    return memberships


def member_notices_set(*, membership: Membership, flags: bool, digest: bool, actor) -> Membership:
    """A member chooses their own e-mail notices about replies (the Members page): flagged
    texts at once, a daily digest of unread replies. Only for oneself."""
    project_role_require(
        user=actor, project=membership.project, min_role=VIEWER, doing="choose e-mail notices"
    )
    if membership.user_id != actor.pk:
        raise ValidationError("Each member chooses their own e-mail notices.")
    Membership.objects.filter(pk=membership.pk).update(
        notify_flags=bool(flags), notify_digest=bool(digest)
    )
    membership.refresh_from_db()
    return membership
