"""The append-only audit log: who did what and when, shown on the request and to administrators."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.audit import audit_record
from portal.models import AuditEvent
from portal.services import onboarding
from tests.factories import OnboardingRequestFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def personas(researcher, other_researcher, server_admin):
    return {"researcher": researcher, "other": other_researcher, "admin": server_admin}


@pytest.mark.parametrize(
    ("who", "expected"), [("researcher", 403), ("other", 403), ("admin", 200), ("anonymous", None)]
)
def test_only_administrators_read_the_audit_log(as_user, personas, who, expected):
    url = reverse("audit-log")
    response = as_user(personas.get(who)).get(url)
    if expected is None:
        assert response.status_code == 302
        assert response.url == f"{reverse('login')}?next={url}"
    else:
        assert response.status_code == expected


def test_the_audit_log_shows_who_did_what(as_user, researcher, server_admin):
    obj = OnboardingRequestFactory(requester=researcher, project_title="Sleep and Mood")
    onboarding.onboarding_request_request_changes(
        onboarding_request=obj, actor=server_admin, note="Add the IRB number."
    )
    page = as_user(server_admin).get(reverse("audit-log")).content.decode()
    assert "onboarding_request.changes_requested" in page
    assert "Changes requested. Note: Add the IRB number." in page
    assert "Alex Admin" in page
    assert f"onboardingrequest #{obj.pk}" in page
    assert "Sleep and Mood" in page


def test_the_audit_log_filters_by_action_project_and_actor(
    as_user, researcher, other_researcher, server_admin
):
    project = ProjectFactory(title="Heart Health")
    other_project = ProjectFactory(title="Lung Study")
    audit_record(actor=researcher, action="project.paused", obj=project, message="Paused A.")
    audit_record(actor=other_researcher, action="project.paused", obj=other_project, message="B.")
    audit_record(actor=researcher, action="account.created", obj=project.account, message="C.")
    client = as_user(server_admin)

    def messages(**params):
        response = client.get(reverse("audit-log"), params)
        return sorted(e.message for e in response.context["page"].object_list)

    assert messages(action="project.") == ["B.", "Paused A."]
    assert messages(project=project.pk) == ["Paused A."]
    assert messages(actor="riley@") == ["C.", "Paused A."]
    assert messages(action="project", actor="olive") == ["B."]
    assert messages(action="nothing.like.this") == []
    # A non-numeric project filter is ignored rather than an error.
    assert len(messages(project="abc")) == AuditEvent.objects.count() >= 3


def test_an_empty_result_says_so(as_user, server_admin):
    response = as_user(server_admin).get(reverse("audit-log"), {"action": "nothing"})
    assert "Nothing matches" in response.content.decode()


def test_the_audit_log_costs_the_same_with_5_or_100_events(
    as_user, researcher, server_admin, django_assert_max_num_queries
):
    client = as_user(server_admin)
    project = ProjectFactory()

    def add(n):
        for i in range(n):
            audit_record(actor=researcher, action="project.edited", obj=project, message=f"{i}")

    add(5)
    with CaptureQueriesContext(connection) as ctx:
        client.get(reverse("audit-log"))
    add(95)
    with django_assert_max_num_queries(len(ctx.captured_queries)):
        response = client.get(reverse("audit-log"))
    assert len(response.context["page"].object_list) == 100


def test_the_request_page_shows_the_requests_audit_trail(as_user, researcher, server_admin):
    obj = OnboardingRequestFactory(requester=researcher)
    onboarding.onboarding_comment_create(onboarding_request=obj, author=researcher, body="Hi")
    onboarding.onboarding_request_reject(
        onboarding_request=obj, actor=server_admin, note="Out of scope."
    )
    other = OnboardingRequestFactory(requester=researcher)
    onboarding.onboarding_request_withdraw(onboarding_request=other, actor=researcher)

    response = as_user(researcher).get(reverse("onboarding-detail", args=[obj.pk]))
    events = [e.message for e in response.context["events"]]
    assert events == ["Rejected. Note: Out of scope.", "Comment added."]
    page = response.content.decode()
    assert "Rejected. Note: Out of scope." in page
    assert "Request withdrawn by the researcher." not in page


# --- Append-only ----------------------------------------------------------------------------------
@pytest.fixture
def event(researcher):
    return audit_record(
        actor=researcher, action="user.signed_up", obj=researcher, message="Signed up."
    )


def test_an_audit_event_cannot_be_saved_again(event):
    event.message = "Rewritten history."
    with pytest.raises(PermissionError, match="append-only"):
        event.save()
    event.refresh_from_db()
    assert event.message == "Signed up."


def test_an_audit_event_cannot_be_deleted(event):
    with pytest.raises(PermissionError, match="append-only"):
        event.delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_audit_queryset_refuses_update_and_delete(event):
    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.filter(pk=event.pk).update(message="Rewritten.")
    with pytest.raises(PermissionError, match="append-only"):
        AuditEvent.objects.all().delete()
    # bulk_update goes through QuerySet.update (inside its own atomic block, hence ours).
    with pytest.raises(PermissionError, match="append-only"), transaction.atomic():
        AuditEvent.objects.bulk_update([event], ["message"])
    assert AuditEvent.objects.get(pk=event.pk).message == "Signed up."


def test_the_database_refuses_a_raw_update(event):
    # SQLite: a BEFORE UPDATE trigger. PostgreSQL: a BEFORE UPDATE OR DELETE trigger.
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE portal_auditevent SET message = %s WHERE id = %s", ["Rewritten.", event.pk]
        )
    assert AuditEvent.objects.get(pk=event.pk).message == "Signed up."


def _audit_triggers() -> list[str]:
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' "
                "AND tbl_name = 'portal_auditevent' ORDER BY name"
            )
        else:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'portal_auditevent'::regclass "
                "AND NOT tgisinternal ORDER BY tgname"
            )
        return [row[0] for row in cursor.fetchall()]


def test_a_raw_delete_is_refused_by_postgresql_and_by_the_model_on_sqlite(event):
    """PostgreSQL refuses a raw DELETE in a trigger. SQLite has no TRUNCATE, so the test runner
    and `flush` empty tables with DELETE: a DELETE trigger there would break them, and the
    model and its queryset refuse deletes instead. Each vendor is held to what it promises."""
    if connection.vendor == "postgresql":
        assert _audit_triggers() == ["portal_auditevent_append_only"]
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM portal_auditevent WHERE id = %s", [event.pk])
    else:
        assert connection.vendor == "sqlite", f"no append-only guard for {connection.vendor}"
        assert _audit_triggers() == ["portal_auditevent_no_update"]
        with pytest.raises(PermissionError, match="append-only"):
            event.delete()
        with pytest.raises(PermissionError, match="append-only"):
            AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_every_onboarding_transition_is_audited(researcher, server_admin, instance):
    from tests.portal.test_onboarding_services import request_data

    obj = onboarding.onboarding_request_create(
        requester=researcher, data=request_data(instance, pi_name="")
    )
    onboarding.onboarding_request_update(
        onboarding_request=obj, actor=researcher, data={"pi_name": "Dr. Ada"}
    )
    onboarding.onboarding_request_submit(onboarding_request=obj, actor=researcher)
    onboarding.onboarding_request_request_changes(
        onboarding_request=obj, actor=server_admin, note="More detail."
    )
    onboarding.onboarding_comment_create(onboarding_request=obj, author=researcher, body="Done.")
    onboarding.onboarding_request_submit(onboarding_request=obj, actor=researcher)
    onboarding.onboarding_request_approve(onboarding_request=obj, actor=server_admin)
    trail = list(
        AuditEvent.objects.filter(object_type="onboardingrequest", object_id=str(obj.pk))
        .order_by("id")
        .values_list("action", "actor__email")
    )
    assert trail == [
        ("onboarding_request.drafted", researcher.email),
        ("onboarding_request.edited", researcher.email),
        ("onboarding_request.submitted", researcher.email),
        ("onboarding_request.changes_requested", server_admin.email),
        ("onboarding_request.commented", researcher.email),
        ("onboarding_request.resubmitted", researcher.email),
        ("onboarding_request.approved", server_admin.email),
    ]


def test_rejecting_and_withdrawing_are_audited(researcher, server_admin):
    rejected = OnboardingRequestFactory(requester=researcher)
    onboarding.onboarding_request_reject(
        onboarding_request=rejected, actor=server_admin, note="Texting is not in the protocol."
    )
    withdrawn = OnboardingRequestFactory(requester=researcher)
    onboarding.onboarding_request_withdraw(onboarding_request=withdrawn, actor=researcher)

    def trail(obj):
        return list(
            AuditEvent.objects.filter(object_type="onboardingrequest", object_id=str(obj.pk))
            .order_by("id")
            .values_list("action", "actor__email", "message")
        )

    assert trail(rejected) == [
        (
            "onboarding_request.rejected",
            server_admin.email,
            "Rejected. Note: Texting is not in the protocol.",
        )
    ]
    assert trail(withdrawn) == [
        ("onboarding_request.withdrawn", researcher.email, "Request withdrawn by the researcher.")
    ]
