"""Roles and the Django admin site: administrators reach every model, researchers do not."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import (
    SERVER_ADMIN_GROUP,
    AuditEvent,
    OnboardingComment,
    OnboardingRequest,
    User,
)
from portal.services import onboarding
from portal.services.profile import api_token_create
from tests.factories import (
    MembershipFactory,
    OnboardingRequestFactory,
    ServerAdminFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

OUR_APPS = ["portal", "billing", "projects", "messaging"]


@pytest.fixture
def some_of_everything(researcher, server_admin):
    """At least one row of every model, so change lists and change pages render real data."""
    obj = OnboardingRequestFactory(requester=researcher)
    onboarding.onboarding_comment_create(onboarding_request=obj, author=researcher, body="Hi")
    project = onboarding.onboarding_request_approve(onboarding_request=obj, actor=server_admin)
    MembershipFactory(project=project)
    key = api_token_create(user=researcher)
    return {"project": project, "key": key}


def _admin_url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def test_every_model_of_our_apps_is_in_the_admin_site():
    missing = [
        f"{model._meta.label}"
        for label in OUR_APPS
        for model in apps.get_app_config(label).get_models()
        if model not in admin.site._registry
    ]
    assert missing == []


def test_an_administrator_reaches_the_admin_site(as_user, server_admin):
    response = as_user(server_admin).get(reverse("admin:index"))
    assert response.status_code == 200
    page = response.content.decode()
    for label in ("portal", "billing", "projects"):
        assert f'href="/admin/{label}/"' in page


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label_lower)
def test_an_administrator_opens_every_registered_model(
    as_user, server_admin, some_of_everything, model
):
    client = as_user(server_admin)
    model_admin = admin.site._registry[model]
    response = client.get(_admin_url(model, "changelist"))
    assert response.status_code == 200, model._meta.label
    # An add page wherever adding is allowed.
    request = response.wsgi_request
    if model_admin.has_add_permission(request):
        assert client.get(_admin_url(model, "add")).status_code == 200, model._meta.label
    # And the change page of an existing row.
    row = model._default_manager.order_by("pk").first()
    if row is not None:
        assert client.get(_admin_url(model, "change", row.pk)).status_code == 200


@pytest.mark.parametrize("who", ["researcher", "anonymous"])
def test_researchers_and_visitors_are_sent_away_from_the_admin(as_user, researcher, who):
    client = as_user(researcher if who == "researcher" else None)
    for url in (reverse("admin:index"), reverse("admin:portal_user_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))


def test_a_researcher_who_somehow_has_is_staff_still_cannot_change_anything(as_user):
    staff_only = UserFactory(is_staff=True)
    client = as_user(staff_only)
    for name in ("admin:portal_user_changelist", "admin:projects_project_changelist"):
        assert client.get(reverse(name)).status_code in (302, 403)


def test_the_admin_link_is_shown_to_administrators_only(as_user, researcher, server_admin):
    assert reverse("admin:index") not in as_user(researcher).get("/").content.decode()
    assert reverse("admin:index") in as_user(server_admin).get("/").content.decode()


# --- Granting and revoking the role ---------------------------------------------------------------
def _run_action(client, action, users):
    return client.post(
        reverse("admin:portal_user_changelist"),
        {"action": action, "_selected_action": [u.pk for u in users]},
        follow=True,
    )


def test_the_grant_action_makes_an_administrator_and_is_audited(as_user, researcher, server_admin):
    _run_action(as_user(server_admin), "grant_server_admin", [researcher])
    researcher = User.objects.get(pk=researcher.pk)
    assert researcher.is_server_admin
    assert researcher.is_staff
    assert researcher.groups.filter(name=SERVER_ADMIN_GROUP).exists()
    event = AuditEvent.objects.get(action="user.admin_granted", object_id=str(researcher.pk))
    assert event.actor == server_admin
    # The new administrator sets up a second factor before anything else ...
    client = as_user(researcher)
    response = client.get(reverse("admin:index"))
    assert response.url.startswith(reverse("two-factor-setup"))
    # ... then reaches the admin site and the review queue.
    TOTPDevice.objects.create(user=researcher, confirmed=True)
    client = as_user(researcher)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("onboarding-queue")).status_code == 200


def test_the_revoke_action_removes_the_role_and_is_audited(as_user, server_admin):
    colleague = ServerAdminFactory(email="colleague@uni.test")
    _run_action(as_user(server_admin), "revoke_server_admin", [colleague])
    colleague = User.objects.get(pk=colleague.pk)
    assert not colleague.is_server_admin
    assert not colleague.is_staff
    event = AuditEvent.objects.get(action="user.admin_revoked")
    assert (event.actor, event.object_id) == (server_admin, str(colleague.pk))
    client = as_user(colleague)
    assert client.get(reverse("admin:index")).status_code == 302
    assert client.get(reverse("onboarding-queue")).status_code == 403


def test_an_administrator_cannot_revoke_their_own_role(as_user, server_admin):
    response = _run_action(as_user(server_admin), "revoke_server_admin", [server_admin])
    assert "You cannot remove your own administrator role." in response.content.decode()
    assert User.objects.get(pk=server_admin.pk).is_server_admin
    assert not AuditEvent.objects.filter(action="user.admin_revoked").exists()


def test_grant_admin_command_grants_and_revokes_and_is_audited(capsys):
    user = UserFactory(email="first@uni.test", email_verified=False)
    call_command("grant_admin", "FIRST@uni.test")
    assert "Server-administrator role granted to first@uni.test." in capsys.readouterr().out
    user = User.objects.get(pk=user.pk)
    assert user.is_server_admin
    assert user.is_staff
    assert user.email_verified
    event = AuditEvent.objects.get(action="user.admin_granted", object_id=str(user.pk))
    assert event.actor is None

    call_command("grant_admin", "first@uni.test", "--revoke")
    assert "removed from first@uni.test" in capsys.readouterr().out
    assert not User.objects.get(pk=user.pk).is_server_admin
    assert AuditEvent.objects.filter(action="user.admin_revoked", actor=None).exists()


def test_grant_admin_command_names_an_unknown_address():
    with pytest.raises(CommandError, match="No account uses nobody@uni.test. Sign up first"):
        call_command("grant_admin", "nobody@uni.test")
    assert not Group.objects.get(name=SERVER_ADMIN_GROUP).user_set.exists()


def test_an_administrator_adds_a_user_in_the_admin(as_user, server_admin):
    response = as_user(server_admin).post(
        reverse("admin:portal_user_add"),
        {
            "email": "New.Person@Uni.test",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(email="new.person@uni.test")
    assert user.check_password("a long enough passphrase")


def test_the_admin_refuses_a_second_account_for_the_same_address_in_another_case(
    as_user, server_admin, researcher
):
    response = as_user(server_admin).post(
        reverse("admin:portal_user_add"),
        {
            "email": "RILEY@uni.test",
            "password1": "a long enough passphrase",
            "password2": "a long enough passphrase",
            "usable_password": "true",
        },
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    assert User.objects.filter(email__iexact="riley@uni.test").count() == 1


# --- The role is never edited on the user form ---------------------------------------------------
def _user_form_data(user, **changes):
    """What the admin's user change form posts for `user`, with `changes` applied."""
    joined = user.date_joined
    data = {
        "email": user.email,
        "full_name": user.full_name,
        "time_zone": user.time_zone,
        "email_verified": "on" if user.email_verified else "",
        "is_active": "on" if user.is_active else "",
        "date_joined_0": joined.strftime("%Y-%m-%d"),
        "date_joined_1": joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


def _admin_group():
    return Group.objects.get_or_create(name=SERVER_ADMIN_GROUP)[0]


@pytest.mark.parametrize(
    "smuggled",
    [
        {"groups": "GROUP"},
        {"is_superuser": "on"},
        {"is_staff": "on"},
        {"user_permissions": "PERM"},
    ],
)
def test_role_fields_posted_to_the_user_form_change_nothing(
    as_user, researcher, server_admin, smuggled
):
    from django.contrib.auth.models import Permission

    values = {
        "GROUP": _admin_group().pk,
        "PERM": Permission.objects.get(codename="add_schedule").pk,
    }
    smuggled = {k: values.get(v, v) for k, v in smuggled.items()}
    response = as_user(server_admin).post(
        reverse("admin:portal_user_change", args=[researcher.pk]),
        _user_form_data(researcher, full_name="Riley R.", **smuggled),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    researcher = User.objects.get(pk=researcher.pk)
    assert researcher.full_name == "Riley R."
    assert not researcher.is_server_admin
    assert not (researcher.is_staff or researcher.is_superuser)
    assert not researcher.user_permissions.exists()
    assert not AuditEvent.objects.filter(action="user.admin_granted", object_id=str(researcher.pk))


def test_the_user_form_shows_the_role_but_offers_no_role_boxes(as_user, researcher, server_admin):
    page = (
        as_user(server_admin)
        .get(reverse("admin:portal_user_change", args=[researcher.pk]))
        .content.decode()
    )
    assert "Researcher" in page
    for name in ("is_superuser", "is_staff", "groups", "user_permissions"):
        assert f'name="{name}"' not in page


def test_an_administrator_cannot_deactivate_their_own_account(as_user, server_admin):
    response = as_user(server_admin).post(
        reverse("admin:portal_user_change", args=[server_admin.pk]),
        _user_form_data(server_admin, is_active=""),
    )
    assert response.status_code == 200
    assert "You cannot deactivate your own account." in response.content.decode()
    assert User.objects.get(pk=server_admin.pk).is_active


def test_changes_from_the_groups_side_are_audited_and_keep_is_staff_in_step(
    researcher, other_researcher, server_admin
):
    from portal.services.accounts import server_admin_role_changed_by

    group = _admin_group()
    with server_admin_role_changed_by(server_admin):
        group.user_set.add(researcher, other_researcher)
    both = [researcher.pk, other_researcher.pk]
    assert User.objects.filter(pk__in=both, is_staff=True).count() == 2
    granted = AuditEvent.objects.filter(action="user.admin_granted", actor=server_admin)
    assert sorted(granted.values_list("object_id", flat=True)) == sorted(
        [str(researcher.pk), str(other_researcher.pk)]
    )

    with server_admin_role_changed_by(server_admin):
        group.user_set.remove(researcher)
    assert not User.objects.get(pk=researcher.pk).is_staff
    assert User.objects.get(pk=other_researcher.pk).is_staff
    group.user_set.clear()  # a shell, say: audited all the same, with no one named
    assert not User.objects.get(pk=other_researcher.pk).is_staff
    assert not User.objects.get(pk=server_admin.pk).is_staff
    revoked = AuditEvent.objects.filter(action="user.admin_revoked")
    assert sorted(revoked.values_list("object_id", "actor")) == sorted(
        [
            (str(researcher.pk), server_admin.pk),
            (str(other_researcher.pk), None),
            (str(server_admin.pk), None),
        ]
    )


def test_removing_a_non_member_or_changing_another_group_records_nothing(researcher):
    newsletter = Group.objects.create(name="Newsletter")
    researcher.groups.add(newsletter)
    researcher.groups.remove(_admin_group())
    _admin_group().user_set.remove(researcher)
    researcher.groups.clear()
    assert not AuditEvent.objects.filter(action__startswith="user.admin_").exists()


def test_a_superuser_removed_from_the_group_keeps_the_admin_site(db):
    boss = UserFactory(email="boss@uni.test", is_superuser=True, is_staff=True)
    boss.groups.add(_admin_group())
    boss.groups.remove(_admin_group())
    assert User.objects.get(pk=boss.pk).is_staff
    assert AuditEvent.objects.filter(action="user.admin_revoked", object_id=str(boss.pk)).exists()


def test_the_administrator_group_cannot_be_renamed_or_deleted_in_the_admin(as_user, server_admin):
    group = _admin_group()
    client = as_user(server_admin)
    response = client.post(
        reverse("admin:auth_group_change", args=[group.pk]), {"name": "Renamed", "permissions": []}
    )
    assert response.status_code == 403
    assert client.get(reverse("admin:auth_group_delete", args=[group.pk])).status_code == 403
    other = Group.objects.create(name="Newsletter")
    response = client.post(
        reverse("admin:auth_group_changelist"),
        {"action": "delete_selected", "_selected_action": [group.pk, other.pk], "post": "yes"},
    )
    assert response.status_code in (200, 403)  # no delete action is offered at all
    names = sorted(Group.objects.values_list("name", flat=True))
    assert names == ["Newsletter", SERVER_ADMIN_GROUP]
    assert User.objects.get(pk=server_admin.pk).is_server_admin


# --- No secret in full ----------------------------------------------------------------------------
def test_the_admin_shows_only_the_last_4_of_an_api_token(
    as_user, server_admin, researcher, some_of_everything
):
    key = some_of_everything["key"]
    token = researcher.api_token
    client = as_user(server_admin)
    pages = [
        client.get(reverse("admin:portal_apitoken_changelist")).content.decode(),
        client.get(reverse("admin:portal_apitoken_change", args=[token.pk])).content.decode(),
        client.get(reverse("admin:portal_user_change", args=[researcher.pk])).content.decode(),
    ]
    assert f"…{key[-4:]}" in pages[0]
    assert f"…{key[-4:]}" in pages[1]
    for page in pages:
        assert key not in page
        assert token.key_hash not in page


def test_the_admin_never_shows_a_password_hash(as_user, server_admin, researcher):
    page = (
        as_user(server_admin)
        .get(reverse("admin:portal_user_change", args=[researcher.pk]))
        .content.decode()
    )
    hashed = User.objects.get(pk=researcher.pk).password
    assert hashed.split("$")[-1] not in page
    assert not re.search(r"md5\$\w+\$\w{8,}", page)


def test_the_audit_log_is_read_only_in_the_admin(as_user, server_admin, some_of_everything):
    client = as_user(server_admin)
    event = AuditEvent.objects.order_by("pk").first()
    assert client.get(reverse("admin:portal_auditevent_add")).status_code == 403
    response = client.post(
        reverse("admin:portal_auditevent_change", args=[event.pk]), {"message": "Rewritten."}
    )
    assert response.status_code == 403
    delete_url = reverse("admin:portal_auditevent_delete", args=[event.pk])
    response = client.post(delete_url, {"post": "yes"})
    assert response.status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).message == event.message


# --- Onboarding requests and comments: view only --------------------------------------------------
def test_onboarding_requests_are_view_only_in_the_admin(
    as_user, server_admin, researcher, some_of_everything
):
    obj = OnboardingRequest.objects.get()
    onboarding.onboarding_comment_create(
        onboarding_request=obj, author=researcher, body="Which IRB approved this texting plan?"
    )
    before = (obj.project_title, obj.status, obj.decision_note, AuditEvent.objects.count())
    client = as_user(server_admin)
    # Visible: the list and each request, with its comments, as text rather than inputs.
    assert (
        obj.project_title
        in client.get(_admin_url(OnboardingRequest, "changelist")).content.decode()
    )
    page = client.get(_admin_url(OnboardingRequest, "change", obj.pk)).content.decode()
    assert obj.project_title in page
    assert "Which IRB approved this texting plan?" in page
    assert 'name="project_title"' not in page
    assert 'name="status"' not in page
    assert 'name="comments-0-body"' not in page
    # Not added, changed, or deleted (one by one or in bulk).
    assert client.get(_admin_url(OnboardingRequest, "add")).status_code == 403
    response = client.post(
        _admin_url(OnboardingRequest, "change", obj.pk),
        {"project_title": "Edited in the admin", "status": "draft", "decision_note": "Hmm"},
    )
    assert response.status_code == 403
    delete_url = _admin_url(OnboardingRequest, "delete", obj.pk)
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    response = client.post(
        _admin_url(OnboardingRequest, "changelist"),
        {"action": "delete_selected", "_selected_action": [obj.pk], "post": "yes"},
    )
    assert OnboardingRequest.objects.filter(pk=obj.pk).exists()
    obj.refresh_from_db()
    assert (obj.project_title, obj.status, obj.decision_note, AuditEvent.objects.count()) == before


def test_onboarding_comments_are_view_only_in_the_admin(
    as_user, server_admin, researcher, some_of_everything
):
    comment = onboarding.onboarding_comment_create(
        onboarding_request=OnboardingRequest.objects.get(),
        author=researcher,
        body="Which IRB approved this texting plan?",
    )
    client = as_user(server_admin)
    page = client.get(_admin_url(OnboardingComment, "change", comment.pk)).content.decode()
    assert "Which IRB approved this texting plan?" in page
    assert 'name="body"' not in page
    assert client.get(_admin_url(OnboardingComment, "add")).status_code == 403
    response = client.post(
        _admin_url(OnboardingComment, "change", comment.pk), {"body": "Rewritten."}
    )
    assert response.status_code == 403
    delete_url = _admin_url(OnboardingComment, "delete", comment.pk)
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    client.post(
        _admin_url(OnboardingComment, "changelist"),
        {"action": "delete_selected", "_selected_action": [comment.pk], "post": "yes"},
    )
    comment.refresh_from_db()
    assert comment.body == "Which IRB approved this texting plan?"
