"""The onboarding pages through the real views: who may do what, and what bad input gets."""

import datetime

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Account
from portal.models import AuditEvent, OnboardingComment, OnboardingRequest
from projects.models import Membership, Project
from tests.factories import (
    AccountFactory,
    OnboardingRequestFactory,
    PlanFactory,
    ProjectFactory,
    RedcapInstanceFactory,
    UserFactory,
)

Status = OnboardingRequest.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def personas(researcher, other_researcher, server_admin):
    return {
        "owner": researcher,
        "other": other_researcher,
        "admin": server_admin,
        "anonymous": None,
    }


def form_data(instance, **overrides) -> dict:
    """A complete request as the browser posts it (new account on the Basic plan)."""
    data = {
        "redcap_instance": str(instance.pk),
        "redcap_project_id": "4242",
        "project_title": "Sleep and Mood",
        "pi_name": "Dr. Ada Lovelace",
        "pi_email": "ada@uni.test",
        "irb_protocol": "IRB-2026-0001",
        "irb_status": "approved",
        "summary": "Weekly mood surveys for 100 adults.",
        "expected_participants": "100",
        "expected_messages_per_month": "400",
        "message_kinds": ["invitation", "reminder"],
        "account_choice": "new",
        "billing_account": "",
        "new_account_name": "Sleep Lab",
        "new_account_plan": str(PlanFactory().pk),
        "new_account_time_zone": "America/Chicago",
        "attest_no_phi": "on",
        "attest_consent": "on",
        "submit": "1",
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def assert_login_redirect(response, url):
    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


def errors_of(response) -> dict:
    return response.context["form"].errors


# --- Access matrix ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "expected"), [("owner", 200), ("other", 200), ("admin", 200), ("anonymous", None)]
)
@pytest.mark.parametrize("name", ["onboarding-list", "onboarding-create"])
def test_list_and_new_request_pages_are_for_anyone_signed_in(
    as_user, personas, name, who, expected
):
    url = reverse(name)
    response = as_user(personas[who]).get(url)
    if expected is None:
        assert_login_redirect(response, url)
    else:
        assert response.status_code == expected


def test_the_list_shows_only_the_researchers_own_requests(as_user, researcher, other_researcher):
    OnboardingRequestFactory(requester=researcher, project_title="Mine")
    OnboardingRequestFactory(requester=other_researcher, project_title="Theirs")
    page = as_user(researcher).get(reverse("onboarding-list")).content.decode()
    assert "Mine" in page
    assert "Theirs" not in page


@pytest.mark.parametrize(
    ("who", "expected"), [("owner", 200), ("other", 404), ("admin", 200), ("anonymous", None)]
)
def test_request_page_access(as_user, personas, who, expected):
    obj = OnboardingRequestFactory(requester=personas["owner"], project_title="Sleep and Mood")
    url = reverse("onboarding-detail", args=[obj.pk])
    response = as_user(personas[who]).get(url)
    if expected is None:
        assert_login_redirect(response, url)
        return
    assert response.status_code == expected
    if expected == 200:
        assert "Sleep and Mood" in response.content.decode()
        # Only administrators get the decision form.
        assert ("decision-form" in response.content.decode()) == (who == "admin")


@pytest.mark.parametrize(
    ("who", "expected"), [("owner", 200), ("other", 404), ("admin", 404), ("anonymous", None)]
)
def test_edit_page_access(as_user, personas, who, expected):
    obj = OnboardingRequestFactory(requester=personas["owner"], status=Status.DRAFT)
    url = reverse("onboarding-edit", args=[obj.pk])
    response = as_user(personas[who]).get(url)
    if expected is None:
        assert_login_redirect(response, url)
    else:
        assert response.status_code == expected


@pytest.mark.parametrize(
    ("who", "expected"), [("owner", 302), ("other", 404), ("admin", 403), ("anonymous", None)]
)
def test_submit_access(as_user, personas, who, expected):
    obj = OnboardingRequestFactory(requester=personas["owner"], status=Status.DRAFT)
    url = reverse("onboarding-submit", args=[obj.pk])
    response = as_user(personas[who]).post(url)
    obj.refresh_from_db()
    if expected is None:
        assert_login_redirect(response, url)
    else:
        assert response.status_code == expected
    assert obj.status == (Status.SUBMITTED if who == "owner" else Status.DRAFT)


