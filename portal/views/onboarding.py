from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal import selectors
from portal.access import server_admin_required
from portal.forms import CommentForm, DecisionForm, OnboardingRequestForm
from portal.models import OnboardingRequest
from portal.services import onboarding
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


def _render_detail(request, obj: OnboardingRequest, *, comment_form: CommentForm | None = None):
    return render(
        request,
        "portal/onboarding/detail.html",
        {
            "obj": obj,
            "comments": obj.comments.select_related("author"),
            "events": selectors.audit_events_for(obj=obj),
            "comment_form": comment_form or CommentForm(),
            "decision_form": DecisionForm() if request.user.is_server_admin else None,
        },
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
        messages.error(request, "This request is not ready to submit: " + error_text(exc))
        if obj.is_editable and obj.requester_id == request.user.pk:
            return redirect("onboarding-edit", pk=obj.pk)
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
        messages.error(request, "Choose approve, ask for changes or reject.")
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
        messages.error(request, error_text(exc))
    return redirect("onboarding-detail", pk=obj.pk)


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
