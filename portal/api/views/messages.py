from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers

from messaging import selectors as messaging_selectors
from messaging.models import Message, Send
from portal.api import fields
from portal.api.base import ApiView
from portal.api.serializers import (
    MessageDetailOutputSerializer,
    MessageOutputSerializer,
    ReplyOutputSerializer,
    SendOutputSerializer,
)
from portal.api.views.common import ListApi, answer, example
from portal.api.views.participants import ADHOC
from projects import selectors as project_selectors

MESSAGE = {
    **ADHOC,
    "rule": {"id": 7, "name": "Weekly check-in"},
    "kind": "invitation",
    "status": "delivered",
    "sent_at": "2026-03-02T10:00:04-06:00",
    "delivered_at": "2026-03-02T10:00:09-06:00",
    "segments": 1,
    "encoding": "GSM-7",
    "units": 1,
    "attempts": 1,
}
MESSAGE_DETAIL = {
    **MESSAGE,
    "body": "Hi Sam, this week's survey: https://redcap.example.edu/surveys/?s=ABCD",
    "attempt_log": [
        {
            "started_at": "2026-03-02T10:00:03-06:00",
            "finished_at": "2026-03-02T10:00:04-06:00",
            "outcome": "accepted",
            "provider_message_id": "SM0123456789abcdef0123456789abcdef",
            "error_code": "",
            "error": "",
        }
    ],
    "delivery": {
        "status": "delivered",
        "provider": "twilio",
        "provider_message_id": "SM0123456789abcdef0123456789abcdef",
        "sent_at": "2026-03-02T10:00:04-06:00",
        "delivered_at": "2026-03-02T10:00:09-06:00",
        "error_code": "",
        "error": "",
    },
}
STATUS_WORDS = ", ".join(Message.Status.values)


def _id(help_text: str):
    return fields.QueryInteger(required=False, help_text=help_text)


class MessageQuery(serializers.Serializer):
    status = fields.Text(
        max_length=200,
        required=False,
        help_text=f"One status, or several separated by commas: {STATUS_WORDS}.",
    )
    rule = _id("Only this message rule's texts (its id).")
    participant = _id("Only this participant's texts (their id).")
    record = fields.Text(max_length=100, required=False, help_text="Only this REDCap record's.")
    send = _id("Only the texts of this send (a Send now batch).")
    since = fields.Date(required=False, help_text="Due on or after this day (your time zone).")
    until = fields.Date(required=False, help_text="Due on or before this day (your time zone).")

    def validate_status(self, value: str) -> str:
        wrong = [s for s in value.split(",") if s not in Message.Status.values]
        if wrong:
            raise serializers.ValidationError(
                f"Not a status: {', '.join(wrong)}. Use {STATUS_WORDS} (commas between several)."
            )
        return value

    def validate(self, attrs):
        if attrs.get("since") and attrs.get("until") and attrs["until"] < attrs["since"]:
            raise serializers.ValidationError({"until": "The end day is before the start day."})
        return attrs


class MessageListApi(ListApi):
    serializer_class = MessageOutputSerializer
    query_serializer_class = MessageQuery

    def get_queryset(self):
        project = self.get_project()
        query = self.query
        record = query.get("record", "")
        if query.get("participant"):
            participant = (
                project_selectors.participants_for_project(project=project, show="all")
                .filter(pk=query["participant"])
                .first()
            )
            if participant is None:
                raise exceptions.ValidationError(
                    {"participant": ["No participant with this id in the project."]}
                )
            if record and record != participant.record_id:
                return Message.objects.none()
            record = participant.record_id
        return messaging_selectors.messages_for_project(
            project=project,
            status=query.get("status", ""),
            rule_id=query.get("rule"),
            send_id=query.get("send"),
            record=record,
            since=query.get("since"),
            until=query.get("until"),
        )

    @extend_schema(
        tags=["messages"],
        summary="The message log",
        description="Every text of the project, newest due first, with its status. Filter by "
        "status, rule, participant (or REDCap record), send and due day.",
        parameters=[MessageQuery],
        examples=[example("A delivered text", MESSAGE)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class MessageDetailApi(ApiView):
    serializer_class = MessageDetailOutputSerializer

    @extend_schema(
        tags=["messages"],
        summary="A text, with its provider calls and delivery",
        description="The text as sent, every call to the SMS provider (attempt log) and what "
        "the provider's delivery receipts said.",
        examples=[example("A delivered text", MESSAGE_DETAIL)],
    )
    def get(self, request, project_id: int, message_id: int):
        project = self.get_project()
        message = get_object_or_404(
            messaging_selectors.messages_for_project(project=project).prefetch_related(
                "attempt_log"
            ),
            pk=message_id,
        )
        return answer(MessageDetailOutputSerializer, message)


class SendDetailApi(ApiView):
    serializer_class = SendOutputSerializer

    @extend_schema(
        tags=["messages"],
        summary="A send's progress",
        description="How far a Send now batch has gone: texts waiting, held over quota, sent, "
        "delivered, failed, unconfirmed and skipped. Poll it until `done`.",
        examples=[
            example(
                "Half way",
                {
                    "id": 55,
                    "rule": {"id": 7, "name": "Weekly check-in"},
                    "created_at": "2026-03-04T10:00:00-06:00",
                    "total": 140,
                    "progress": {
                        "total": 140,
                        "queued": 70,
                        "held": 0,
                        "sent": 68,
                        "delivered": 51,
                        "failed": 2,
                        "unknown": 0,
                        "skipped": 0,
                        "done_count": 70,
                        "percent": 50,
                        "done": False,
                    },
                },
            )
        ],
    )
    def get(self, request, project_id: int, send_id: int):
        project = self.get_project()
        send = get_object_or_404(Send.objects.select_related("rule"), pk=send_id, project=project)
        send.progress = messaging_selectors.send_progress(send=send)
        return answer(SendOutputSerializer, send)


class ReplyQuery(serializers.Serializer):
    participant = _id("Only this participant's replies (their id).")


class ReplyListApi(ListApi):
    serializer_class = ReplyOutputSerializer
    query_serializer_class = ReplyQuery

    def get_queryset(self):
        return messaging_selectors.replies_for_project(
            project=self.get_project(), participant_id=self.query.get("participant")
        )

    @extend_schema(
        tags=["replies"],
        summary="What participants texted back",
        description="Replies from the project's participants, newest first, with what "
        "StudyText did about a keyword (STOP, START, HELP). Numbers are masked to their last 4 "
        "digits. A reply from a number that matches no participant is not listed.",
        parameters=[ReplyQuery],
        examples=[
            example(
                "A STOP",
                {
                    "id": 301,
                    "participant": {"id": 881, "record_id": "17"},
                    "phone": "•••-•••-0143",
                    "phone_last4": "0143",
                    "body": "stop please",
                    "keyword": "stop",
                    "handled": "Opted out: nothing more is sent. Twilio confirms STOP itself.",
                    "provider": "twilio",
                    "received_at": "2026-03-02T18:04:00-06:00",
                },
            )
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
