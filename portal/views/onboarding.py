from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal import selectors
from portal.access import server_admin_required
from portal.forms import AttachmentForm, CommentForm, DecisionForm, OnboardingRequestForm
from portal.middleware import accepts_files
from portal.models import OnboardingAttachment, OnboardingRequest
from portal.services import attachments, onboarding
from projects.forms import error_text, form_apply_errors
from projects.selectors import redcap_instances_offered


@login_required
def request_list(request):
    requests = selectors.onboarding_requests_for_user(user=request.user)
    return render(request, "portal/onboarding/list.html", {"requests": requests})


@login_required
def request_create(request):
    submit = "submit" in request.POST
    form = OnboardingRequestForm(request.POST or None, user=request.user, submit=submit)
    if request.method == "POST" and form.is_valid():
        try:
            obj = onboarding.onboarding_request_create(
                requester=request.user, data=form.service_data(), submit=submit
            )
        except ValidationError as exc:
            form_apply_errors(form, exc)
        else:
            messages.success(
                request,
                "Request submitted. The administrators have been told and will review it."
                if submit
                else "Draft saved. Submit it when it is complete.",
            )
            return redirect("onboarding-detail", pk=obj.pk)
    return render(request, "portal/onboarding/form.html", {"form": form, "creating": True})


@login_required
def request_edit(request, pk: int):
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    if obj.requester_id != request.user.pk:
        raise Http404
    if not obj.is_editable:
        messages.error(
            request,
            f"This request is {obj.get_status_display().lower()} and can no longer be edited.",
        )
        return redirect("onboarding-detail", pk=obj.pk)
    submit = "submit" in request.POST
    form = OnboardingRequestForm(
        request.POST or None, instance=obj, user=request.user, submit=submit
    )
    if request.method == "GET" and request.GET.get("check"):
        # Sent here by "Submit for review" on an incomplete request: what is missing, beside
        # each field, as the form shows it when submitted from here.
        form = OnboardingRequestForm(
            form.instance_as_data(), instance=obj, user=request.user, submit=True
        )
        form.is_valid()
    if request.method == "POST" and form.is_valid():
        try:
            onboarding.onboarding_request_update(
                onboarding_request=obj, actor=request.user, data=form.service_data(), submit=submit
            )
        except ValidationError as exc:
            form_apply_errors(form, exc)
        else:
            messages.success(request, "Request submitted." if submit else "Changes saved.")
            return redirect("onboarding-detail", pk=obj.pk)
    return render(request, "portal/onboarding/form.html", {"form": form, "obj": obj})


def _render_detail(
    request,
    obj: OnboardingRequest,
    *,
    comment_form: CommentForm | None = None,
    decision_form: DecisionForm | None = None,
    attachment_form: AttachmentForm | None = None,
    status: int = 200,
):
    if decision_form is None and request.user.is_server_admin:
        decision_form = DecisionForm()
    if obj.requester_id == request.user.pk and obj.is_open:
        attachment_form = attachment_form or AttachmentForm()
    return render(
        request,
        "portal/onboarding/detail.html",
        {
            "obj": obj,
            "comments": obj.comments.select_related("author"),
            "events": selectors.audit_events_for(obj=obj),
            "changes": selectors.last_submission_data(obj=obj).get("changes"),
            "attachments": obj.attachments.all(),
            "attachment_form": attachment_form,
            "comment_form": comment_form or CommentForm(),
            "decision_form": decision_form,
        },
        status=status,
    )


@login_required
def request_detail(request, pk: int):
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    return _render_detail(request, obj)


@login_required
@require_POST
def request_submit(request, pk: int):
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    try:
        onboarding.onboarding_request_submit(onboarding_request=obj, actor=request.user)
    except ValidationError as exc:
        if obj.is_editable and obj.requester_id == request.user.pk:
            # The form marks each missing field beside it; one long sentence would not.
            missing = hasattr(exc, "error_dict") and set(exc.error_dict) <= onboarding.COMPLETENESS
            messages.error(
                request,
                "This request is not ready to submit yet: complete the marked fields."
                if missing
                else "This request is not ready to submit: " + error_text(exc),
            )
            return redirect(reverse("onboarding-edit", args=[obj.pk]) + "?check=1")
        messages.error(request, "This request is not ready to submit: " + error_text(exc))
    else:
        messages.success(request, "Request submitted. The administrators have been told.")
    return redirect("onboarding-detail", pk=obj.pk)


@login_required
@require_POST
def request_withdraw(request, pk: int):
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    try:
        onboarding.onboarding_request_withdraw(onboarding_request=obj, actor=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, "Request withdrawn.")
    return redirect("onboarding-detail", pk=obj.pk)


