"""Files kept with an onboarding request: the IRB approval letter, a protocol page.

A file is accepted by what it is, not by its name: its first bytes must be those of a PDF, a PNG
or a JPEG, and its name must say the same (a PNG named letter.pdf is refused, so what people
download is what they expect). Empty files and files over ATTACHMENT_MAX_MB are refused. Every
refusal says why, and nothing is written: the row and the file are saved together or not at all.
"""

import math
import os
import re
import uuid

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from portal.audit import audit_record
from portal.models import OnboardingAttachment, OnboardingRequest

Kind = OnboardingAttachment.Kind
MAX_PER_REQUEST = 10
# What each kind's file starts with ("magic bytes"), and the names it may carry.
SIGNATURES = {
    Kind.PDF: (b"%PDF-",),
    Kind.PNG: (b"\x89PNG\r\n\x1a\n",),
    Kind.JPEG: (b"\xff\xd8\xff",),
}
EXTENSIONS = {".pdf": Kind.PDF, ".png": Kind.PNG, ".jpg": Kind.JPEG, ".jpeg": Kind.JPEG}
CONTENT_TYPES = {Kind.PDF: "application/pdf", Kind.PNG: "image/png", Kind.JPEG: "image/jpeg"}
ACCEPTED = "a PDF, PNG or JPEG file"


def max_bytes() -> int:
    return settings.ATTACHMENT_MAX_MB * 1024 * 1024


def kind_of(head: bytes) -> str | None:
    """The kind a file's first bytes say it is, or None."""
    for kind, signatures in SIGNATURES.items():
        if any(head.startswith(s) for s in signatures):
            return kind
    return None


def clean_name(name: str) -> str:
    """The uploaded name without folders or control characters, at most 200 characters."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", os.path.basename(name.replace("\\", "/"))).strip()
    stem, ext = os.path.splitext(name or "attachment")
    return stem[: 200 - len(ext)] + ext


def _check(upload: UploadedFile, name: str) -> str:
    """The file's kind, or ValidationError saying why it is refused."""
    if not upload.size:
        raise ValidationError({"file": f"“{name}” is empty (0 bytes). Choose the file again."})
    if upload.size > max_bytes():
        raise ValidationError(
            {
                "file": f"“{name}” is {math.ceil(upload.size / 104857.6) / 10} MB; the limit is "
                f"{settings.ATTACHMENT_MAX_MB} MB. Upload a smaller copy (for example, only the "
                "approval page)."
            }
        )
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    found = kind_of(head)
    claimed = EXTENSIONS.get(os.path.splitext(name)[1].lower())
    if found is None:
        if claimed:
            why = f"“{name}” is named as a {Kind(claimed).label} but is not one"
        else:
            why = f"“{name}” is not {ACCEPTED}"
        raise ValidationError({"file": f"{why} (checked by its content). Attach {ACCEPTED}."})
    if claimed != found:
        ext = ".jpg" if found == Kind.JPEG else f".{found}"
        raise ValidationError(
            {
                "file": f"“{name}” is a {Kind(found).label}, but its name says otherwise. Rename "
                f"it to end in {ext} and attach it again."
            }
        )
    return found


def attachment_add(
    *, onboarding_request: OnboardingRequest, upload: UploadedFile, actor
) -> OnboardingAttachment:
    """Keep a file with an open request (the requester only)."""
    if onboarding_request.requester_id != actor.pk:
        raise PermissionDenied("Only the researcher who filed this request can attach files.")
    if not onboarding_request.is_open:
        raise ValidationError(
            f"This request is {onboarding_request.get_status_display().lower()}; files can be "
            "attached only while it is open."
        )
    name = clean_name(upload.name or "")
    kind = _check(upload, name)
    with transaction.atomic():
        # Counted under the request's lock: two uploads at once cannot pass the limit together.
        OnboardingRequest.objects.select_for_update(no_key=True).get(pk=onboarding_request.pk)
        if onboarding_request.attachments.count() >= MAX_PER_REQUEST:
            raise ValidationError(
                {"file": f"A request can keep {MAX_PER_REQUEST} files. Remove one first."}
            )
        attachment = OnboardingAttachment(
            request=onboarding_request, name=name, kind=kind, size=upload.size, uploaded_by=actor
        )
        stored = f"{onboarding_request.pk}/{uuid.uuid4().hex}.{kind}"
        attachment.file.save(stored, upload, save=False)
        try:
            attachment.save()
            audit_record(
                actor=actor,
                action="onboarding_request.file_attached",
                obj=onboarding_request,
                message=f"Attached “{name}” ({attachment.get_kind_display()}).",
            )
        except Exception:
            attachment.file.delete(save=False)  # the row is not there: neither is the file
            raise
    return attachment


def attachment_remove(*, attachment: OnboardingAttachment, actor) -> None:
    """Remove a file while the request can still be edited (draft, or sent back for changes);
    once submitted for a decision, what the administrators saw stays with the request."""
    onboarding_request = attachment.request
    if onboarding_request.requester_id != actor.pk:
        raise PermissionDenied("Only the researcher who filed this request can remove files.")
    if not onboarding_request.is_editable:
        raise ValidationError(
            f"This request is {onboarding_request.get_status_display().lower()}; its files are "
            "kept with it."
        )
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="onboarding_request.file_removed",
            obj=onboarding_request,
            message=f"Removed “{attachment.name}”.",
        )
        attachment.delete()
        transaction.on_commit(lambda: attachment.file.delete(save=False))
