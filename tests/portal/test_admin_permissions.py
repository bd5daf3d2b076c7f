"""What a server administrator may do in the admin site, model by model, from the registry.

The first test reproduces the security review's high-severity finding (it passed before the
allow-list, i.e. a schedule naming os.mkdir was created): an administrator must not be able to
make the workers run a function of their choosing."""

import pytest
from django.contrib import admin
from django.test import RequestFactory
from django.urls import reverse
from django_q.models import Schedule

from portal.admin_permissions import SERVER_ADMIN_PERMISSIONS
from tests.factories import ServerAdminFactory, UserFactory

pytestmark = pytest.mark.django_db

ACTIONS = ("view", "add", "change", "delete")
# Rows whose loss would break the no-duplicate guarantee or the audit trail: nobody deletes
# them in the admin site, superusers included.
NEVER_DELETED = {
    "messaging.message",
    "messaging.attempt",
    "messaging.reply",
    "messaging.optout",
    "projects.participant",
    "projects.project",
    "portal.auditevent",
}
# Models that name a function the workers run: nobody adds or changes them.
NAMES_A_FUNCTION = {"django_q.schedule", "django_q.success", "django_q.failure", "django_q.ormq"}


def test_an_administrator_cannot_schedule_a_function_for_the_workers(as_user, server_admin):
    client = as_user(server_admin)
    response = client.post(
        reverse("admin:django_q_schedule_add"),
        {
            "name": "pwn",
            "func": "os.mkdir",
            "args": "'/tmp/studytext-pwned'",
            "schedule_type": "O",
            "repeats": "-1",
            "next_run_0": "2026-01-01",
            "next_run_1": "00:00:00",
            "cluster": "",
        },
    )
    assert response.status_code == 403
    assert not Schedule.objects.filter(func="os.mkdir").exists()
    dispatcher = Schedule.objects.first()
    if dispatcher is not None:
        response = client.post(
            reverse("admin:django_q_schedule_change", args=[dispatcher.pk]),
            {"name": dispatcher.name, "func": "os.system", "schedule_type": "I", "minutes": 1},
        )
        assert response.status_code == 403
        dispatcher.refresh_from_db()
        assert dispatcher.func != "os.system"


def _label(model) -> str:
    return model._meta.label_lower


def _effective(model_admin, user) -> set[str]:
    request = RequestFactory().get("/admin/")
    request.user = user
    allowed = set()
    if model_admin.has_view_permission(request):
        allowed.add("view")
    if model_admin.has_add_permission(request):
        allowed.add("add")
    if model_admin.has_change_permission(request):
        allowed.add("change")
    if model_admin.has_delete_permission(request):
        allowed.add("delete")
    return allowed


def test_every_registered_model_has_a_decided_row_and_no_row_is_stale():
    registered = {_label(model) for model in admin.site._registry}
    assert registered == set(SERVER_ADMIN_PERMISSIONS)


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label_lower)
def test_a_server_administrator_may_do_exactly_what_the_table_says(model):
    user = ServerAdminFactory(email="alex@uni.test")
    expected = set(SERVER_ADMIN_PERMISSIONS[_label(model)])
    assert _effective(admin.site._registry[model], user) == expected
    if _label(model) in NAMES_A_FUNCTION:
        assert expected == {"view"}
    if _label(model) in NEVER_DELETED:
        assert "delete" not in expected


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label_lower)
def test_not_even_a_superuser_runs_functions_or_deletes_the_record(model):
    superuser = UserFactory(email="root@uni.test", is_superuser=True, is_staff=True)
    allowed = _effective(admin.site._registry[model], superuser)
    if _label(model) in NAMES_A_FUNCTION:
        assert allowed <= {"view"}
    if _label(model) in NEVER_DELETED:
        assert "delete" not in allowed


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda m: m._meta.label_lower)
def test_a_researcher_with_is_staff_may_do_nothing(model):
    staff = UserFactory(email="staff@uni.test", is_staff=True)
    assert _effective(admin.site._registry[model], staff) == set()


def test_a_permission_row_given_to_the_group_does_not_widen_the_role(server_admin):
    from django.contrib.auth.models import Group, Permission

    from portal.models import SERVER_ADMIN_GROUP

    group = Group.objects.get(name=SERVER_ADMIN_GROUP)
    group.permissions.add(Permission.objects.get(codename="add_schedule"))
    server_admin = type(server_admin).objects.get(pk=server_admin.pk)
    assert not server_admin.has_perm("django_q.add_schedule")


def test_the_change_lists_show_no_message_or_reply_bodies(as_user, server_admin):
    for name in ("messaging_message", "messaging_reply", "messaging_messagerule"):
        model_admin = next(
            a for m, a in admin.site._registry.items() if _label(m) == name.replace("_", ".", 1)
        )
        assert not {"body", "adhoc_body"} & set(model_admin.list_display)
    page = as_user(server_admin).get(reverse("admin:index")).content.decode()
    assert "Replies" in page
    assert "Replys" not in page


def test_deleting_an_api_token_in_the_admin_revokes_it_and_is_audited(
    as_user, server_admin, researcher
):
    from portal.models import ApiToken, AuditEvent
    from portal.services.profile import api_token_create

    api_token_create(user=researcher)
    token = ApiToken.objects.get()
    response = as_user(server_admin).post(
        reverse("admin:portal_apitoken_delete", args=[token.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not ApiToken.objects.exists()
    assert AuditEvent.objects.get(action="api_token.revoked").actor == server_admin
