"""Onboarding as a newcomer meets it: missing fields marked one by one, the decision kept when a
note is missing, what changed on a resubmission, and files kept with a request."""

import re

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from portal.models import AuditEvent, OnboardingAttachment, OnboardingRequest
from portal.services import onboarding
from portal.storage import private_storage
from tests.factories import OnboardingRequestFactory

Status = OnboardingRequest.Status
pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40


@pytest.fixture(autouse=True)
def private_root(settings, tmp_path):
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private"
    return settings.PRIVATE_MEDIA_ROOT


def _has_error(html: str, field: str) -> bool:
    return re.search(rf'class="field has-error[^"]*" id="field-{field}"', html) is not None


# --- 1. Submitting an incomplete draft -------------------------------------------------------
def test_submitting_an_incomplete_draft_marks_each_missing_field_on_the_form(as_user, researcher):
    obj = OnboardingRequestFactory(
        requester=researcher,
        status=Status.DRAFT,
        submitted_at=None,
        pi_name="",
        summary="",
        expected_participants=None,
        message_kinds=[],
        attest_consent=False,
    )

    response = as_user(researcher).post(reverse("onboarding-submit", args=[obj.pk]), follow=True)

    html = response.content.decode()
    assert response.redirect_chain[-1][0].startswith(reverse("onboarding-edit", args=[obj.pk]))
    for field in ("pi_name", "summary", "expected_participants", "message_kinds"):
        assert _has_error(html, field), field
    assert _has_error(html, "attest_consent")
    assert not _has_error(html, "pi_email") and not _has_error(html, "project_title")
    assert "Enter the PI&#x27;s name." in html and "Write a short study summary." in html
    assert "Choose at least one kind of message." in html
    assert "complete the marked fields" in html
    assert "Before submitting, add" not in html  # the old block of text
    # The fields that were filled in are still filled in.
    assert f'value="{obj.pi_email}"' in html
    obj.refresh_from_db()
    assert obj.status == Status.DRAFT


