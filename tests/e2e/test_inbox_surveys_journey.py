"""In a real Chromium: a coordinator opens the inbox while two participants are in a text survey;
the open surveys are listed in their own section (the question asked now, times in the
coordinator's zone), a reply waiting on the team is listed above them, and a survey that opens
while the page is open shows up without reloading."""

import datetime
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from messaging.models import Conversation, MessageRule, Reply, TextSurvey
from projects.models import Membership
from projects.sandbox.data import SANDBOX_PROJECTS
from tests.e2e.helpers import pass_second_factor
from tests.factories import (
    MembershipFactory,
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    ProviderLinkFactory,
    UserFactory,
)

SHOTS = Path("/tmp/shots/issue-int")
PASSWORD = "a-good-long-password"  # UserFactory's


def _open(rule, person, *, state="open", field="tc_walked", started=None):
    started = started or timezone.now()
    return Conversation.objects.create(
        rule=rule,
        project=rule.project,
        participant=person,
        state=state,
        current_field=field if state == "open" else "",
        started_at=started,
        expires_at=started + datetime.timedelta(hours=24),
    )


@pytest.mark.django_db(transaction=True)
def test_the_inbox_shows_the_text_surveys_open_now(live_server, page):
    SHOTS.mkdir(parents=True, exist_ok=True)
    project = ProjectFactory(title="Sleep and Mood", always_open=True)
    ProviderLinkFactory(project=project, provider="sandbox")
    ana = ParticipantFactory(project=project, record_id="7", first_name="Ana")
    ben = ParticipantFactory(project=project, record_id="8", first_name="Ben")
    cy = ParticipantFactory(project=project, record_id="9", first_name="Cy")
    rule = MessageRuleFactory(
        project=project,
        name="Weekly check-in by text",
        kind=MessageRule.Kind.TEXT_SURVEY,
        instrument="text_checkin",
    )
    TextSurvey.objects.create(
        rule=rule, metadata=SANDBOX_PROJECTS[101].metadata, label="Text check-in"
    )
    _open(rule, ana, started=datetime.datetime(2026, 3, 4, 20, 5, tzinfo=datetime.UTC))
    _open(rule, ben, state="waiting")
    Reply.objects.create(
        project=project,
        participant=cy,
        provider="sandbox",
        body="Running late for my visit",
        received_at=timezone.now(),
    )
    editor = UserFactory(email="coordinator@uni.test", time_zone="America/New_York")
    MembershipFactory(project=project, user=editor, role=Membership.Role.EDITOR)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("E-mail").fill(editor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, editor.email)

    page.goto(f"{live_server.url}/projects/{project.pk}/inbox/")
    expect(page.locator("#inbox-table")).to_contain_text("Running late for my visit")
    section = page.locator("#open-surveys")
    expect(page.locator("#open-surveys-count")).to_contain_text(
        "2 participants answering a text survey"
    )
    ana_row = section.locator("tr[data-conversation]").filter(has_text="Record 7")
    expect(ana_row).to_contain_text("Did you go for a walk this week?")
    expect(ana_row).to_contain_text("Mar 4, 2026 3:05 p.m.")  # 20:05 UTC in New York
    expect(section.locator("tr").filter(has_text="Record 8")).to_contain_text(
        "Waiting for the start word YES"
    )
    page.screenshot(path=str(SHOTS / "inbox-open-surveys.png"), full_page=True)

    # A survey opens while the page is open: the list refreshes by itself.
    _open(rule, cy, field="tc_rested")
    expect(section.locator("tr").filter(has_text="Record 9")).to_contain_text(
        "I felt rested most mornings.", timeout=30_000
    )
    ana_row.get_by_role("link", name="Record 7").click()
    expect(page).to_have_url(f"{live_server.url}/projects/{project.pk}/participants/{ana.pk}/")
