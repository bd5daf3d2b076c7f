from drf_spectacular.utils import extend_schema

from portal import selectors as portal_selectors
from portal.api.base import ApiView, NoInput
from portal.api.serializers import (
    OnboardingCommentInputSerializer,
    OnboardingCommentOutputSerializer,
    OnboardingRequestCreateSerializer,
    OnboardingRequestInputSerializer,
    OnboardingRequestOutputSerializer,
)
from portal.api.views.common import ListApi, answer, example
from portal.services import onboarding as onboarding_services

REQUEST_IN = {
    "redcap_instance_id": 1,
    "redcap_project_id": 4321,
    "project_title": "Healthy Habits Study",
    "pi_name": "Dana Park",
    "pi_email": "dana.park@uni.example.edu",
    "irb_protocol": "IRB-2026-0042",
    "irb_status": "approved",
    "summary": "Adults in a 12-week habit study get weekly survey invitations.",
    "expected_participants": 120,
    "expected_messages_per_month": 600,
    "message_kinds": ["invitation", "reminder"],
    "new_account_name": "Sleep Lab",
    "new_account_plan_id": 1,
    "new_account_time_zone": "America/Chicago",
    "attest_no_phi": True,
    "attest_consent": True,
}
REQUEST_OUT = {
    "id": 41,
    "status": "draft",
    "redcap_instance": "University REDCap",
    **REQUEST_IN,
    "billing_account_id": None,
    "created_at": "2026-03-04T10:00:00-06:00",
    "submitted_at": None,
    "decided_at": None,
    "decision_note": "",
    "project": None,
}
COMMENT = {
    "id": 5,
    "author": "Dana Park",
    "body": "The IRB approval letter is on its way.",
    "created_at": "2026-03-04T11:00:00-06:00",
}


class OnboardingRequestListApi(ListApi):
    """The caller's own onboarding requests."""

    serializer_class = OnboardingRequestOutputSerializer

    def get_queryset(self):
        return portal_selectors.onboarding_requests_for_user(user=self.request.user).order_by("id")

    @extend_schema(
        tags=["onboarding"],
        summary="Your requests to enable texting",
        description="The onboarding requests you filed, oldest first, with their status.",
        examples=[example("A draft", REQUEST_OUT)],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["onboarding"],
        summary="File a request to enable texting",
        description="Saves a draft (it may be incomplete), or submits it at once with "
        '`"submit": true` (then every field is needed, and each missing one is named). The '
        "administrators are e-mailed when it is submitted.",
        request=OnboardingRequestCreateSerializer,
        responses={201: OnboardingRequestOutputSerializer},
        examples=[
            example("A complete request", REQUEST_IN, request=True),
            example("Saved as a draft", REQUEST_OUT, status=201),
        ],
    )
    def post(self, request):
        data = dict(self.body(OnboardingRequestCreateSerializer))
        submit = data.pop("submit", False)
        obj = onboarding_services.onboarding_request_create(
            requester=request.user, data=data, submit=submit
        )
        return answer(OnboardingRequestOutputSerializer, obj, status=201)


class OnboardingRequestApi(ApiView):
    serializer_class = OnboardingRequestOutputSerializer

    def get_request(self):
        return portal_selectors.onboarding_request_get_for_user(
            user=self.request.user, pk=self.kwargs["request_id"]
        )


class OnboardingRequestDetailApi(OnboardingRequestApi):
    @extend_schema(
        tags=["onboarding"],
        summary="One of your requests",
        description="A request you filed, with the administrators' decision when there is one.",
        examples=[example("A draft", REQUEST_OUT)],
    )
    def get(self, request, request_id: int):
        return answer(OnboardingRequestOutputSerializer, self.get_request())

    @extend_schema(
        tags=["onboarding"],
        summary="Change a draft (or a request sent back for changes)",
        description="Changes the fields given. Only the researcher who filed it, and only "
        "while it is a draft or sent back for changes.",
        request=OnboardingRequestInputSerializer,
        examples=[
            example("The PI's e-mail", {"pi_email": "d.park@uni.example.edu"}, request=True),
            example("Changed", {**REQUEST_OUT, "pi_email": "d.park@uni.example.edu"}),
        ],
    )
    def patch(self, request, request_id: int):
        obj = self.get_request()
        data = self.body(OnboardingRequestInputSerializer, partial=True)
        obj = onboarding_services.onboarding_request_update(
            onboarding_request=obj, actor=request.user, data=data
        )
        return answer(OnboardingRequestOutputSerializer, obj)


class OnboardingRequestSubmitApi(OnboardingRequestApi):
    @extend_schema(
        tags=["onboarding"],
        summary="Submit a request",
        description="Sends a complete draft (or a changed request) to the administrators. An "
        "incomplete one is refused, each missing field named. No body.",
        request=None,
        examples=[
            example(
                "Submitted",
                {**REQUEST_OUT, "status": "submitted", "submitted_at": "2026-03-04T12:00:00-06:00"},
            )
        ],
    )
    def post(self, request, request_id: int):
        obj = self.get_request()
        self.body(NoInput)
        obj = onboarding_services.onboarding_request_submit(
            onboarding_request=obj, actor=request.user
        )
        return answer(OnboardingRequestOutputSerializer, obj)


class OnboardingRequestWithdrawApi(OnboardingRequestApi):
    @extend_schema(
        tags=["onboarding"],
        summary="Withdraw a request",
        description="Withdraws a request that is still open (a draft, submitted, or sent back "
        "for changes). No body.",
        request=None,
        examples=[example("Withdrawn", {**REQUEST_OUT, "status": "withdrawn"})],
    )
    def post(self, request, request_id: int):
        obj = self.get_request()
        self.body(NoInput)
        obj = onboarding_services.onboarding_request_withdraw(
            onboarding_request=obj, actor=request.user
        )
        return answer(OnboardingRequestOutputSerializer, obj)


class OnboardingCommentListApi(OnboardingRequestApi, ListApi):
    serializer_class = OnboardingCommentOutputSerializer

    def get_queryset(self):
        return portal_selectors.onboarding_comments_for(onboarding_request=self.get_request())

    @extend_schema(
        tags=["onboarding"],
        summary="The comments on a request",
        description="You and the administrators, oldest first.",
        examples=[example("A comment", COMMENT)],
    )
    def get(self, request, *args, **kwargs):
        return self.list(request, *args, **kwargs)

    @extend_schema(
        tags=["onboarding"],
        summary="Comment on a request",
        description="Adds a comment; the administrators are told by e-mail.",
        request=OnboardingCommentInputSerializer,
        responses={201: OnboardingCommentOutputSerializer},
        examples=[
            example("A comment", {"body": COMMENT["body"]}, request=True),
            example("Posted", COMMENT, status=201),
        ],
    )
    def post(self, request, request_id: int):
        obj = self.get_request()
        data = self.body(OnboardingCommentInputSerializer)
        comment = onboarding_services.onboarding_comment_create(
            onboarding_request=obj, author=request.user, body=data.get("body", "")
        )
        return answer(OnboardingCommentOutputSerializer, comment, status=201)
