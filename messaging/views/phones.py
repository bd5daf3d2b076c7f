"""'Send a test to my phone' and the staff member's own phone it goes to (its confirmation code).

Project-scoped like every messaging view: editors and owners only (viewers 403, outsiders 404).
"""

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from messaging.forms import PhoneCodeForm, StaffPhoneForm
from messaging.models import MessageRule, StaffPhone
from messaging.services import test_texts
from projects.access import project_get_for_user
from projects.forms import error_text, form_apply_errors
from projects.models import Membership, Participant

EDITOR = Membership.Role.EDITOR


def _back(request, default: str) -> str:
    """Where the button was (a same-site path only), else `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@login_required
@require_POST
def test_text_send(request, pk: int):
    """Send the text (the rule's, or the one being written) to the editor's own phone. Answers
    JSON to the preview's button, else goes back to the page with a message."""
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=EDITOR)
    rule_id = request.POST.get("rule", "")
    rule = (
        get_object_or_404(MessageRule, pk=int(rule_id), project=project)
        if rule_id.isdigit()
        else None
    )
    body = rule.body if rule else request.POST.get("body", "")
    record = request.POST.get("participant", "")
    participant = (
        get_object_or_404(Participant, pk=int(record), project=project)
        if record.isdigit()
        else None
    )
    wants_json = "application/json" in request.headers.get("Accept", "")
    phone_url = reverse("staff-phone", args=[project.pk])
    try:
        message = test_texts.test_text_send(
            project=project, actor=request.user, body=body, participant=participant
        )
    except ValidationError as exc:
        if wants_json:
            return JsonResponse(
                {"ok": False, "message": error_text(exc), "phone_url": phone_url}, status=400
            )
        flash.error(request, error_text(exc))
    else:
        phone = StaffPhone.objects.get(user=request.user)
        words = (
            f"Test sent to your phone ({phone.masked_phone}): {message.segments} segment"
            f"{'s' if message.segments != 1 else ''}, counted against the quota and marked as a "
            "test in the log."
        )
        if wants_json:
            return JsonResponse({"ok": True, "message": words})
        flash.success(request, words)
    default = reverse("rule-detail", args=[project.pk, rule.pk]) if rule else phone_url
    return redirect(_back(request, default))


@sensitive_post_parameters("phone", "code")
@login_required
def staff_phone(request, pk: int):
    """Add (or change) the editor's own phone and confirm it with the code texted to it through
    this project's provider."""
    project, role = project_get_for_user(user=request.user, pk=pk, min_role=EDITOR)
    current = StaffPhone.objects.filter(user=request.user).first()
    phone_form = StaffPhoneForm(request.POST if "send_code" in request.POST else None)
    code_form = PhoneCodeForm(request.POST if "verify" in request.POST else None)
    back = _back(request, reverse("rule-list", args=[project.pk]))
    if request.method == "POST" and "send_code" in request.POST and phone_form.is_valid():
        try:
            current = test_texts.staff_phone_start(
                project=project, actor=request.user, raw=phone_form.cleaned_data["phone"]
            )
        except ValidationError as exc:
            form_apply_errors(phone_form, exc)
        else:
            flash.success(
                request,
                f"A code is on its way to {current.masked_phone}. Type it below (it expires in "
                "15 minutes).",
            )
            return redirect(reverse("staff-phone", args=[project.pk]) + f"?next={back}")
    if request.method == "POST" and "verify" in request.POST and code_form.is_valid():
        try:
            test_texts.staff_phone_verify(actor=request.user, code=code_form.cleaned_data["code"])
        except ValidationError as exc:
            form_apply_errors(code_form, exc)
        else:
            flash.success(request, "Your phone is confirmed. Tests go to it from now on.")
            return redirect(back)
    return render(
        request,
        "messaging/staff_phone.html",
        {
            "project": project,
            "role": role,
            "current": current,
            "phone_form": phone_form,
            "code_form": code_form,
            "next": back,
            "tab": "messages",
        },
    )


@login_required
@require_POST
def staff_phone_remove(request):
    test_texts.staff_phone_remove(actor=request.user)
    flash.success(request, "Your phone is removed. Tests need a confirmed phone again.")
    return redirect("profile")
