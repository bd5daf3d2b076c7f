from django.urls import path

from projects import det_views, views

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("<int:pk>/", views.project_detail, name="project-detail"),
    path("<int:pk>/members/", views.member_list, name="project-members"),
    path("<int:pk>/members/notices/", views.member_notices, name="project-member-notices"),
    path(
        "<int:pk>/members/<int:membership_id>/role/",
        views.member_change_role,
        name="project-member-role",
    ),
    path(
        "<int:pk>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="project-member-remove",
    ),
    path(
        "<int:pk>/invitations/<int:invitation_id>/cancel/",
        views.invitation_cancel,
        name="project-invitation-cancel",
    ),
    path("<int:pk>/redcap/", views.redcap_link, name="project-redcap"),
    path("<int:pk>/redcap/test/", views.redcap_link_test, name="project-redcap-test"),
    path("<int:pk>/redcap/remove/", views.redcap_link_remove, name="project-redcap-remove"),
    path("<int:pk>/redcap/det/", det_views.change, name="project-det"),
    path("<int:pk>/redcap/sandbox/", views.redcap_sandbox_create, name="project-redcap-sandbox"),
    path("<int:pk>/fields/", views.field_mapping, name="project-fields"),
    path("<int:pk>/participants/", views.participant_list, name="project-participants"),
    path("<int:pk>/participants/sync/", views.sync_start, name="project-sync-start"),
    path("<int:pk>/participants/sync/<int:run_id>/", views.sync_detail, name="project-sync"),
    path("<int:pk>/settings/", views.project_settings, name="project-settings"),
    path("<int:pk>/status/", views.project_status, name="project-status"),
    path("<int:pk>/account/", views.project_account, name="project-account"),
]
