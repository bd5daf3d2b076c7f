from django.urls import path

from messaging.views import (
    calendar,
    inbox,
    log,
    participants,
    phones,
    provider,
    rules,
    sends,
    simulator,
)

# Mounted under /projects/ next to projects.urls: every route is project-scoped.
urlpatterns = [
    path("<int:pk>/messages/", rules.rule_list, name="rule-list"),
    path("<int:pk>/messages/new/", rules.rule_create, name="rule-create"),
    path("<int:pk>/messages/preview/", rules.rule_preview, name="rule-preview"),
    path("<int:pk>/messages/survey-check/", rules.survey_check, name="survey-check"),
    path(
        "<int:pk>/messages/recipients/",
        rules.rule_recipient_count,
        name="rule-recipient-count",
    ),
    path(
        "<int:pk>/messages/recipients/<str:token>/",
        rules.rule_recipient_count_result,
        name="rule-recipient-count-result",
    ),
    path("<int:pk>/messages/calendar/", calendar.message_calendar, name="message-calendar"),
    path(
        "<int:pk>/messages/<int:rule_id>/calendar/",
        calendar.rule_calendar,
        name="rule-calendar",
    ),
    path("<int:pk>/messages/<int:rule_id>/", rules.rule_detail, name="rule-detail"),
    path("<int:pk>/messages/<int:rule_id>/edit/", rules.rule_edit, name="rule-edit"),
    path("<int:pk>/messages/<int:rule_id>/status/", rules.rule_status, name="rule-status"),
    path("<int:pk>/messages/<int:rule_id>/send/", rules.rule_send_now, name="rule-send-now"),
    path("<int:pk>/messages/<int:rule_id>/results/", rules.survey_results, name="survey-results"),
    path("<int:pk>/messages/test/", phones.test_text_send, name="test-text-send"),
    path("<int:pk>/my-phone/", phones.staff_phone, name="staff-phone"),
    path("<int:pk>/sends/<int:send_id>/", sends.send_detail, name="send-detail"),
    path(
        "<int:pk>/sends/<int:send_id>/cancel/",
        sends.send_cancel_waiting,
        name="send-cancel-waiting",
    ),
    path("<int:pk>/inbox/", inbox.inbox_list, name="inbox"),
    path("<int:pk>/inbox/rows/", inbox.inbox_fragment, name="inbox-rows"),
    path("<int:pk>/inbox/read-all/", inbox.inbox_read_all, name="inbox-read-all"),
    path("<int:pk>/inbox/<int:reply_id>/", inbox.inbox_action, name="inbox-action"),
    path("<int:pk>/inbox/<int:reply_id>/answer/", inbox.inbox_answer, name="inbox-answer"),
    path("<int:pk>/log/", log.message_log, name="message-log"),
    path("<int:pk>/log.csv", log.message_log_csv, name="message-log-csv"),
    path("<int:pk>/log/<int:message_id>/cancel/", log.message_cancel, name="message-cancel"),
    path(
        "<int:pk>/participants/<int:participant_id>/",
        participants.participant_detail,
        name="participant-detail",
    ),
    path(
        "<int:pk>/participants/<int:participant_id>/consent/",
        participants.participant_consent,
        name="participant-consent",
    ),
    path("<int:pk>/provider/", provider.provider_link, name="project-provider"),
    path(
        "<int:pk>/provider/action/", provider.provider_link_action, name="project-provider-action"
    ),
    path("<int:pk>/phones/", simulator.phone_simulator, name="phone-simulator"),
    path(
        "<int:pk>/phones/<int:participant_id>/reply/",
        simulator.phone_simulator_reply,
        name="phone-simulator-reply",
    ),
]
