"""Who may call each project-scoped write service, as one table (projects.access.
project_role_require): every role below the one a service needs is refused in words, with
nothing written, and the role it needs gets past the check. Views and the REST API call these
services, so their 403s rest on this table too (the view-level 403/404 tests are per page)."""

import contextlib
import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q

from messaging.models import Message, MessageRule, OptOut, Reply, Send
from messaging.services import (
    inbound,
    inbox,
    optouts,
    outbox,
    provider_links,
    recipient_count,
    rules,
    test_texts,
    text_surveys,
)
from portal.models import AuditEvent
from projects import services as project_services
from projects.models import FieldMapping, Membership, ProjectInvitation, ProviderLink, RedcapLink
from projects.sandbox import services as sandbox
from projects.services import links, mapping, members
from tests.factories import (
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
OWNER, EDITOR, VIEWER = Membership.Role.OWNER, Membership.Role.EDITOR, Membership.Role.VIEWER
NINE, FIVE = datetime.time(9, 0), datetime.time(17, 0)

# service name: (the role it needs, the call). Each call is harmless for a member allowed to
# make it (it fails validation, or changes nothing that matters here).
SERVICES = {
    "rule_save": (EDITOR, lambda w, u: rules.rule_save(project=w.project, actor=u, data={})),
    "rule_save (an alert's fixed e-mail addresses)": (
        OWNER,
        lambda w, u: rules.rule_save(project=w.project, actor=u, data={"alert_emails": ["a@b.c"]}),
    ),
    "text_survey_rule_save": (
        EDITOR,
        lambda w, u: text_surveys.text_survey_rule_save(
            project=w.project, actor=u, data={}, survey_data={"time_limit": None}
        ),
    ),
    "rule_set_status": (
        EDITOR,
        lambda w, u: rules.rule_set_status(rule=w.rule, status="bogus", actor=u),
    ),
    "send_now": (
        EDITOR,
        lambda w, u: outbox.send_now(rule=w.rule, actor=u, audience="nobody"),
    ),
    "send_cancel_waiting": (EDITOR, lambda w, u: outbox.send_cancel_waiting(send=w.send, actor=u)),
    "adhoc_send": (
        EDITOR,
        lambda w, u: outbox.adhoc_send(participant=w.person, body="", actor=u),
    ),
    "message_cancel": (EDITOR, lambda w, u: outbox.message_cancel(message=w.sent, actor=u)),
    "participant_opt_out": (
        EDITOR,
        lambda w, u: optouts.participant_opt_out(participant=w.person, actor=u, reason=""),
    ),
    "participant_opt_in": (
        EDITOR,
        lambda w, u: optouts.participant_opt_in(participant=w.person, actor=u, reason=""),
    ),
    "reply_mark_read": (EDITOR, lambda w, u: inbox.reply_mark_read(reply=w.reply, actor=u)),
    "replies_mark_all_read": (
        EDITOR,
        lambda w, u: inbox.replies_mark_all_read(project=w.project, actor=u),
    ),
    "reply_review": (EDITOR, lambda w, u: inbox.reply_review(reply=w.reply, actor=u, note="x")),
    "reply_opt_out": (
        EDITOR,
        lambda w, u: inbox.reply_opt_out(reply=w.reply, actor=u, reason=""),
    ),
    "participant_replies_answered": (
        EDITOR,
        lambda w, u: inbox.participant_replies_answered(participant=w.person, actor=u),
    ),
    "reply_answer": (EDITOR, lambda w, u: inbox.reply_answer(reply=w.reply, body="", actor=u)),
    "recipient_count_start": (
        EDITOR,
        lambda w, u: recipient_count.recipient_count_start(
            project=w.project, actor=u, recipients="bogus", filter_logic="", record_ids=[]
        ),
    ),
    "test_text_send": (
        EDITOR,
        lambda w, u: test_texts.test_text_send(project=w.project, actor=u, body="Hi"),
    ),
    "staff_phone_start": (
        EDITOR,
        lambda w, u: test_texts.staff_phone_start(project=w.project, actor=u, raw="x"),
    ),
    "simulator_reply": (
        EDITOR,
        lambda w, u: inbound.simulator_reply(participant=w.person, body="", actor=u),
    ),
    "field_mapping_save": (
        EDITOR,
        lambda w, u: mapping.field_mapping_save(project=w.project, actor=u, data={}),
    ),
    "project_update_help_reply": (
        EDITOR,
        lambda w, u: project_services.project_update_help_reply(
            project=w.project, actor=u, help_reply="Call us."
        ),
    ),
    "provider_link_save": (
        OWNER,
        lambda w, u: provider_links.provider_link_save(
            project=w.project, provider="nope", config={}, rate_per_second=1, actor=u
        ),
    ),
    "provider_link_test": (
        OWNER,
        lambda w, u: provider_links.provider_link_test(link=w.link, actor=u),
    ),
    "provider_link_resume": (
        OWNER,
        lambda w, u: provider_links.provider_link_resume(link=w.link, actor=u),
    ),
    "provider_link_keywords_set": (
        OWNER,
        lambda w, u: provider_links.provider_link_keywords_set(link=w.link, answers=True, actor=u),
    ),
    "provider_link_remove": (
        OWNER,
        lambda w, u: provider_links.provider_link_remove(project=w.project, actor=u),
    ),
    "redcap_link_set": (
        OWNER,
        lambda w, u: links.redcap_link_set(project=w.project, token="x", actor=u),
    ),
    "redcap_link_test": (OWNER, lambda w, u: links.redcap_link_test(project=w.project, actor=u)),
    "redcap_link_remove": (
        OWNER,
        lambda w, u: links.redcap_link_remove(project=w.project, actor=u),
    ),
    "sandbox_project_create": (
        OWNER,
        lambda w, u: sandbox.sandbox_project_create(project=w.project, actor=u),
    ),
    "project_set_status": (
        OWNER,
        lambda w, u: project_services.project_set_status(project=w.project, status="x", actor=u),
    ),
    "project_update_sending_hours": (
        OWNER,
        lambda w, u: project_services.project_update_sending_hours(
            project=w.project, actor=u, start=FIVE, end=NINE, days=[0]
        ),
    ),
    "project_update_retention": (
        OWNER,
        lambda w, u: project_services.project_update_retention(project=w.project, actor=u, days=1),
    ),
    "member_notices_set": (
        VIEWER,
        lambda w, u: members.member_notices_set(
            membership=w.owner_membership, flags=True, digest=True, actor=u
        ),
    ),
    "member_invite": (
        OWNER,
        lambda w, u: members.member_invite(project=w.project, email="x", role="nope", actor=u),
    ),
}
BELOW = {VIEWER: [None], EDITOR: [VIEWER, None], OWNER: [EDITOR, VIEWER, None]}  # None: outsider
WHO = {VIEWER: "members", EDITOR: "owners and editors", OWNER: "owners"}
CASES = [
    pytest.param(name, role, id=f"{name}-{role or 'outsider'}")
    for name, (needed, _) in SERVICES.items()
    for role in BELOW[needed]
]


class World:
    def __init__(self) -> None:
        owner = UserFactory()
        self.project = ProjectFactory(owner=owner)
        self.owner_membership = Membership.objects.get(project=self.project, user=owner)
        self.link = ProviderLinkFactory(project=self.project)
        self.person = ParticipantFactory(project=self.project)
        self.rule = MessageRuleFactory(project=self.project)
        self.send = Send.objects.create(
            project=self.project, rule=self.rule, created_by=owner, total=0
        )
        now = datetime.datetime.now(datetime.UTC)
        self.sent = Message.objects.create(
            project=self.project,
            participant=self.person,
            rule=self.rule,
            occurrence="x",
            dedup_key="x",
            due_at=now,
            not_before=now,
            status=Message.Status.SENT,
        )
        self.reply = Reply.objects.create(
            project=self.project,
            participant=self.person,
            provider="sandbox",
            body="who is this",
            flag=Reply.Flag.POSSIBLE_OPT_OUT,
            received_at=now,
        )

    def member(self, role):
        user = UserFactory()
        if role is not None:
            MembershipFactory(project=self.project, user=user, role=role)
        return user


def written() -> dict:
    models = (AuditEvent, Message, MessageRule, OptOut, FieldMapping, ProviderLink, RedcapLink)
    counts = {model.__name__: model.objects.count() for model in (*models, ProjectInvitation)}
    counts["replies cleared"] = Reply.objects.filter(
        Q(read_at__isnull=False) | Q(reviewed_at__isnull=False)
    ).count()
    return counts


@pytest.mark.parametrize("name, role", CASES)
def test_a_role_below_the_one_a_service_needs_is_refused_and_nothing_is_written(name, role):
    needed, call = SERVICES[name]
    world = World()
    user = world.member(role)
    before = written()
    with pytest.raises(PermissionDenied, match=f"Only the project's {WHO[needed]} can"):
        call(world, user)
    assert written() == before


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_role_a_service_needs_gets_past_the_check(name):
    needed, call = SERVICES[name]
    world = World()
    with contextlib.suppress(ValidationError):  # refused for its input, not for who asks
        call(world, world.member(needed))
