"""REDCap's Data Entry Trigger: the address REDCap posts to, and the owners' buttons for it.

The address answers fast and cheaply whatever arrives (docs/redcap.md, "The Data Entry
Trigger"): an unknown address or project id is a 404 after one query, with no REDCap call; a
flood is a 429 (a limit per project); a post that is not REDCap's is a 4xx naming what is
wrong, and nothing is written. An accepted post only notes the record for a read
(`det.det_post_accept`); the read happens in a django-q2 task.
"""

from urllib.parse import parse_qsl

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, ValidationError
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from portal.throttle import rate_limit
from projects.access import project_get_for_user
from projects.forms import error_text
from projects.models import DataEntryTrigger, Membership, Project
from projects.sandbox.services import is_sandbox_instance
from projects.services import det

MAX_BODY_BYTES = 8192  # REDCap's post is a dozen short fields
MAX_FIELDS = 100
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
NOT_FOUND = "No Data Entry Trigger here."


def _text(message: str, status: int, **headers: str) -> HttpResponse:
    return HttpResponse(
        message, status=status, content_type="text/plain; charset=utf-8", headers=headers
    )


def _form(request) -> dict[str, list[str]]:
    """The post's form fields, each a list of values; DetPostError when the body is not
    well-formed UTF-8 form data."""
    if request.content_type == "multipart/form-data":
        try:
            return {key: request.POST.getlist(key) for key in request.POST}
        except (MultiPartParserError, SuspiciousOperation, RequestDataTooBig) as exc:
            raise det.DetPostError("The multipart form data cannot be read.") from exc
    try:
        text = request.body.decode("utf-8")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError as exc:
        raise det.DetPostError("The post is not valid UTF-8 text.") from exc
    except ValueError as exc:  # more than MAX_FIELDS fields
        raise det.DetPostError(f"The post has more than {MAX_FIELDS} fields.") from exc
    data: dict[str, list[str]] = {}
    for key, value in pairs:
        data.setdefault(key, []).append(value)
    return data


@csrf_exempt  # REDCap posts without a CSRF token; the secret in the path stands in for it
def receive(request, secret: str):
    """REDCap's post after a record is saved. Answers in a few queries, never calling REDCap."""
    if request.method != "POST":
        return _text("REDCap's Data Entry Trigger posts here (HTTP POST).", 405, Allow="POST")
    trigger = (
        DataEntryTrigger.objects.select_related("project").filter(secret=secret).first()
        if len(secret) <= 64
        else None
    )
    if trigger is None:
        return _text(NOT_FOUND, 404)
    limited = rate_limit(request, "det", f"det:{trigger.project_id}")
    if limited is not None:
        return _text(
            "Too many posts for this project in the last minute. StudyText reads every record "
            "again at its next sync, within 15 minutes.",
            429,
            **{"Retry-After": limited["Retry-After"]},
        )
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _text("The Content-Length header is not a number.", 400)
    if length > MAX_BODY_BYTES:
        return _text(f"The post is larger than {MAX_BODY_BYTES} bytes; REDCap's is small.", 413)
    if request.content_type not in FORM_TYPES:
        return _text(
            "REDCap's Data Entry Trigger posts form fields "
            "(application/x-www-form-urlencoded); this post is "
            f"“{request.content_type or 'without a content type'}”.",
            415,
        )
    try:
        post = det.det_post_parse(_form(request))
    except det.DetPostError as exc:
        return _text(f"Not a Data Entry Trigger post: {exc}", 400)
    project = trigger.project
    if post.project_id != project.redcap_project_id:
        return _text(NOT_FOUND, 404)
    refusal = det.det_refusal(project)
    if refusal is not None:
        return _text(refusal, 409)
    det.det_post_accept(trigger=trigger, post=post)
    return _text("Received. StudyText reads the record from REDCap in a moment.", 200)


# --- The owners' buttons (on the project's REDCap page) --------------------------------------
ACTIONS = {
    "enable": (
        det.data_entry_trigger_enable,
        "The address is ready. Paste it into REDCap as the steps below say.",
    ),
    "rotate": (
        det.data_entry_trigger_rotate,
        "A new address replaced the old one, which no longer works. Paste the new one into "
        "REDCap now.",
    ),
    "disable": (
        det.data_entry_trigger_disable,
        "Instant updates are off: posts to the old address are refused. Clear the Data Entry "
        "Trigger in REDCap's Project Setup too.",
    ),
}


@login_required
@require_POST
def change(request, pk: int):
    project, _ = project_get_for_user(user=request.user, pk=pk, min_role=Membership.Role.OWNER)
    action = ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        messages.error(request, "Choose to create, replace or remove the address.")
    else:
        service, done = action
        try:
            service(project=project, actor=request.user)
        except ValidationError as exc:
            messages.error(request, error_text(exc))
        else:
            messages.success(request, done)
    return redirect(reverse("project-redcap", args=[project.pk]) + "#det")


def det_card(*, project: Project, role: str) -> dict:
    """What the REDCap page shows about the Data Entry Trigger (the address to owners only)."""
    trigger = DataEntryTrigger.objects.filter(project=project).first()
    owner = role == Membership.Role.OWNER
    sandbox_setup = None
    if owner and is_sandbox_instance(project.redcap_instance):
        sandbox_setup = reverse("sandbox-redcap-project", args=[project.redcap_project_id])
    return {
        "trigger": trigger,
        "address": det.det_address(trigger) if trigger and owner else None,
        "refusal": det.det_refusal(project) if trigger else None,
        "sandbox_setup": sandbox_setup,
    }