@pytest.mark.parametrize(
    ("who", "expected"), [("owner", 302), ("other", 404), ("admin", 403), ("anonymous", None)]
)
def test_withdraw_access(as_user, personas, who, expected):
    obj = OnboardingRequestFactory(requester=personas["owner"])
    url = reverse("onboarding-withdraw", args=[obj.pk])
    response = as_user(personas[who]).post(url)
    obj.refresh_from_db()
    if expected is None:
        assert_login_redirect(response, url)
    else:
        assert response.status_code == expected
    assert obj.status == (Status.WITHDRAWN if who == "owner" else Status.SUBMITTED)


@pytest.mark.parametrize(
    ("who", "expected"), [("owner", 302), ("other", 404), ("admin", 302), ("anonymous", None)]
)
def test_comment_access(as_user, personas, who, expected):
    obj = OnboardingRequestFactory(requester=personas["owner"])
    url = reverse("onboarding-comment", args=[obj.pk])
    response = as_user(personas[who]).post(url, {"body": "A question."})
    if expected is None:
        assert_login_redirect(response, url)
    else:
        assert response.status_code == expected
    assert OnboardingComment.objects.filter(request=obj).exists() == (who in ("owner", "admin"))


@pytest.mark.parametrize(
    ("who", "expected"), [("owner", 403), ("other", 403), ("admin", 302), ("anonymous", None)]
)
def test_decide_access(as_user, personas, who, expected):
    obj = OnboardingRequestFactory(requester=personas["owner"])
    url = reverse("onboarding-decide", args=[obj.pk])
    response = as_user(personas[who]).post(url, {"decision": "approve"})
    obj.refresh_from_db()
    if expected is None:
        assert_login_redirect(response, url)
    else:
        assert response.status_code == expected
    assert obj.status == (Status.APPROVED if who == "admin" else Status.SUBMITTED)
    assert Project.objects.exists() == (who == "admin")


@pytest.mark.parametrize(
    ("who", "expected"), [("owner", 403), ("other", 403), ("admin", 200), ("anonymous", None)]
)
def test_review_queue_access(as_user, personas, who, expected):
    url = reverse("onboarding-queue")
    response = as_user(personas[who]).get(url)
    if expected is None:
        assert_login_redirect(response, url)
    else:
        assert response.status_code == expected


def test_a_researcher_trying_an_administrator_action_is_told_why(as_user, researcher):
    obj = OnboardingRequestFactory(requester=researcher)
    response = as_user(researcher).post(
        reverse("onboarding-decide", args=[obj.pk]), {"decision": "approve"}
    )
    assert response.status_code == 403
    assert "Only server administrators can do this." in response.content.decode()


def test_the_edit_page_of_a_submitted_request_redirects_with_a_message(as_user, researcher):
    obj = OnboardingRequestFactory(requester=researcher, project_title="Before")
    client = as_user(researcher)
    response = client.post(
        reverse("onboarding-edit", args=[obj.pk]),
        form_data(RedcapInstanceFactory(), project_title="After"),
        follow=True,
    )
    assert "is submitted and can no longer be edited" in response.content.decode()
    obj.refresh_from_db()
    assert obj.project_title == "Before"


# --- Filing a request ---------------------------------------------------------------------------
def test_a_researcher_submits_a_complete_request(as_user, researcher, server_admin, instance):
    response = as_user(researcher).post(reverse("onboarding-create"), form_data(instance))
    obj = OnboardingRequest.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("onboarding-detail", args=[obj.pk])
    assert obj.status == Status.SUBMITTED
    assert obj.requester == researcher
    assert obj.redcap_project_id == 4242
    assert obj.message_kinds == ["invitation", "reminder"]
    assert obj.new_account_name == "Sleep Lab"
    assert obj.new_account_time_zone == "America/Chicago"
    assert obj.billing_account is None
    assert obj.attest_no_phi and obj.attest_consent
    page = as_user(researcher).get(response.url).content.decode()
    assert "Request submitted." in page