# --- 2. A decision that needs a note ---------------------------------------------------------
@pytest.mark.parametrize(
    ("decision", "message"),
    [
        ("request_changes", "Tell the researcher what to change."),
        ("reject", "Tell the researcher why the request is rejected."),
    ],
)
def test_a_decision_without_its_note_is_refused_and_the_chosen_decision_is_kept(
    as_user, server_admin, decision, message
):
    obj = OnboardingRequestFactory()

    response = as_user(server_admin).post(
        reverse("onboarding-decide", args=[obj.pk]), {"decision": decision, "note": "  "}
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert re.search(rf'<input type="radio" name="decision" value="{decision}"[^>]* checked>', html)
    assert html.count(" checked>") == 1
    assert message in html.split('id="decision-form"')[1]
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED


# --- 3. What changed since the last submission -----------------------------------------------
def test_a_resubmitted_request_shows_the_administrator_each_change_old_to_new(
    as_user, researcher, server_admin, instance
):
    obj = OnboardingRequestFactory(
        requester=researcher,
        redcap_instance=instance,
        status=Status.DRAFT,
        pi_name="Dr. Ada Lovelace",
        expected_participants=120,
    )
    onboarding.onboarding_request_submit(onboarding_request=obj, actor=researcher)
    onboarding.onboarding_request_request_changes(
        onboarding_request=obj, actor=server_admin, note="Fewer participants, and the real PI."
    )
    onboarding.onboarding_request_update(
        onboarding_request=obj,
        actor=researcher,
        data={"pi_name": "Dr. Grace Hopper", "expected_participants": 80},
        submit=True,
    )

    html = as_user(server_admin).get(reverse("onboarding-detail", args=[obj.pk])).content.decode()

    section = html.split('id="changes"')[1].split("</section>")[0]
    assert "Changed since the last submission" in html
    assert '<td>PI name</td><td class="old"><del>Dr. Ada Lovelace</del></td>' in section
    assert '<td class="new"><ins>Dr. Grace Hopper</ins></td>' in section
    assert "<del>120</del>" in section and "<ins>80</ins>" in section
    assert "Project title" not in section  # unchanged fields are not listed
    event = AuditEvent.objects.filter(action="onboarding_request.resubmitted").get()
    assert {c["field"] for c in event.data["changes"]} == {"PI name", "Expected participants"}


def test_a_first_submission_shows_no_changes(as_user, researcher, server_admin, instance):
    obj = OnboardingRequestFactory(requester=researcher, redcap_instance=instance, status="draft")
    onboarding.onboarding_request_submit(onboarding_request=obj, actor=researcher)
    html = as_user(server_admin).get(reverse("onboarding-detail", args=[obj.pk])).content.decode()
    assert "Changed since the last submission" not in html


# --- 4. Files kept with a request ------------------------------------------------------------
def _upload(client, obj, name: str, content: bytes, content_type="application/octet-stream"):
    return client.post(
        reverse("onboarding-attachment-upload", args=[obj.pk]),
        {"file": SimpleUploadedFile(name, content, content_type=content_type)},
        follow=True,
    )


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [("IRB letter.pdf", PDF, "pdf"), ("scan.PNG", PNG, "png"), ("page 2.jpeg", JPEG, "jpeg")],
)
def test_a_requester_attaches_a_pdf_png_or_jpeg_checked_by_its_content(
    as_user, researcher, private_root, name, content, kind
):
    obj = OnboardingRequestFactory(requester=researcher)

    html = _upload(as_user(researcher), obj, name, content).content.decode()

    attachment = OnboardingAttachment.objects.get(request=obj)
    assert (attachment.name, attachment.kind, attachment.size) == (name, kind, len(content))
    assert f"“{name}” is attached to the request." in html
    stored = private_root / attachment.file.name
    assert stored.read_bytes() == content
    assert name not in attachment.file.name  # stored under a random name, not the uploaded one
    assert AuditEvent.objects.filter(action="onboarding_request.file_attached").exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "IRB letter.pdf",
            b"PK\x03\x04 a Word document, really",
            "“IRB letter.pdf” is named as a PDF but is not one (checked by its content). "
            "Attach a PDF, PNG or JPEG file.",
        ),
        ("letter.pdf", b"", "“letter.pdf” is empty (0 bytes). Choose the file again."),
        (
            "notes.docx",
            b"PK\x03\x04",
            "“notes.docx” is not a PDF, PNG or JPEG file (checked by its content).",
        ),
        (
            "photo.pdf",
            PNG,
            "“photo.pdf” is a PNG image, but its name says otherwise. Rename it to end in .png",
        ),
    ],
)
def test_a_file_of_another_type_or_empty_is_refused_with_the_reason_and_nothing_is_saved(
    as_user, researcher, private_root, name, content, message
):
    obj = OnboardingRequestFactory(requester=researcher)

    response = _upload(as_user(researcher), obj, name, content)

    assert message.replace("“", "&ldquo;") in response.content.decode() or message in (
        response.content.decode()
    )
    assert not OnboardingAttachment.objects.exists()
    assert not private_root.exists() or not any(private_root.rglob("*.*"))


def test_a_file_over_the_size_limit_is_refused_and_nothing_is_saved(
    as_user, researcher, settings, private_root
):
    settings.ATTACHMENT_MAX_MB = 1
    obj = OnboardingRequestFactory(requester=researcher)

    response = _upload(as_user(researcher), obj, "big.pdf", PDF + b"0" * (1024 * 1024))

    assert "“big.pdf” is 1.1 MB; the limit is 1 MB." in response.content.decode()
    assert not OnboardingAttachment.objects.exists()
    assert not private_root.exists() or not any(private_root.rglob("*.*"))


def test_files_are_stored_outside_the_web_root_and_have_no_public_address(
    as_user, researcher, private_root
):
    obj = OnboardingRequestFactory(requester=researcher)
    _upload(as_user(researcher), obj, "letter.pdf", PDF)
    attachment = OnboardingAttachment.objects.get()

    path = private_root / attachment.file.name
    assert path.is_file()
    assert not str(path).startswith(str(settings.STATIC_ROOT))
    with pytest.raises(ValueError, match="no public address"):
        private_storage().url(attachment.file.name)


@pytest.mark.parametrize(("who", "status"), [("requester", 200), ("admin", 200), ("other", 404)])
def test_only_the_requester_and_administrators_can_download_a_file_an_outsider_gets_404(
    as_user, researcher, other_researcher, server_admin, who, status
):
    obj = OnboardingRequestFactory(requester=researcher)
    _upload(as_user(researcher), obj, "IRB letter.pdf", PDF)
    attachment = OnboardingAttachment.objects.get()
    person = {"requester": researcher, "admin": server_admin, "other": other_researcher}[who]

    response = as_user(person).get(reverse("onboarding-attachment", args=[obj.pk, attachment.pk]))

    assert response.status_code == status
    if status == 200:
        assert b"".join(response.streaming_content) == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"].startswith("attachment;")
        assert "IRB letter.pdf" in response["Content-Disposition"]
        assert response["Cache-Control"] == "private, no-store"


