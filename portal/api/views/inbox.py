"""The team's inbox through the API: the same selectors and services as the web page
(messaging/views/inbox.py; docs/compliance.md, "The inbox")."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema

from messaging import selectors as messaging_selectors
from messaging.models import Reply
from messaging.services import inbox
from portal.api.base import EDITOR, OWNER, ApiView, NoInput
from portal.api.serializers import InboxReplyOutputSerializer, ReviewInputSerializer
from portal.api.views.common import ListApi, answer, example

INBOX_REPLY = {
    "id": 301,
    "participant": {"id": 881, "record_id": "17"},
    "phone": "•••-•••-0143",
    "phone_last4": "0143",
    "body": "I don't want these anymore",
    "keyword": "",
    "handled": "",
    "flag": "possible_opt_out",
    "unread": True,
    "flag_open": True,
    "read_at": None,
    "reviewed_at": None,
    "review_note": "",
    "via": "webhook",
    "answers": {
        "id": 5120,
        "rule": {"id": 7, "name": "Weekly check-in"},
        "kind": "invitation",
        "sent_at": "2026-03-02T10:00:04-06:00",
    },
    "received_at": "2026-03-02T18:04:00-06:00",
}


class InboxListApi(ListApi):
    serializer_class = InboxReplyOutputSerializer

    def get_queryset(self):
        project = self.get_project()
        return messaging_selectors.inbox_replies(project=project, role=self.role).select_related(
            "participant", "answers", "answers__rule"
        )

    @extend_schema(
        tags=["inbox"],
        summary="The team's inbox",
        description="Replies nobody has read yet and flagged replies not yet reviewed, newest "
        "first, as on the project's Inbox page. A reply from a number that matches no "
        "participant is listed for owners only, by its last 4 digits. Replies a text survey "
        "took as answers arrive read and are not listed.",
        examples=[example("A possible opt-out", INBOX_REPLY)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class InboxReplyApi(ApiView):
    serializer_class = InboxReplyOutputSerializer

    def get_reply(self) -> Reply:
        project = self.get_project(min_role=EDITOR)
        reply = get_object_or_404(
            Reply.objects.select_related("participant", "project", "answers", "answers__rule"),
            pk=self.kwargs["reply_id"],
            project=project,
        )
        if reply.participant_id is None and self.role != OWNER:
            raise Http404("No such reply.")  # as the web page: owners only
        return reply


class InboxReadApi(InboxReplyApi):
    @extend_schema(
        tags=["inbox"],
        summary="Mark a reply read",
        description="The reply leaves the inbox (a flag stays until it is reviewed). Marking a "
        "read reply again changes nothing. Editors and owners. No body.",
        request=None,
        examples=[example("Read", {**INBOX_REPLY, "unread": False})],
    )
    def post(self, request, project_id: int, reply_id: int):
        reply = self.get_reply()
        self.body(NoInput)
        inbox.reply_mark_read(reply=reply, actor=request.user)
        reply.refresh_from_db()
        return answer(InboxReplyOutputSerializer, reply)


class InboxReviewApi(InboxReplyApi):
    @extend_schema(
        tags=["inbox"],
        summary="Review a flagged reply",
        description="An editor has looked at a flagged reply (a possible opt-out, a number "
        "that matches no participant); the optional note goes in the audit log. It does not "
        "opt anyone out. Editors and owners.",
        request=ReviewInputSerializer,
        examples=[
            example("With a note", {"note": "Called: they want to stay in."}, request=True),
            example(
                "Reviewed",
                {
                    **INBOX_REPLY,
                    "unread": False,
                    "flag_open": False,
                    "read_at": "2026-03-03T09:00:00-06:00",
                    "reviewed_at": "2026-03-03T09:00:00-06:00",
                    "review_note": "Called: they want to stay in.",
                },
            ),
        ],
    )
    def post(self, request, project_id: int, reply_id: int):
        reply = self.get_reply()
        data = self.body(ReviewInputSerializer)
        reply = inbox.reply_review(reply=reply, actor=request.user, note=data.get("note", ""))
        return answer(InboxReplyOutputSerializer, reply)