def test_submitting_emails_the_administrators(
    as_user, researcher, server_admin, instance, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        as_user(researcher).post(reverse("onboarding-create"), form_data(instance))
    assert [m.to for m in mail.outbox] == [[server_admin.email]]


def test_a_draft_may_be_incomplete(as_user, researcher, instance):
    data = {
        "redcap_instance": str(instance.pk),
        "redcap_project_id": "77",
        "project_title": "Half done",
        "account_choice": "new",
        "save": "1",
    }
    response = as_user(researcher).post(reverse("onboarding-create"), data)
    assert response.status_code == 302
    obj = OnboardingRequest.objects.get()
    assert obj.status == Status.DRAFT
    assert obj.pi_name == ""


def test_a_researcher_bills_an_account_they_belong_to(as_user, researcher, instance):
    account = AccountFactory(owners=[researcher])
    data = form_data(
        instance,
        account_choice="existing",
        billing_account=str(account.pk),
        new_account_name="ignored",
    )
    response = as_user(researcher).post(reverse("onboarding-create"), data)
    assert response.status_code == 302
    obj = OnboardingRequest.objects.get()
    assert obj.billing_account == account
    assert obj.new_account_plan is None
    assert obj.new_account_name == ""


def test_an_edit_and_resubmit_after_changes_were_requested(
    as_user, researcher, server_admin, instance, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(
        requester=researcher,
        redcap_instance=instance,
        redcap_project_id=4242,
        status=Status.CHANGES_REQUESTED,
        decision_note="Give the full IRB number.",
    )
    client = as_user(researcher)
    page = client.get(reverse("onboarding-edit", args=[obj.pk])).content.decode()
    assert "Give the full IRB number." in page
    assert "Resubmit" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("onboarding-edit", args=[obj.pk]),
            form_data(instance, irb_protocol="IRB-2026-0001-A"),
        )
    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED
    assert obj.irb_protocol == "IRB-2026-0001-A"
    assert "Resubmitted" in mail.outbox[-1].subject
    assert AuditEvent.objects.filter(action="onboarding_request.resubmitted").exists()


# --- Bad input: a specific message, and nothing written -----------------------------------------
def assert_nothing_written(before_audit: int) -> None:
    assert OnboardingRequest.objects.count() == 0
    assert AuditEvent.objects.count() == before_audit
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("redcap_instance", "Choose the REDCap server that hosts the project."),
        ("redcap_project_id", "Enter the REDCap project id (the PID)."),
        ("project_title", "Give the project a title."),
        ("pi_name", "Enter the PI's name."),
        ("pi_email", "Enter the PI's e-mail address."),
        ("irb_protocol", "Enter the IRB protocol number."),
        ("irb_status", "Say whether the IRB has approved texting."),
        ("summary", "Write a short study summary."),
        ("expected_participants", "Enter a whole number greater than zero."),
        ("expected_messages_per_month", "Enter a whole number greater than zero."),
        ("message_kinds", "Choose at least one kind of message."),
        ("new_account_name", "Give the new account a name."),
        ("new_account_plan", "Choose a plan for the new account."),
        ("attest_no_phi", "Tick this box to submit"),
        ("attest_consent", "Tick this box to submit"),
    ],
)
def test_submitting_without_a_field_names_it(as_user, researcher, instance, field, message):
    before = AuditEvent.objects.count()
    response = as_user(researcher).post(
        reverse("onboarding-create"), form_data(instance, **{field: None})
    )
    assert response.status_code == 200
    assert message in " ".join(errors_of(response)[field])
    assert message.replace("'", "&#x27;") in response.content.decode()
    assert_nothing_written(before)


def test_submitting_with_an_existing_account_choice_but_no_account_names_it(
    as_user, researcher, instance
):
    response = as_user(researcher).post(
        reverse("onboarding-create"), form_data(instance, account_choice="existing")
    )
    assert errors_of(response)["billing_account"] == ["Choose the account to bill."]
    assert OnboardingRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("pi_email", "not-an-email", "Enter a valid email address."),
        ("expected_participants", "many", "Enter a whole number."),
        ("expected_participants", "0", "greater than zero"),
        ("expected_messages_per_month", "-5", "greater than zero"),
        ("irb_status", "maybe", "Select a valid choice."),
        ("message_kinds", ["invitation", "spam"], "Select a valid choice."),
        ("new_account_plan", "999999", "Choose one of the plans on the list."),
        ("new_account_time_zone", "Mars/Olympus", "Select a valid choice."),
        ("project_title", "x" * 201, "at most 200 characters"),
    ],
)
def test_a_malformed_field_gets_a_specific_message(
    as_user, researcher, instance, field, value, message
):
    before = AuditEvent.objects.count()
    response = as_user(researcher).post(
        reverse("onboarding-create"), form_data(instance, **{field: value})
    )
    assert response.status_code == 200
    assert message in " ".join(errors_of(response)[field])
    assert_nothing_written(before)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "1e3", "", " "])
