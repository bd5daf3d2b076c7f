from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from messaging import selectors as messaging_selectors
from messaging import services as messaging_services
from portal import selectors as portal_selectors
from portal.api import fields
from portal.api.base import EDITOR, ApiView
from portal.api.serializers import (
    AdhocInputSerializer,
    MessageOutputSerializer,
    OptOutInputSerializer,
    OptOutOutputSerializer,
    ParticipantDetailOutputSerializer,
    ParticipantOutputSerializer,
)
from portal.api.views.common import ListApi, answer, example
from projects import selectors as project_selectors

PARTICIPANT = {
    "id": 881,
    "record_id": "17",
    "phone": "•••-•••-0143",
    "phone_last4": "0143",
    "status": "ready",
    "issue": "",
    "issue_detail": "",
    "consented": True,
    "withdrawn": False,
    "opted_out_in_redcap": False,
    "suppressed": False,
    "number_invalid": False,
    "in_redcap": True,
    "time_zone": "America/Denver",
    "synced_at": "2026-03-04T09:30:00-06:00",
}
PARTICIPANT_DETAIL = {
    **PARTICIPANT,
    "status": "opted_out",
    "suppressed": True,
    "consent_timeline": [
        {
            "at": "2026-03-02T18:04:00-06:00",
            "event": "opted_out",
            "by_staff": False,
            "detail": "Record 17 opted out: Texted a stop word.",
        }
    ],
}
SHOW = {
    "all": "everyone (the default)",
    "ready": "ready to text",
    "not_usable": "no valid number, no consent or an unknown time zone",
    "withdrawn": "withdrawn (REDCap's withdrawn logic)",
    "opted_out": "opted out in REDCap's opt-out field",
    "gone": "no longer in REDCap",
}


class ParticipantQuery(serializers.Serializer):
    show = fields.Choice(
        choices=list(SHOW.items()),
        required=False,
        help_text="Which participants: " + "; ".join(f"`{k}`: {v}" for k, v in SHOW.items()),
    )
    search = fields.Text(
        max_length=100, required=False, help_text="A record id, or a number's last 4 digits."
    )


def _participants(project):
    return messaging_selectors.participants_with_opt_out(
        participants=project_selectors.participants_for_project(project=project, show="all")
    )


