"""In a real Chromium: a sandbox participant replies HELP, then "who is this, stop it", then STOP,
then START on the phone simulator; the team sees the inbox count rise (without reloading the
inbox), the flag, the opt-out on the consent timeline, the reminder cancelled, and the participant
textable again after START.

STOP while many texts are queued and in flight (none sent after it) is pinned by
tests/messaging/test_last_gate.py::test_a_stop_mid_send_stops_every_later_call (300 texts at 100
a second, the real threaded sender)."""

from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from messaging.gateways.base import InboundSms
from messaging.models import Message, OptOut, Reply
from messaging.services.inbound import inbound_receive
from projects import crypto
from projects.models import Membership
from tests.e2e.helpers import pass_second_factor
from tests.factories import (
    MembershipFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UserFactory,
)

SHOTS = Path("/tmp/shots/issue-12")
PASSWORD = "a-good-long-password"  # UserFactory's
PHONE = "+12025550123"


@pytest.mark.django_db(transaction=True)
def test_a_participant_asks_for_help_stops_and_starts_again(live_server, page, settings):
    settings.SMS_GATEWAY_OVERRIDE = ""  # the project's own (sandbox) link: the phone simulator
    SHOTS.mkdir(parents=True, exist_ok=True)
    project = ProjectFactory(title="Sleep and Mood", always_open=True)
    ProviderLinkFactory(project=project, provider="sandbox")
    person = ParticipantFactory(
        project=project,
        record_id="7",
        first_name="Ana",
        in_redcap=True,
        phone_encrypted=crypto.encrypt(PHONE),
        phone_fingerprint=crypto.fingerprint(PHONE, purpose="phone"),
        phone_last4="0123",
    )
    other = ParticipantFactory(project=project, record_id="8", in_redcap=True)
    later = timezone.now() + timezone.timedelta(days=3)
    reminder = Message.objects.create(
        project=project,
        participant=person,
        occurrence="week-2",
        dedup_key="reminder:week-2",
        adhoc_body="Your week-2 check-in is due.",
        due_at=later,
        not_before=later,
    )
    editor = UserFactory(email="coordinator@uni.test")
    MembershipFactory(project=project, user=editor, role=Membership.Role.EDITOR)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail").fill(editor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, editor.email)

    base = f"{live_server.url}/projects/{project.pk}"
    page.goto(f"{base}/inbox/")
    expect(page.locator("#inbox-count")).to_contain_text("Nothing waiting")
    expect(page.locator("#nav-inbox-count")).to_be_hidden()

    def reply_on_the_phone(body: str) -> None:
        page.goto(f"{base}/phones/")
        page.locator(f"#reply-{person.pk}").fill(body)
        page.locator(f"#reply-{person.pk}").press("Enter")
        page.wait_for_load_state()

    # --- HELP: answered by StudyText (the sandbox answers no keyword itself) ------------------
    reply_on_the_phone("HELP")
    page.goto(f"{base}/inbox/")
    expect(page.locator("#inbox-count")).to_contain_text("1 waiting on the team")
    expect(page.locator("#nav-inbox-count")).to_have_text("1")
    assert Message.objects.filter(participant=person, kind="help").count() == 1

    # --- A sentence that reads like stop: flagged, nobody opted out ---------------------------
    reply_on_the_phone("who is this, stop it")
    page.goto(f"{base}/inbox/")
    expect(page.locator("#inbox-count")).to_contain_text("2 waiting on the team")
    expect(page.locator(".flag")).to_have_text("Possible opt-out, please review")
    assert not OptOut.objects.exists()

    # The inbox updates without a reload: a reply from another participant arrives meanwhile.
    inbound_receive(
        link=project.provider_link,
        sms=InboundSms("", crypto.decrypt(other.phone_encrypted), "Running late today"),
        provider="sandbox",
    )
    expect(page.locator("#inbox-count")).to_contain_text("3 waiting", timeout=25_000)
    expect(page.locator("#nav-inbox-count")).to_have_text("3")
    expect(page.get_by_text("Running late today")).to_be_visible()
    page.screenshot(path=str(SHOTS / "inbox.png"), full_page=True)

    # The editor reviews the flag with a note.
    row = page.locator("tr.inbox-row", has=page.locator(".flag"))
    row.get_by_label("Note (optional)").fill("Called Ana: she knows the study now")
    row.get_by_role("button", name="Mark reviewed").click()
    expect(page.locator(".flag")).to_have_count(0)
    assert Reply.objects.get(body="who is this, stop it").reviewed_by == editor

    # --- STOP: opted out, the reminder cancelled, on the timeline -----------------------------
    reply_on_the_phone("STOP")
    page.goto(f"{base}/participants/{person.pk}/")
    timeline = page.locator("#consent-timeline")
    expect(timeline.locator(".consent-opted_out")).to_contain_text("Texted a keyword")
    expect(page.get_by_text("Cancelled").first).to_be_visible()
    expect(page.get_by_text("only their START lifts it")).to_be_visible()
    page.screenshot(path=str(SHOTS / "participant-stopped.png"), full_page=True)
    reminder.refresh_from_db()
    assert reminder.status == Message.Status.CANCELLED

    # --- START: back -----------------------------------------------------------------------
    reply_on_the_phone("START")
    page.goto(f"{base}/participants/{person.pk}/")
    expect(timeline.locator(".consent-opted_in")).to_contain_text("Texted a keyword")
    expect(page.get_by_text("Can be texted")).to_be_visible()
    expect(page.locator("#adhoc-form")).to_be_visible()
    page.screenshot(path=str(SHOTS / "participant-back.png"), full_page=True)
    assert not OptOut.objects.filter(participant=person, revoked_at=None).exists()
