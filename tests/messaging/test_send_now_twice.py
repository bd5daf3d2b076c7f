""" "Send now" twice does not text everyone twice: the confirmation counts who received the
message and who still waits for it, the default sends only to those who have not received it,
and a send's waiting texts can be cancelled at once (their quota released)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.services.quota import usage_period_current
from messaging.gateways import locmem
from messaging.models import Message, Send
from messaging.services import claim, outbox, release
from portal.models import AuditEvent
from tests.factories import MessageRuleFactory
from tests.messaging.test_outbox_and_sending import (  # noqa: F401 - fixtures
    people,
    project,
    redcap,
    run_sender,
)

pytestmark = pytest.mark.django_db
Status = Message.Status


def test_a_second_send_now_texts_only_those_who_have_not_received_it(
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
    as_user,
    monkeypatch,
):
    rule = MessageRuleFactory(project=project)
    ana, ben, cy = people
    client = as_user(researcher)
    url = reverse("rule-send-now", args=[project.pk, rule.pk])
    client.post(url, {"audience": "new"})
    run_sender()
    assert len(locmem.outbox) == 3
    # A new participant joins; one earlier text is still waiting (sent to nobody yet).
    Message.objects.filter(participant=cy).update(status=Status.QUEUED)
    from tests.factories import ParticipantFactory

    dee = ParticipantFactory(project=project, record_id="4")
    monkeypatch.setattr(outbox, "kick_sender", lambda: None)  # look before the sender runs

    page = client.get(url).content.decode()
    assert "<strong>4</strong> participants would receive it" in page
    assert "<strong>2</strong> already received this message" in page
    assert "<strong>1</strong> has a copy still waiting" in page
    assert "Send only to those who have not received it (1)" in page
    assert "Send again to everyone (3)" in page

    client.post(url)  # the default: only those who have not received it
    second = Send.objects.order_by("-pk").first()
    assert list(second.messages.values_list("participant_id", flat=True)) == [dee.pk]
    assert second.total == 1

    # Nobody new now: the default refuses in words; everyone again is a deliberate choice.
    response = client.post(url, {"audience": "new"}, follow=True)
    assert "received this message already or are waiting for it" in response.content.decode()
    assert Send.objects.count() == 2
    client.post(url, {"audience": "everyone"})
    third = Send.objects.order_by("-pk").first()
    # Everyone without a waiting copy (Cy's and Dee's still wait): never two copies at once.
    assert set(third.messages.values_list("participant_id", flat=True)) == {ana.pk, ben.pk}
    assert AuditEvent.objects.filter(message__contains="again, to everyone").exists()


def test_cancel_the_waiting_texts_of_a_send_with_the_count_and_quota_released(
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
    as_user,
    monkeypatch,
):
    monkeypatch.setattr(outbox, "kick_sender", lambda: None)
    rule = MessageRuleFactory(project=project)
    send = outbox.send_now(rule=rule, actor=researcher)
    # One text is claimed by a sender (its quota reserved) but not yet handed to the provider.
    claimed, _ = claim.claim_batch(
        [
            release.prepare(
                Message.objects.select_related("project", "participant", "rule").filter(send=send)[
                    0
                ],
                now=timezone.now(),
                redcap=release.ReleaseData(project, None),
                sent_counts={},
                suppressed=set(),
            )
        ],
        provider="locmem",
    )
    assert len(claimed) == 1
    assert usage_period_current(account=project.account).used == 1
    client = as_user(researcher)
    page = client.get(reverse("send-detail", args=[project.pk, send.pk])).content.decode()
    assert "Cancel the waiting texts (3)" in page  # two queued, one claimed

    response = client.post(
        reverse("send-cancel-waiting", args=[project.pk, send.pk]), follow=True
    ).content.decode()
    assert "3 waiting texts cancelled. 1 message of quota released." in response
    assert set(send.messages.values_list("status", flat=True)) == {Status.CANCELLED}
    assert usage_period_current(account=project.account).used == 0
    # The sender holding the claimed one does not call it.
    assert claim.attempts_start([claimed[0].message]) == []
    run_sender()
    assert locmem.outbox == []


def test_cancelling_a_send_that_already_finished_says_so_and_changes_nothing(
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
    as_user,
):
    send = outbox.send_now(rule=MessageRuleFactory(project=project), actor=researcher)
    run_sender()
    response = as_user(researcher).post(
        reverse("send-cancel-waiting", args=[project.pk, send.pk]), follow=True
    )
    assert "Nothing of this send is waiting any more" in response.content.decode()
    assert set(send.messages.values_list("status", flat=True)) == {Status.SENT}
    assert 'id="cancel-waiting"' not in response.content.decode()


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("outsider", 404)])
def test_only_editors_cancel_a_sends_waiting_texts(
    project,  # noqa: F811
    people,  # noqa: F811
    researcher,
    as_user,
    who,
    status,
    monkeypatch,
):
    from tests.factories import MembershipFactory, UserFactory

    monkeypatch.setattr(outbox, "kick_sender", lambda: None)
    send = outbox.send_now(rule=MessageRuleFactory(project=project), actor=researcher)
    user = (
        MembershipFactory(project=project, role="viewer").user if who == "viewer" else UserFactory()
    )
    response = as_user(user).post(reverse("send-cancel-waiting", args=[project.pk, send.pk]))
    assert response.status_code == status
    assert set(send.messages.values_list("status", flat=True)) == {Status.QUEUED}