class ParticipantListApi(ListApi):
    serializer_class = ParticipantOutputSerializer
    query_serializer_class = ParticipantQuery

    def get_queryset(self):
        project = self.get_project()
        return messaging_selectors.participants_with_opt_out(
            participants=project_selectors.participants_for_project(
                project=project,
                show=self.query.get("show", "all"),
                search=self.query.get("search", ""),
            )
        )

    @extend_schema(
        tags=["participants"],
        summary="List a project's participants",
        description="The REDCap records StudyText may text, in record order, with their "
        "status. Phone numbers are masked to their last 4 digits; only the mapped REDCap fields "
        "are kept.",
        parameters=[ParticipantQuery],
        examples=[example("A participant", PARTICIPANT)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ParticipantApi(ApiView):
    def get_participant(self, project):
        return get_object_or_404(_participants(project), pk=self.kwargs["participant_id"])


class ParticipantDetailApi(ParticipantApi):
    serializer_class = ParticipantDetailOutputSerializer

    @extend_schema(
        tags=["participants"],
        summary="A participant, with their consent timeline",
        description="Status, consent as REDCap says (at the last sync), whether the number is "
        "on the project's opt-out list, and every opt-out and opt-in with who did it.",
        examples=[example("An opted-out participant", PARTICIPANT_DETAIL)],
    )
    def get(self, request, project_id: int, participant_id: int):
        participant = self.get_participant(self.get_project())
        participant.consent_events = list(
            portal_selectors.participant_consent_events(participant=participant)
        )
        return answer(ParticipantDetailOutputSerializer, participant)


OPT_OUT = {
    "participant": {**PARTICIPANT, "status": "opted_out", "suppressed": True},
    "source": "staff",
    "reason": "Asked by phone on March 4 to stop texts.",
    "opted_out_at": "2026-03-04T10:02:00-06:00",
    "opted_in_at": None,
}


class ParticipantOptOutApi(ParticipantApi):
    serializer_class = OptOutOutputSerializer

    def change(self, request, *, opt_in: bool):
        project = self.get_project(min_role=EDITOR)
        participant = self.get_participant(project)
        data = self.body(OptOutInputSerializer)
        action = (
            messaging_services.participant_opt_in
            if opt_in
            else messaging_services.participant_opt_out
        )
        opt_out = action(participant=participant, actor=request.user, reason=data.get("reason", ""))
        opt_out.participant = self.get_participant(project)
        return answer(OptOutOutputSerializer, opt_out)

    @extend_schema(
        tags=["participants"],
        summary="Opt a participant out (study staff)",
        description="For a participant who asked the team, by phone or in person, to stop "
        "texts. Their number goes on the project's opt-out list, their waiting texts are "
        "cancelled and REDCap's opt-out field is written. Editors and owners; a reason is "
        "required (it goes in the audit log).",
        request=OptOutInputSerializer,
        examples=[
            example("Reason", {"reason": "Asked by phone on March 4 to stop texts."}, request=True),
            example("Opted out", OPT_OUT),
        ],
    )
    def post(self, request, project_id: int, participant_id: int):
        return self.change(request, opt_in=False)


class ParticipantOptInApi(ParticipantOptOutApi):
    @extend_schema(
        tags=["participants"],
        summary="Lift a staff opt-out",
        description="Study staff may lift only an opt-out study staff set. A participant who "
        "texted STOP opts back in by texting START (the provider blocks the number until "
        "then); an opt-out in REDCap's field is changed in REDCap. Editors and owners; a reason "
        "is required.",
        request=OptOutInputSerializer,
        examples=[
            example("Reason", {"reason": "Asked in clinic to resume texts."}, request=True),
            example(
                "Opted in",
                {
                    **OPT_OUT,
                    "participant": PARTICIPANT,
                    "opted_in_at": "2026-03-09T11:00:00-06:00",
                },
            ),
        ],
    )
    def post(self, request, project_id: int, participant_id: int):
        return self.change(request, opt_in=True)


ADHOC = {
    "id": 90211,
    "participant": {"id": 881, "record_id": "17"},
    "rule": None,
    "send_id": None,
    "kind": "adhoc",
    "status": "queued",
    "due_at": "2026-03-04T10:05:00-06:00",
    "not_before": "2026-03-04T10:05:00-06:00",
    "sent_at": None,
    "delivered_at": None,
    "segments": 0,
    "encoding": "",
    "units": 0,
    "attempts": 0,
    "error_code": "",
    "error": "",
    "created_at": "2026-03-04T10:05:00-06:00",
}


class ParticipantTextApi(ParticipantApi):
    serializer_class = MessageOutputSerializer

    @extend_schema(
        tags=["messages"],
        summary="Text one participant now (ad hoc)",
        description="Queues one text to the participant, as their page's form does: it goes out "
        "within the project's sending hours (participant's time), counts against the quota, "
        "and is refused for a participant who has not consented, has withdrawn or opted out. "
        "Answers 202 with the queued text; follow it at its message address.",
        request=AdhocInputSerializer,
        responses={202: MessageOutputSerializer},
        examples=[
            example(
                "Text", {"body": "Hi [first_name], your visit is tomorrow at 9."}, request=True
            ),
            example("Queued", ADHOC, status=202),
        ],
    )
    def post(self, request, project_id: int, participant_id: int):
        project = self.get_project(min_role=EDITOR)
        participant = self.get_participant(project)
        data = self.body(AdhocInputSerializer)
        message = messaging_services.adhoc_send(
            participant=participant, body=data.get("body", ""), actor=request.user
        )
        return answer(MessageOutputSerializer, message, status=202)