def test_an_anonymous_visitor_is_sent_to_sign_in_for_a_file(client, researcher):
    obj = OnboardingRequestFactory(requester=researcher)
    client.force_login(researcher)
    _upload(client, obj, "letter.pdf", PDF)
    client.logout()
    attachment = OnboardingAttachment.objects.get()
    response = client.get(reverse("onboarding-attachment", args=[obj.pk, attachment.pk]))
    assert response.status_code == 302 and reverse("login") in response.url


def test_a_file_id_of_another_request_is_404_even_for_its_own_requester(
    as_user, researcher, other_researcher
):
    theirs = OnboardingRequestFactory(requester=other_researcher)
    _upload(as_user(other_researcher), theirs, "theirs.pdf", PDF)
    mine = OnboardingRequestFactory(requester=researcher)
    attachment = OnboardingAttachment.objects.get()
    url = reverse("onboarding-attachment", args=[mine.pk, attachment.pk])
    assert as_user(researcher).get(url).status_code == 404


@pytest.mark.parametrize("who", ["admin", "other"])
def test_only_the_requester_attaches_files(
    as_user, researcher, other_researcher, server_admin, who
):
    obj = OnboardingRequestFactory(requester=researcher)
    person = {"admin": server_admin, "other": other_researcher}[who]
    response = as_user(person).post(
        reverse("onboarding-attachment-upload", args=[obj.pk]),
        {"file": SimpleUploadedFile("x.pdf", PDF)},
    )
    assert response.status_code == 404
    assert not OnboardingAttachment.objects.exists()


def test_files_stay_with_a_submitted_or_decided_request(as_user, researcher):
    obj = OnboardingRequestFactory(requester=researcher, status=Status.DRAFT)
    client = as_user(researcher)
    _upload(client, obj, "letter.pdf", PDF)
    attachment = OnboardingAttachment.objects.get()
    OnboardingRequest.objects.filter(pk=obj.pk).update(status=Status.SUBMITTED)

    response = client.post(
        reverse("onboarding-attachment-remove", args=[obj.pk, attachment.pk]), follow=True
    )

    assert "its files are kept with it" in response.content.decode()
    assert OnboardingAttachment.objects.filter(pk=attachment.pk).exists()
    OnboardingRequest.objects.filter(pk=obj.pk).update(status=Status.APPROVED)
    response = _upload(client, obj, "another.pdf", PDF)
    assert OnboardingAttachment.objects.count() == 1
    assert 'id="attachment-form"' not in response.content.decode()


def test_a_draft_can_drop_a_file_it_no_longer_needs(
    as_user, researcher, private_root, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher, status=Status.DRAFT)
    client = as_user(researcher)
    _upload(client, obj, "wrong letter.pdf", PDF)
    attachment = OnboardingAttachment.objects.get()
    path = private_root / attachment.file.name

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("onboarding-attachment-remove", args=[obj.pk, attachment.pk]))

    assert not OnboardingAttachment.objects.exists()
    assert not path.exists()
    assert AuditEvent.objects.filter(action="onboarding_request.file_removed").exists()


def test_a_resubmission_lists_a_newly_attached_file_as_a_change(
    as_user, researcher, server_admin, instance
):
    obj = OnboardingRequestFactory(requester=researcher, redcap_instance=instance, status="draft")
    onboarding.onboarding_request_submit(onboarding_request=obj, actor=researcher)
    onboarding.onboarding_request_request_changes(
        onboarding_request=obj, actor=server_admin, note="Attach the IRB letter."
    )
    _upload(as_user(researcher), obj, "IRB letter.pdf", PDF)
    onboarding.onboarding_request_submit(onboarding_request=obj, actor=researcher)

    html = as_user(server_admin).get(reverse("onboarding-detail", args=[obj.pk])).content.decode()

    section = html.split('id="changes"')[1].split("</section>")[0]
    assert "<td>Attached files</td>" in section and "<ins>IRB letter.pdf</ins>" in section