@pytest.mark.parametrize("submit", [True, False])
def test_a_redcap_project_id_must_be_a_positive_whole_number(
    as_user, researcher, instance, value, submit
):
    before = AuditEvent.objects.count()
    data = form_data(instance, redcap_project_id=value)
    if not submit:
        data.pop("submit")
        data["save"] = "1"
    response = as_user(researcher).post(reverse("onboarding-create"), data)
    assert response.status_code == 200
    expected = (
        "Enter the REDCap project id (the PID)."
        if not value
        else "The REDCap project id is a whole number greater than zero, such as 1234."
    )
    assert errors_of(response)["redcap_project_id"] == [expected]
    assert expected in response.content.decode()
    assert_nothing_written(before)


@pytest.mark.parametrize("tamper", ["inactive", "missing", "not-a-number"])
def test_an_instance_that_is_not_on_the_list_is_refused(as_user, researcher, tamper):
    inactive = RedcapInstanceFactory(name="Retired REDCap", is_active=False)
    value = {"inactive": str(inactive.pk), "missing": "987654", "not-a-number": "x"}[tamper]
    before = AuditEvent.objects.count()
    response = as_user(researcher).post(
        reverse("onboarding-create"), form_data(inactive, redcap_instance=value)
    )
    assert response.status_code == 200
    assert errors_of(response)["redcap_instance"] == [
        "That REDCap server is not on the list the administrators keep. Choose one from the list."
    ]
    assert_nothing_written(before)


def test_an_inactive_instance_is_not_offered(as_user, researcher, instance):
    RedcapInstanceFactory(name="Retired REDCap", is_active=False)
    page = as_user(researcher).get(reverse("onboarding-create")).content.decode()
    assert instance.name in page
    assert "Retired REDCap" not in page


def test_a_tampered_billing_account_is_refused(as_user, researcher, other_researcher, instance):
    foreign = AccountFactory(owners=[other_researcher])
    before = AuditEvent.objects.count()
    response = as_user(researcher).post(
        reverse("onboarding-create"),
        form_data(instance, account_choice="existing", billing_account=str(foreign.pk)),
    )
    assert errors_of(response)["billing_account"] == [
        "You can only bill a project to an account you belong to."
    ]
    assert_nothing_written(before)


def test_a_second_open_request_for_the_same_redcap_project_is_refused(
    as_user, researcher, other_researcher, instance
):
    first = OnboardingRequestFactory(
        requester=other_researcher, redcap_instance=instance, redcap_project_id=4242
    )
    before = AuditEvent.objects.count()
    response = as_user(researcher).post(reverse("onboarding-create"), form_data(instance))
    assert response.status_code == 200
    message = errors_of(response)["redcap_project_id"][0]
    assert message == (
        "There is already an open request for REDCap project 4242 on University REDCap, filed "
        "by another researcher. Ask them, or the administrators, to add you to the project once "
        "it is approved."
    )
    assert other_researcher.email not in response.content.decode()
    assert list(OnboardingRequest.objects.all()) == [first]
    assert AuditEvent.objects.count() == before


def test_a_researchers_own_open_request_is_pointed_to(as_user, researcher, instance):
    draft = OnboardingRequestFactory(
        requester=researcher, redcap_instance=instance, redcap_project_id=4242, status=Status.DRAFT
    )
    response = as_user(researcher).post(reverse("onboarding-create"), form_data(instance))
    assert errors_of(response)["redcap_project_id"] == [
        f"There is already an open request for REDCap project 4242 on University REDCap: your "
        f"request #{draft.pk}. Continue that one instead of filing a second."
    ]
    assert OnboardingRequest.objects.count() == 1