@login_required
@require_POST
def request_comment(request, pk: int):
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            onboarding.onboarding_comment_create(
                onboarding_request=obj, author=request.user, body=form.cleaned_data["body"]
            )
        except ValidationError as exc:
            form_apply_errors(form, exc)
        else:
            messages.success(request, "Comment posted.")
            return redirect("onboarding-detail", pk=obj.pk)
    # The page again, with what was wrong beside the comment box and the text kept.
    return _render_detail(request, obj, comment_form=form)


@server_admin_required
@require_POST
def request_decide(request, pk: int):
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        if obj.status == OnboardingRequest.Status.SUBMITTED:
            return _render_detail(request, obj, decision_form=form)
        messages.error(request, error_text(ValidationError(form.errors["decision"])))
        return redirect("onboarding-detail", pk=obj.pk)
    decision, note = form.cleaned_data["decision"], form.cleaned_data["note"]
    try:
        if decision == "approve":
            project = onboarding.onboarding_request_approve(
                onboarding_request=obj, actor=request.user, note=note
            )
            messages.success(request, f"Approved. Project “{project.title}” is created.")
        elif decision == "reject":
            onboarding.onboarding_request_reject(
                onboarding_request=obj, actor=request.user, note=note
            )
            messages.success(request, "Rejected. The researcher has been told.")
        else:
            onboarding.onboarding_request_request_changes(
                onboarding_request=obj, actor=request.user, note=note
            )
            messages.success(request, "Sent back for changes. The researcher has been told.")
    except ValidationError as exc:
        obj.refresh_from_db()
        if not hasattr(exc, "error_dict") or obj.status != OnboardingRequest.Status.SUBMITTED:
            messages.error(request, error_text(exc))
            return redirect("onboarding-detail", pk=obj.pk)
        # A note is missing: the page again, the decision still chosen, the reason beside it.
        form_apply_errors(form, exc)
        return _render_detail(request, obj, decision_form=form)
    return redirect("onboarding-detail", pk=obj.pk)


@login_required
@require_POST
@accepts_files
def attachment_upload(request, pk: int):
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    if obj.requester_id != request.user.pk:
        raise Http404
    form = AttachmentForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            attachment = attachments.attachment_add(
                onboarding_request=obj, upload=form.cleaned_data["file"], actor=request.user
            )
        except ValidationError as exc:
            if not hasattr(exc, "error_dict"):  # the request is closed: no form to show it on
                messages.error(request, error_text(exc))
                return redirect("onboarding-detail", pk=obj.pk)
            form_apply_errors(form, exc)
        else:
            messages.success(request, f"“{attachment.name}” is attached to the request.")
            return redirect(reverse("onboarding-detail", args=[obj.pk]) + "#attachments-h")
    return _render_detail(request, obj, attachment_form=form)


@login_required
def attachment_download(request, pk: int, attachment_id: int):
    """The file, to the requester and server administrators only; anyone else gets 404."""
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    attachment = get_object_or_404(OnboardingAttachment, pk=attachment_id, request=obj)
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.name,
        content_type=attachments.CONTENT_TYPES[attachment.kind],
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def attachment_remove(request, pk: int, attachment_id: int):
    obj = selectors.onboarding_request_get_for_user(user=request.user, pk=pk)
    attachment = get_object_or_404(OnboardingAttachment, pk=attachment_id, request=obj)
    if obj.requester_id != request.user.pk:
        raise Http404
    try:
        attachments.attachment_remove(attachment=attachment, actor=request.user)
    except ValidationError as exc:
        messages.error(request, error_text(exc))
    else:
        messages.success(request, f"“{attachment.name}” removed.")
    return redirect(reverse("onboarding-detail", args=[obj.pk]) + "#attachments-h")


@server_admin_required
def review_queue(request):
    status = request.GET.get("status") or OnboardingRequest.Status.SUBMITTED
    # Drafts are the researcher's own until submitted; the queue never lists them.
    if status != "all" and (
        status not in OnboardingRequest.Status.values or status == OnboardingRequest.Status.DRAFT
    ):
        status = OnboardingRequest.Status.SUBMITTED
    instance_id = request.GET.get("instance")
    instance_id = int(instance_id) if instance_id and instance_id.isdigit() else None
    search = request.GET.get("q", "")
    qs = selectors.onboarding_requests_queue(status=status, instance_id=instance_id, search=search)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/onboarding/queue.html",
        {
            "page": page,
            "status": status,
            "statuses": [s for s in OnboardingRequest.Status.choices if s[0] != "draft"],
            "instances": redcap_instances_offered(),
            "instance_id": instance_id,
            "search": search,
            "counts": selectors.onboarding_request_counts_by_status(),
        },
    )
