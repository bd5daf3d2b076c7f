from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from projects import det_views, selectors
from projects.access import project_get_for_user
from projects.forms import (
    WEEKDAYS,
    FieldMappingForm,
    InviteForm,
    MoveAccountForm,
    ProjectSettingsForm,
    RedcapLinkForm,
    RoleForm,
    SendingHoursForm,
    error_text,
    form_apply_errors,
)
from projects.models import (
    Membership,
    Project,
    ProjectInvitation,
    SyncRun,
)
from projects.sandbox import services as sandbox
from projects.selectors import project_field_mapping, project_provider_link, project_redcap_link
from projects.services import (
    links,
    mapping,
    members,
    project_move_account,
    project_retention_days,
    project_set_status,
    project_status_changes_for,
    project_update_help_reply,
    project_update_retention,
    project_update_sending_bounds,
    project_update_sending_hours,
    retention_bounds,
    sync,
)

Role = Membership.Role


@login_required
def project_list(request):
    page = Paginator(selectors.projects_for_user(user=request.user), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "projects/list.html", {"page": page})


@login_required
def project_detail(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    return render(
        request,
        "projects/detail.html",
        {
            "project": project,
            "role": role,
            "setup": selectors.project_setup_state(project=project),
            "counts": selectors.participant_counts(project=project),
            "last_sync": selectors.sync_run_latest(project=project),
            "tab": "overview",
        },
    )


# --- Members ------------------------------------------------------------------------------
@login_required
def member_list(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    form = InviteForm(request.POST or None)
    if request.method == "POST":
        project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
        if form.is_valid():
            try:
                result = members.member_invite(
                    project=project, actor=request.user, **form.cleaned_data
                )
            except ValidationError as exc:
                form_apply_errors(form, exc)
            else:
                messages.success(
                    request,
                    f"{result.email} was invited as {Role(result.role).label.lower()}. They join "
                    "when they sign in with that address (or create an account with it).",
                )
                return redirect("project-members", pk=project.pk)
    memberships = list(project.memberships.select_related("user").order_by("user__email"))
    return render(
        request,
        "projects/members.html",
        {
            "project": project,
            "role": role,
            "form": form,
            "memberships": memberships,
            "owner_count": sum(1 for m in memberships if m.role == Role.OWNER),
            "invitations": project.invitations.order_by("email"),
            "role_choices": Role.choices,
            "mine": next((m for m in memberships if m.user_id == request.user.pk), None),
            "tab": "members",
        },
    )


@login_required
@require_POST
def member_notices(request, pk: int):
    """The signed-in member's own e-mail notices about replies."""
    project, _ = project_get_for_user(user=request.user, pk=pk)
    membership = Membership.objects.filter(project=project, user=request.user).first()
    if membership is None:  # a server administrator who is not a member
        messages.error(request, "Only the project's members get its e-mail notices.")
        return redirect("project-members", pk=project.pk)
    members.member_notices_set(
        membership=membership,
        flags=request.POST.get("notify_flags") == "on",
        digest=request.POST.get("notify_digest") == "on",
        actor=request.user,
    )
    messages.success(request, "Your e-mail notices are saved.")
    return redirect("project-members", pk=project.pk)


@login_required
@require_POST
def member_change_role(request, pk: int, membership_id: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    membership = get_object_or_404(Membership, pk=membership_id, project=project)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose owner, editor or viewer.")
    else:
        try:
            membership = members.member_change_role(
                membership=membership, role=form.cleaned_data["role"], actor=request.user
            )
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(
                request,
                f"{membership.user.email} is now {membership.get_role_display().lower()}.",
            )
    return redirect("project-members", pk=project.pk)


@login_required
@require_POST
def member_remove(request, pk: int, membership_id: int):
    project, _ = project_get_for_user(user=request.user, pk=pk)
    membership = get_object_or_404(Membership, pk=membership_id, project=project)
    try:
        members.member_remove(membership=membership, actor=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
        return redirect("project-members", pk=project.pk)
    if membership.user_id == request.user.pk and not request.user.is_server_admin:
        messages.success(request, f"You left {project.title}.")
        return redirect("project-list")
    messages.success(request, f"{membership.user.email} was removed.")
    return redirect("project-members", pk=project.pk)


@login_required
@require_POST
def invitation_cancel(request, pk: int, invitation_id: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    invitation = get_object_or_404(ProjectInvitation, pk=invitation_id, project=project)
    members.invitation_cancel(invitation=invitation, actor=request.user)
    messages.success(request, f"The invitation of {invitation.email} was cancelled.")
    return redirect("project-members", pk=project.pk)


# --- REDCap link ----------------------------------------------------------------------------
@sensitive_post_parameters("token")
@login_required
def redcap_link(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    form = RedcapLinkForm(request.POST or None, project=project)
    if request.method == "POST":
        project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
        if form.is_valid():
            try:
                link = links.redcap_link_set(
                    project=project, token=form.cleaned_data["token"], actor=request.user
                )
            except ValidationError as exc:
                form_apply_errors(form, exc)
            else:
                next_step = (
                    ""
                    if project_provider_link(project=project) is not None
                    else " Next, link the SMS provider."
                )
                messages.success(
                    request,
                    f"REDCap linked: “{link.redcap_project_title}” "
                    f"(REDCap {link.redcap_version}).{next_step}",
                )
                return redirect("project-redcap", pk=project.pk)
    return render(
        request,
        "projects/redcap_link.html",
        {
            "project": project,
            "role": role,
            "form": form,
            "link": project_redcap_link(project=project),
            "sandbox": sandbox.sandbox_offer(project=project) if role == Role.OWNER else None,
            "det": det_views.det_card(project=project, role=role),
            "tab": "setup",
        },
    )


@login_required
@require_POST
def redcap_sandbox_create(request, pk: int):
    """The REDCap sandbox creates the project's REDCap project; the REDCap page shows its token."""
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    try:
        sandbox.sandbox_project_create(project=project, actor=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(
            request,
            f"The REDCap sandbox now has project {project.redcap_project_id}. Copy its token "
            "below into the form and link it.",
        )
    return redirect("project-redcap", pk=project.pk)


@login_required
@require_POST
def redcap_link_test(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    try:
        result = links.redcap_link_test(project=project, actor=request.user)
    except ValidationError as exc:
        messages.error(request, "REDCap connection failed: " + error_text(exc))
    else:
        messages.success(
            request,
            f"Connected to REDCap {result['version']}: project {result['project_id']}, "
            f"“{result['project_title']}”.",
        )
    return redirect("project-redcap", pk=project.pk)


@login_required
@require_POST
def redcap_link_remove(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    links.redcap_link_remove(project=project, actor=request.user)
    messages.success(
        request, "The REDCap token was removed. Sends and syncs stop until a new one is linked."
    )
    return redirect("project-redcap", pk=project.pk)


# --- Field mapping --------------------------------------------------------------------------
@login_required
def field_mapping(request, pk: int):
    min_role = Role.EDITOR if request.method == "POST" else Role.VIEWER
    project, role = project_get_for_user(user=request.user, pk=pk, min_role=min_role)
    current = project_field_mapping(project=project)
    if project_redcap_link(project=project) is None:
        messages.info(
            request, "Link the project's REDCap API token first; the fields come from REDCap."
        )
        return redirect("project-redcap", pk=project.pk)
    try:
        dictionary = mapping.dictionary_load(project=project)
    except ValidationError as exc:
        return render(
            request,
            "projects/field_mapping.html",
            {"project": project, "role": role, "redcap_error": error_text(exc), "tab": "setup"},
        )
    initial = {"time_zone": project.time_zone, "phone_region": "US"}
    if current:
        initial.update({f: getattr(current, f) for f in mapping.MAPPING_FIELDS})
    form = FieldMappingForm(request.POST or None, initial=initial, dictionary=dictionary)
    if request.method == "POST" and form.is_valid():
        try:
            mapping.field_mapping_save(
                project=project,
                actor=request.user,
                data=form.cleaned_data,
                dictionary=dictionary,
            )
        except ValidationError as exc:
            form_apply_errors(form, exc)
        else:
            messages.success(request, "Fields mapped. Next, sync the participants.")
            return redirect("project-participants", pk=project.pk)
    consent_codes = {
        name: dictionary.coded_values(name)
        for name, _ in form.fields["consent_field"].choices
        if name
    }
    return render(
        request,
        "projects/field_mapping.html",
        {
            "project": project,
            "role": role,
            "form": form,
            "mapping": current,
            "consent_codes": consent_codes,
            "is_longitudinal": dictionary.is_longitudinal,
            "tab": "setup",
        },
    )


# --- Participants and sync ------------------------------------------------------------------
@login_required
def participant_list(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    show = request.GET.get("show", "ready")
    if show not in selectors.PARTICIPANT_FILTERS:
        show = "ready"
    search = request.GET.get("q", "")
    page = Paginator(
        selectors.participants_for_project(project=project, show=show, search=search), 100
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "projects/participants.html",
        {
            "project": project,
            "role": role,
            "page": page,
            "show": show,
            "search": search,
            "counts": selectors.participant_counts(project=project),
            "last_sync": selectors.sync_run_latest(project=project),
            "setup": selectors.project_setup_state(project=project),
            "tab": "participants",
        },
    )


@login_required
@require_POST
def sync_start(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
    try:
        run = sync.sync_run_start(project=project, actor=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
        return redirect("project-participants", pk=project.pk)
    return redirect("project-sync", pk=project.pk, run_id=run.pk)


@login_required
def sync_detail(request, pk: int, run_id: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    run = get_object_or_404(SyncRun, pk=run_id, project=project)
    if request.headers.get("Accept") == "application/json" or request.GET.get("format") == "json":
        return JsonResponse(
            {
                "status": run.status,
                "status_display": run.get_status_display(),
                "total": run.total,
                "processed": run.processed,
                "percent": run.percent,
                "created": run.created_count,
                "updated": run.updated_count,
                "skipped": run.skipped_count,
                "gone": run.gone_count,
                "error": run.error,
                "done": not run.is_active,
            }
        )
    return render(
        request,
        "projects/sync.html",
        {"project": project, "role": role, "run": run, "tab": "participants"},
    )


# --- Settings -------------------------------------------------------------------------------
@login_required
def project_settings(request, pk: int):
    project, role = project_get_for_user(user=request.user, pk=pk)
    if request.method == "POST":
        if "bounds" in request.POST and not request.user.is_server_admin:
            raise PermissionDenied("The bounds of the sending hours are set by the administrators.")
        if "hours" in request.POST:
            project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
        if "help" in request.POST:
            project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.EDITOR)
        if "retention" in request.POST:
            project, role = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
            raw = request.POST.get("retention-days", "").strip()
            try:
                days = int(raw) if raw else None
            except ValueError:
                messages.error(request, "Give the number of days as a whole number.")
            else:
                try:
                    project_update_retention(project=project, actor=request.user, days=days)
                except ValidationError as exc:
                    messages.error(request, error_text(exc))
                else:
                    messages.success(request, "Retention saved.")
            return redirect(f"{reverse('project-settings', args=[pk])}#retention")
    help_form = ProjectSettingsForm(
        request.POST if "help" in request.POST else None, instance=project, prefix="help"
    )
    hours_form = SendingHoursForm(
        request.POST if "hours" in request.POST else None,
        prefix="hours",
        initial={
            "start": project.send_window_start,
            "end": project.send_window_end,
            "days": project.send_days,
        },
    )
    bounds_form = SendingHoursForm(
        request.POST if "bounds" in request.POST else None,
        prefix="bounds",
        initial={
            "start": project.send_bounds_start,
            "end": project.send_bounds_end,
            "days": project.send_bounds_days,
        },
    )
    if request.method == "POST":
        try:
            if "help" in request.POST and help_form.is_valid():
                project_update_help_reply(
                    project=project,
                    actor=request.user,
                    help_reply=help_form.cleaned_data["help_reply"],
                )
                messages.success(request, "HELP reply saved.")
                return redirect("project-settings", pk=pk)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        for key, form, update, saved in (
            ("hours", hours_form, project_update_sending_hours, "Sending hours saved."),
            ("bounds", bounds_form, project_update_sending_bounds, "Bounds saved."),
        ):
            if key in request.POST and form.is_valid():
                data = form.cleaned_data
                try:
                    update(
                        project=project,
                        actor=request.user,
                        start=data["start"],
                        end=data["end"],
                        days=data["days"],
                        confirmed=data["confirm_calling_hours"],
                    )
                except ValidationError as exc:
                    form.apply_refusal(exc)
                else:
                    messages.success(
                        request, f"{saved} Texts waiting for the hours now go out at the new times."
                    )
                    return redirect(f"{reverse('project-settings', args=[pk])}#sending-hours")
        project.refresh_from_db()  # an invalid form must not show its values as saved
    return render(
        request,
        "projects/settings.html",
        {
            "project": project,
            "role": role,
            "help_form": help_form,
            "retention": dict(
                zip(("default", "least", "most"), retention_bounds(), strict=True),
                days=project_retention_days(project),
            ),
            "hours_form": hours_form,
            "bounds_form": bounds_form,
            "send_days": [label for day, label in WEEKDAYS if day in project.send_days],
            "bounds_days": [label for day, label in WEEKDAYS if day in project.send_bounds_days],
            "status_changes": project_status_changes_for(project=project, user=request.user),
            "slots": selectors.account_project_slots(project=project)
            if project.status == Project.Status.ARCHIVED
            else None,
            "move_form": MoveAccountForm(
                accounts=selectors.accounts_to_move_to(project=project, user=request.user)
            ),
            "tab": "settings",
        },
    )


STATUS_DONE = {
    Project.Status.PAUSED: "“{title}” is paused: no texts go out until it is resumed.",
    Project.Status.ACTIVE: "“{title}” is active: texts go out again.",
    Project.Status.ARCHIVED: "“{title}” is archived: no texts go out and it takes no project slot.",
    Project.Status.SUSPENDED: "“{title}” is suspended; its owners were told why by e-mail.",
}


@login_required
@require_POST
def project_status(request, pk: int):
    """Pause, resume, archive, un-archive (owners), suspend and unsuspend (administrators)."""
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    before = project.status
    try:
        project = project_set_status(
            project=project,
            status=request.POST.get("status", ""),
            actor=request.user,
            reason=request.POST.get("reason", "")[:500],
        )
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        done = STATUS_DONE[project.status]
        if before in (Project.Status.ARCHIVED, Project.Status.SUSPENDED):
            done = "“{title}” is back, and paused: resume it when texts may go out again."
        messages.success(request, done.format(title=project.title))
    return redirect("project-settings", pk=project.pk)


@login_required
@require_POST
def project_account(request, pk: int):
    """Bill the project to another account from now on (its owners who own that account too,
    or a server administrator); refused with the numbers when that account's plan is full."""
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Role.OWNER)
    form = MoveAccountForm(
        request.POST, accounts=selectors.accounts_to_move_to(project=project, user=request.user)
    )
    if not form.is_valid():
        messages.error(request, "Nothing changed: " + " ".join(form.errors["account"]))
        return redirect("project-settings", pk=project.pk)
    old_account = project.account
    try:
        project = project_move_account(
            project=project, account=form.cleaned_data["account"], actor=request.user
        )
    except ValidationError as exc:
        messages.error(request, "Nothing changed: " + error_text(exc))
    else:
        messages.success(
            request,
            f"“{project.title}” is now billed to “{project.account.name}”. Texts sent from now "
            f"on count against its quota; what was already sent stays with “{old_account.name}”.",
        )
    return redirect("project-settings", pk=project.pk)