def test_the_same_project_id_on_another_instance_is_fine(as_user, researcher, instance):
    OnboardingRequestFactory(
        redcap_instance=RedcapInstanceFactory(name="Other REDCap"), redcap_project_id=4242
    )
    response = as_user(researcher).post(reverse("onboarding-create"), form_data(instance))
    assert response.status_code == 302


def test_submitting_a_draft_that_is_incomplete_sends_the_researcher_to_the_form(
    as_user, researcher
):
    obj = OnboardingRequestFactory(requester=researcher, status=Status.DRAFT, pi_name="")
    response = as_user(researcher).post(reverse("onboarding-submit", args=[obj.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("onboarding-edit", args=[obj.pk]) + "?check=1"
    assert "Enter the PI&#x27;s name." in response.content.decode()  # beside the field
    obj.refresh_from_db()
    assert obj.status == Status.DRAFT


def test_submitting_a_draft_whose_server_was_retired_says_so_and_writes_nothing(
    as_user, researcher, server_admin, django_capture_on_commit_callbacks
):
    instance = RedcapInstanceFactory(name="Old REDCap")
    obj = OnboardingRequestFactory(
        requester=researcher, redcap_instance=instance, status=Status.DRAFT, submitted_at=None
    )
    instance.is_active = False
    instance.save()
    before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(researcher).post(
            reverse("onboarding-submit", args=[obj.pk]), follow=True
        )
    assert response.redirect_chain[-1][0] == reverse("onboarding-edit", args=[obj.pk]) + "?check=1"
    assert (
        "This request is not ready to submit: The REDCap server “Old REDCap” is no longer offered "
        "by StudyText. Edit the request and choose another REDCap server"
        in response.content.decode()
    )
    obj.refresh_from_db()
    assert obj.status == Status.DRAFT
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []


def test_an_empty_comment_is_refused(as_user, researcher):
    obj = OnboardingRequestFactory(requester=researcher)
    before = AuditEvent.objects.count()
    response = as_user(researcher).post(
        reverse("onboarding-comment", args=[obj.pk]), {"body": "   "}, follow=True
    )
    assert response.context["comment_form"].errors["body"] == ["Write a comment before posting it."]
    assert "Write a comment before posting it." in response.content.decode()
    assert not OnboardingComment.objects.exists()
    assert AuditEvent.objects.count() == before


def test_a_comment_over_the_length_limit_says_so_and_keeps_the_text(
    as_user, researcher, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher)
    before = AuditEvent.objects.count()
    body = "Our IRB letter says " + "x" * 5000
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(researcher).post(
            reverse("onboarding-comment", args=[obj.pk]), {"body": body}, follow=True
        )
    page = response.content.decode()
    message = (
        f"A comment can be at most 5000 characters long; this one has {len(body)}. "
        "Shorten it, or post it as two comments."
    )
    assert message in page
    assert "Write a comment before posting it." not in page
    # The researcher's text is still in the box, to shorten rather than retype.
    assert body in page
    assert not OnboardingComment.objects.exists()
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []


def test_withdrawing_twice_says_it_is_already_withdrawn(as_user, researcher):
    obj = OnboardingRequestFactory(requester=researcher, status=Status.WITHDRAWN)
    response = as_user(researcher).post(reverse("onboarding-withdraw", args=[obj.pk]), follow=True)
    assert "This request is already withdrawn." in response.content.decode()


@pytest.mark.parametrize("action", ["detail", "edit", "submit", "withdraw", "comment"])
def test_a_researcher_acting_on_someone_elses_request_gets_404_and_nothing_changes(
    as_user, researcher, other_researcher, action
):
    obj = OnboardingRequestFactory(requester=other_researcher, status=Status.DRAFT)
    before = AuditEvent.objects.count()
    client = as_user(researcher)
    url = reverse(f"onboarding-{action}", args=[obj.pk])
    if action == "detail":
        response = client.get(url)
    elif action == "edit":
        response = client.post(url, form_data(obj.redcap_instance, project_title="Hijacked"))
    else:
        response = client.post(url, {"body": "Hello"})
    assert response.status_code == 404
    # The same page as for a request that does not exist: it neither confirms nor names it.
    page = response.content.decode()
    assert "This page does not exist, or it belongs to a project or request you cannot see." in page
    assert obj.project_title not in page
    obj.refresh_from_db()
    assert obj.status == Status.DRAFT
    assert obj.project_title != "Hijacked"
    assert not OnboardingComment.objects.exists()
    assert AuditEvent.objects.count() == before


def test_a_missing_request_is_404(as_user, researcher, server_admin):
    for user in (researcher, server_admin):
        response = as_user(user).get(reverse("onboarding-detail", args=[99999]))
        assert response.status_code == 404
        assert "or it belongs to a project or request you cannot see." in response.content.decode()


# --- Deciding -------------------------------------------------------------------------------
def test_an_administrator_approves_and_the_project_exists(
    as_user, researcher, server_admin, instance, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher, redcap_instance=instance)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(server_admin).post(
            reverse("onboarding-decide", args=[obj.pk]),
            {"decision": "approve", "note": "Welcome."},
            follow=True,
        )
    project = Project.objects.get()
    assert f"Approved. Project “{project.title}” is created." in response.content.decode()
    assert Membership.objects.get(project=project).user == researcher
    assert [m.to for m in mail.outbox] == [[researcher.email]]
    # The researcher sees the approval and a link to the project.
    page = as_user(researcher).get(reverse("onboarding-detail", args=[obj.pk])).content.decode()
    assert reverse("project-detail", args=[project.pk]) in page
    assert "Welcome." in page


@pytest.mark.parametrize(
    ("decision", "status", "message"),
    [
        ("reject", Status.REJECTED, "Rejected. The researcher has been told."),
        (
            "request_changes",
            Status.CHANGES_REQUESTED,
            "Sent back for changes. The researcher has been told.",
        ),
    ],
)
def test_reject_and_ask_for_changes_show_the_note_to_the_researcher(
    as_user, researcher, server_admin, decision, status, message, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(server_admin).post(
            reverse("onboarding-decide", args=[obj.pk]),
            {"decision": decision, "note": "Say who texts the participants."},
            follow=True,
        )
    assert message in response.content.decode()
    obj.refresh_from_db()
    assert obj.status == status
    # "The researcher has been told": by e-mail, with the note.
    assert [m.to for m in mail.outbox] == [[researcher.email]]
    assert mail.outbox[0].subject.endswith(f": {obj.get_status_display().lower()}")
    assert "Say who texts the participants." in mail.outbox[0].body
    page = as_user(researcher).get(reverse("onboarding-detail", args=[obj.pk])).content.decode()
    assert "Say who texts the participants." in page


@pytest.mark.parametrize("decision", ["reject", "request_changes"])
def test_reject_and_ask_for_changes_need_a_note(as_user, server_admin, decision):
    obj = OnboardingRequestFactory()
    response = as_user(server_admin).post(
        reverse("onboarding-decide", args=[obj.pk]), {"decision": decision, "note": ""}, follow=True
    )
    page = response.content.decode()
    assert "Tell the researcher" in page
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED


def test_the_decision_form_says_when_the_note_is_required(as_user, server_admin):
    obj = OnboardingRequestFactory()
    page = as_user(server_admin).get(reverse("onboarding-detail", args=[obj.pk])).content.decode()
    form = page[page.index('id="decision-form"') : page.index("Record decision")]
    start = form.index('<label for="id_note">')
    label = form[start : form.index("</label>", start)]
    assert "(required to ask for changes or to reject)" in label
    assert "(optional)" not in form
    assert "You may leave it empty when you approve." in form


def test_a_decision_must_be_one_of_the_three(as_user, server_admin):
    obj = OnboardingRequestFactory()
    response = as_user(server_admin).post(
        reverse("onboarding-decide", args=[obj.pk]), {"decision": "delete"}, follow=True
    )
    assert "Choose approve, ask for changes or reject." in response.content.decode()
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (Status.APPROVED, "already approved"),
        (Status.REJECTED, "already rejected"),
        (Status.WITHDRAWN, "withdrawn"),
        (Status.CHANGES_REQUESTED, "waiting for the researcher&#x27;s changes"),
        (Status.DRAFT, "still a draft"),
    ],
)
def test_approving_an_already_decided_request_is_refused_and_creates_nothing(
    as_user, server_admin, status, words
):
    obj = OnboardingRequestFactory(status=status)
    before = AuditEvent.objects.count()
    response = as_user(server_admin).post(
        reverse("onboarding-decide", args=[obj.pk]), {"decision": "approve"}, follow=True
    )
    assert (
        f"This request is {words}; only a submitted request can be decided."
        in response.content.decode()
    )
    obj.refresh_from_db()
    assert obj.status == status
    assert not Project.objects.exists()
    assert not Account.objects.exists()
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []


def test_approval_is_refused_when_the_plan_has_no_slot_and_nothing_is_created(
    as_user, researcher, server_admin
):
    tiny = PlanFactory(name="Tiny", project_limit=1)
    account = AccountFactory(owners=[researcher], plan=tiny, name="Sleep Lab")
    ProjectFactory(account=account)
    obj = OnboardingRequestFactory(
        requester=researcher, billing_account=account, new_account_plan=None
    )
    before = AuditEvent.objects.count()
    response = as_user(server_admin).post(
        reverse("onboarding-decide", args=[obj.pk]), {"decision": "approve"}, follow=True
    )
    assert (
        "The account “Sleep Lab” is on the Tiny plan, which allows 1 active project, and it "
        "already has 1." in response.content.decode()
    )
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED
    assert Project.objects.count() == 1
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []


def test_approving_a_request_whose_server_was_retired_says_so_and_creates_nothing(
    as_user, researcher, server_admin, django_capture_on_commit_callbacks
):
    instance = RedcapInstanceFactory(name="Old REDCap")
    obj = OnboardingRequestFactory(requester=researcher, redcap_instance=instance)
    instance.is_active = False
    instance.save()
    before = AuditEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(server_admin).post(
            reverse("onboarding-decide", args=[obj.pk]), {"decision": "approve"}, follow=True
        )
    assert (
        "The REDCap server “Old REDCap” is no longer active, so no project can be created on it."
        in response.content.decode()
    )
    obj.refresh_from_db()
    assert obj.status == Status.SUBMITTED
    assert not Project.objects.exists()
    assert not Account.objects.exists()
    assert AuditEvent.objects.count() == before
    assert mail.outbox == []


def test_the_decision_form_is_shown_only_while_a_request_awaits_a_decision(as_user, server_admin):
    waiting = OnboardingRequestFactory()
    decided = OnboardingRequestFactory(status=Status.REJECTED, decision_note="No.")
    client = as_user(server_admin)

    def page(obj):
        return client.get(reverse("onboarding-detail", args=[obj.pk])).content.decode()

    assert "decision-form" in page(waiting)
    assert "decision-form" not in page(decided)


# --- Comments both ways, and the history on the request's page ----------------------------------
def test_comments_go_both_ways_on_the_request_page(
    as_user, researcher, server_admin, django_capture_on_commit_callbacks
):
    obj = OnboardingRequestFactory(requester=researcher)
    url = reverse("onboarding-comment", args=[obj.pk])
    with django_capture_on_commit_callbacks(execute=True):
        as_user(server_admin).post(url, {"body": "Which IRB approved this?"})
    with django_capture_on_commit_callbacks(execute=True):
        as_user(researcher).post(url, {"body": "The university IRB."})
    assert [m.to for m in mail.outbox] == [[researcher.email], [server_admin.email]]
    for user in (researcher, server_admin):
        page = as_user(user).get(reverse("onboarding-detail", args=[obj.pk])).content.decode()
        assert page.index("Which IRB approved this?") < page.index("The university IRB.")
        assert "Alex Admin (administrator)" in page


def test_the_request_page_shows_its_history(as_user, researcher, server_admin, instance):
    client = as_user(researcher)
    client.post(reverse("onboarding-create"), form_data(instance))
    obj = OnboardingRequest.objects.get()
    as_user(server_admin).post(
        reverse("onboarding-decide", args=[obj.pk]),
        {"decision": "request_changes", "note": "Add the IRB letter."},
    )
    page = as_user(researcher).get(reverse("onboarding-detail", args=[obj.pk])).content.decode()
    assert "Request submitted." in page
    assert "Changes requested. Note: Add the IRB letter." in page


# --- The review queue -----------------------------------------------------------------------
def _queue_ids(response) -> list[int]:
    return [r.pk for r in response.context["page"].object_list]


def test_the_queue_lists_submitted_requests_oldest_first(as_user, server_admin):
    now = timezone.now()
    newer = OnboardingRequestFactory(submitted_at=now - datetime.timedelta(hours=1))
    older = OnboardingRequestFactory(submitted_at=now - datetime.timedelta(days=3))
    middle = OnboardingRequestFactory(submitted_at=now - datetime.timedelta(days=1))
    OnboardingRequestFactory(status=Status.DRAFT, submitted_at=None)
    OnboardingRequestFactory(status=Status.APPROVED)
    response = as_user(server_admin).get(reverse("onboarding-queue"))
    assert _queue_ids(response) == [older.pk, middle.pk, newer.pk]


def test_the_queue_filters_by_status(as_user, server_admin):
    sent_back = OnboardingRequestFactory(status=Status.CHANGES_REQUESTED)
    OnboardingRequestFactory()
    draft = OnboardingRequestFactory(status=Status.DRAFT, submitted_at=None)
    client = as_user(server_admin)
    response = client.get(reverse("onboarding-queue"), {"status": "changes_requested"})
    assert _queue_ids(response) == [sent_back.pk]
    everything = _queue_ids(client.get(reverse("onboarding-queue"), {"status": "all"}))
    assert len(everything) == 2
    assert draft.pk not in everything
    # Drafts are private to the researcher; an unknown status falls back to the default.
    assert draft.pk not in _queue_ids(client.get(reverse("onboarding-queue"), {"status": "draft"}))
    assert len(_queue_ids(client.get(reverse("onboarding-queue"), {"status": "bogus"}))) == 1


def test_the_queue_filters_by_instance(as_user, server_admin):
    a = RedcapInstanceFactory(name="REDCap A")
    b = RedcapInstanceFactory(name="REDCap B")
    on_a = OnboardingRequestFactory(redcap_instance=a)
    OnboardingRequestFactory(redcap_instance=b)
    client = as_user(server_admin)
    assert _queue_ids(client.get(reverse("onboarding-queue"), {"instance": a.pk})) == [on_a.pk]
    assert len(_queue_ids(client.get(reverse("onboarding-queue"), {"instance": "x"}))) == 2


@pytest.mark.parametrize("term", ["sleep", "Lovelace", "irb-9999", "riley@", "4242"])
def test_the_queue_searches_title_pi_irb_email_and_pid(as_user, server_admin, researcher, term):
    match = OnboardingRequestFactory(
        requester=researcher,
        project_title="Sleep and Mood",
        pi_name="Dr. Ada Lovelace",
        irb_protocol="IRB-9999",
        redcap_project_id=4242,
    )
    OnboardingRequestFactory(
        requester=UserFactory(email="someone@uni.test"),
        project_title="Other",
        pi_name="Dr. Grace Hopper",
        irb_protocol="IRB-0001",
        redcap_project_id=1,
    )
    response = as_user(server_admin).get(reverse("onboarding-queue"), {"q": term})
    assert _queue_ids(response) == [match.pk]


def test_an_empty_queue_says_so(as_user, server_admin):
    page = as_user(server_admin).get(reverse("onboarding-queue")).content.decode()
    assert "No request is waiting for a decision." in page


# --- Query counts do not grow with the data -------------------------------------------------------
def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_the_queue_costs_the_same_with_5_or_100_requests(
    as_user, server_admin, django_assert_max_num_queries
):
    client = as_user(server_admin)
    url = reverse("onboarding-queue") + "?status=all"
    OnboardingRequestFactory.create_batch(5)
    small = _queries(client, url)
    OnboardingRequestFactory.create_batch(95)
    with django_assert_max_num_queries(small):
        assert client.get(url).status_code == 200


def test_the_request_page_costs_the_same_with_many_comments_and_events(
    as_user, researcher, server_admin, django_assert_max_num_queries
):
    from portal.services import onboarding

    obj = OnboardingRequestFactory(requester=researcher)
    client = as_user(researcher)
    url = reverse("onboarding-detail", args=[obj.pk])

    def comment(n):
        for i in range(n):
            author = server_admin if i % 2 else researcher
            onboarding.onboarding_comment_create(
                onboarding_request=obj, author=author, body=f"Comment {i}"
            )

    comment(5)
    small = _queries(client, url)
    comment(95)
    with django_assert_max_num_queries(small):
        assert client.get(url).status_code == 200
