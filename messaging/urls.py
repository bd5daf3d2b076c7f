from django.urls import path

from messaging import phone_views, views

# Mounted under /projects/ next to projects.urls: every route is project-scoped.
urlpatterns = [
    path("<int:pk>/messages/", views.rule_list, name="rule-list"),
    path("<int:pk>/messages/new/", views.rule_create, name="rule-create"),
    path("<int:pk>/messages/preview/", views.rule_preview, name="rule-preview"),
    path("<int:pk>/messages/<int:rule_id>/", views.rule_detail, name="rule-detail"),
    path("<int:pk>/messages/<int:rule_id>/edit/", views.rule_edit, name="rule-edit"),
    path("<int:pk>/messages/<int:rule_id>/status/", views.rule_status, name="rule-status"),
    path("<int:pk>/messages/<int:rule_id>/send/", views.rule_send_now, name="rule-send-now"),
    path("<int:pk>/messages/test/", phone_views.test_text_send, name="test-text-send"),
    path("<int:pk>/my-phone/", phone_views.staff_phone, name="staff-phone"),
    path("<int:pk>/sends/<int:send_id>/", views.send_detail, name="send-detail"),
    path(
        "<int:pk>/sends/<int:send_id>/cancel/",
        views.send_cancel_waiting,
        name="send-cancel-waiting",
    ),
    path("<int:pk>/log/", views.message_log, name="message-log"),
    path("<int:pk>/log.csv", views.message_log_csv, name="message-log-csv"),
    path("<int:pk>/log/<int:message_id>/cancel/", views.message_cancel, name="message-cancel"),
    path(
        "<int:pk>/participants/<int:participant_id>/",
        views.participant_detail,
        name="participant-detail",
    ),
    path("<int:pk>/provider/", views.provider_link, name="project-provider"),
    path("<int:pk>/provider/action/", views.provider_link_action, name="project-provider-action"),
    path("<int:pk>/phones/", views.phone_simulator, name="phone-simulator"),
    path(
        "<int:pk>/phones/<int:participant_id>/reply/",
        views.phone_simulator_reply,
        name="phone-simulator-reply",
    ),
]
