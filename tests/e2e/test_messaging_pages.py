"""The messaging pages as a coordinator sees them, in Chromium: a sandbox project with a synced
participant list, a message of each schedule kind, a hand send whose texts came out sent,
failed, held, unconfirmed and skipped, and a second send still going out. Every page is
screenshotted into /tmp/shots (to look at) and checked for what the review fixed."""

import datetime
import re
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from messaging.models import Message, Send
from messaging.services import outbox, rules
from projects.models import Participant
from projects.sandbox import store
from projects.sandbox.data import DEMO_TOKEN
from projects.services import links, mapping, sync
from tests.e2e.helpers import pass_second_factor
from tests.factories import (
    MessageRuleFactory,
    ParticipantFactory,
    ProjectFactory,
    RedcapInstanceFactory,
    ServerAdminFactory,
    UserFactory,
)
from tests.projects.conftest import MAPPING

SHOTS = Path("/tmp/shots")
PASSWORD = "a-good-long-password"  # UserFactory's
SCHEDULES = {
    "once": "Once, at a date and time",
    "recurring": "Recurring",
    "relative": "Relative to a REDCap date",
    "manual": "Only when sent by hand",
}


def _sign_in(page, base, user):
    page.context.clear_cookies()
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    pass_second_factor(page, user.email)
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def _shot(page, name):
    page.screenshot(path=str(SHOTS / f"messaging-{name}.png"), full_page=True)


def _rules(project, owner):
    today = timezone.localdate()
    base = {
        "instrument": "baseline_survey",
        "event": "",
        "recipients": "all",
        "filter_logic": "",
        "record_ids": [],
        "send_time": datetime.time(10, 0),
        "recur_days": [],
        "start_date": today,
        "until_date": None,
        "max_occurrences": None,
        "once_date": None,
        "date_field": "",
        "offset_days": 0,
        "stop_when_complete": True,
        "max_sends": None,
    }
    specs = [
        ("invitation", "Baseline invitation", "once", {"once_date": today + datetime.timedelta(3)}),
        ("reminder", "Weekly check-in", "recurring", {"recur_days": [0, 3], "max_occurrences": 8}),
        ("follow_up", "Week-one follow-up", "relative", {"date_field": "enrollment_date"}),
        ("alert", "Clinic closed", "manual", {"instrument": "", "stop_when_complete": False}),
    ]
    made = {}
    for kind, name, schedule, extra in specs:
        body = (
            "The study clinic is closed today. We’ll text you a new time."
            if kind == "alert"
            else "Hi [first_name], please take our survey: [survey-link]"
        )
        data = {**base, "kind": kind, "name": name, "body": body, "schedule": schedule, **extra}
        rule = rules.rule_save(project=project, actor=owner, data=data)
        if schedule != "once":
            rule = rules.rule_set_status(rule=rule, status="active", actor=owner)
        made[schedule] = rule
    return made


@pytest.mark.django_db(transaction=True)
def test_the_messaging_pages_read_well(live_server, page, settings):
    from messaging.services.provider_links import provider_link_save

    store.reset()
    settings.SMS_GATEWAY_OVERRIDE = ""  # the sandbox provider delivers to the phone simulator
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    base = live_server.url
    owner = UserFactory(
        email="owner@uni.test", full_name="Olivia Owner", time_zone="America/Los_Angeles"
    )
    admin = ServerAdminFactory(email="admin@uni.test", full_name="Alex Admin")
    instance = RedcapInstanceFactory(name="Sandbox REDCap", api_url=f"{base}/sandbox/redcap/api/")
    project = ProjectFactory(
        redcap_instance=instance,
        redcap_project_id=101,
        owner=owner,
        title="Healthy Habits",
        always_open=True,
    )
    unlinked = ProjectFactory(title="Sleep and Mood", owner=owner, account=project.account)
    links.redcap_link_set(project=project, token=DEMO_TOKEN, actor=owner)
    provider_link_save(
        project=project, provider="sandbox", config={}, rate_per_second=50, actor=owner
    )
    mapping.field_mapping_save(project=project, actor=owner, data=dict(MAPPING))
    sync.sync_run_start(project=project, actor=owner)
    messages_url = f"{base}/projects/{project.pk}/messages/"

    # --- Empty list, then the form in each schedule kind -----------------------------------
    _sign_in(page, base, owner)
    page.goto(messages_url)
    expect(page.get_by_text("No messages yet")).to_be_visible()
    expect(page.get_by_role("link", name="New message")).to_have_count(1)
    _shot(page, "01-list-empty")
    page.get_by_role("link", name="New message").click()
    page.get_by_label("Text", exact=True).fill("Hi [first_name], take our survey: [survey-link]")
    expect(page.locator("#preview-cost")).to_have_text(
        re.compile(r"^\d+ messages \([\d,]+ left this month\)$")
    )
    for key, label in SCHEDULES.items():
        page.get_by_label(label).check()
        expect(page.locator("#preview-text")).to_contain_text("take our survey: https://")
        _shot(page, f"02-form-{key}")
    page.get_by_label(SCHEDULES["once"]).check()
    expect(page.locator('label[for="id_once_date"]')).to_have_text("Date")
    page.get_by_label(SCHEDULES["recurring"]).check()
    expect(page.locator('label[for="id_start_date"]')).to_have_text("From")
    mon, sun = page.get_by_label("Mon"), page.get_by_label("Sun")
    assert mon.bounding_box()["y"] == sun.bounding_box()["y"]  # the weekdays sit on one line
    page.get_by_label(SCHEDULES["manual"]).check()
    expect(page.get_by_text("It goes out only when someone presses “Send now”")).to_be_visible()
    expect(page.locator("#sending-hours")).to_contain_text("at any hour, every day")

    # --- A scene with texts in every state --------------------------------------------------
    made = _rules(project, owner)
    send = outbox.send_now(rule=made["manual"], actor=owner)
    texts = list(Message.objects.filter(send=send).order_by("pk"))
    total = len(texts)
    for chunk, status, error in [
        (texts[:2], "failed", "The number is not a mobile phone (Twilio 21614)."),
        (texts[2:4], "held", ""),
        (texts[4:5], "skipped", "The participant opted out."),
        (texts[5:6], "unknown", "The provider did not answer in time."),
    ]:
        Message.objects.filter(pk__in=[m.pk for m in chunk]).update(status=status, error=error)
    going = Send.objects.create(project=project, rule=made["once"], created_by=owner, total=6)
    now = timezone.now()
    for i, person in enumerate(Participant.objects.filter(project=project, issue="")[:6]):
        Message.objects.create(
            project=project,
            participant=person,
            rule=made["once"],
            send=going,
            occurrence=f"send-{going.pk}",
            dedup_key=f"s{going.pk}:p{person.pk}",
            kind="invitation",
            status="sent" if i < 2 else "queued",
            due_at=now + datetime.timedelta(days=1),  # waits: the sender leaves it queued
            not_before=now + datetime.timedelta(days=1),
            sent_at=now if i < 2 else None,
        )

    page.goto(messages_url)
    expect(page.locator("#rules")).to_contain_text("Clinic closed")
    expect(page.get_by_role("link", name="2 held")).to_be_visible()
    expect(page.get_by_role("link", name="1 unconfirmed")).to_be_visible()
    _shot(page, "03-list-full")
    page.get_by_role("link", name="Clinic closed").first.click()
    expect(page.get_by_text(f"{total} participants, by Olivia Owner")).to_be_visible()
    _shot(page, "04-rule")
    page.get_by_role("link", name=re.compile(r"\d+:\d+ [ap]\.m\.")).first.click()

    # --- Progress: a finished send with held texts, and one still going --------------------
    expect(page.locator("#progress-label")).to_have_text(
        f"{total - 2} of {total} done ({int(100 * (total - 2) / total)}%)"
    )
    assert page.locator("progress").bounding_box()["height"] >= 16
    expect(page.get_by_text("Held texts wait because")).to_be_visible()
    expect(page.locator("[data-field=unknown]")).to_have_text("1")
    _shot(page, "05-progress-done")
    page.goto(f"{base}/projects/{project.pk}/sends/{going.pk}/")
    expect(page.locator("h2")).to_contain_text("Sending to 6 participants")
    expect(page.locator("#progress-label")).to_have_text("2 of 6 done (33%)")
    expect(page.get_by_text("Held texts wait because")).to_be_hidden()
    _shot(page, "06-progress-going")

    # --- The log, filtered, with cancel buttons --------------------------------------------
    page.get_by_role("link", name="See these texts").click()
    expect(page.locator("#log-count")).to_contain_text("6 texts match")
    expect(page.locator("#log-count")).to_contain_text("America/Los_Angeles")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(4)
    _shot(page, "07-log-send")
    page.goto(f"{base}/projects/{project.pk}/log/")
    page.locator("#f-status").select_option("failed,undelivered")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#log tbody tr")).to_have_count(2)
    _shot(page, "08-log-failed")
    page.goto(f"{base}/projects/{project.pk}/log/?since=2026-02-30&status=delivered")
    expect(page.get_by_text("No texts match these filters")).to_be_visible()
    _shot(page, "09-log-empty")

    # --- A participant: back link, ad-hoc preview --------------------------------------------
    person = texts[0].participant
    page.goto(f"{base}/projects/{project.pk}/participants/{person.pk}/")
    expect(page.get_by_role("link", name="← All participants")).to_be_visible()
    page.get_by_label("Text", exact=True).fill("Hi [first_name], we’ll call you soon.")
    expect(page.locator("#adhoc-preview-text")).to_contain_text(f"Hi {person.first_name}, we’ll")
    expect(page.locator("#adhoc-preview-segments")).to_have_text("1")
    expect(page.locator("#adhoc-preview-encoding")).to_contain_text("UCS-2")
    _shot(page, "10-participant")

    # --- The phones: an empty phone is readable ------------------------------------------------
    page.goto(f"{base}/projects/{project.pk}/phones/")
    empty = page.locator(".phone-screen .muted").first
    expect(empty).to_have_text("No texts yet.")
    expect(empty).not_to_have_css("color", "rgb(185, 196, 208)")  # was pale grey on white
    _shot(page, "11-phones")

    # --- The dashboard, as the coordinator and as an administrator ----------------------------
    page.goto(f"{base}/")
    row = page.locator("#dashboard-projects tr", has_text="Healthy Habits")
    expect(row).to_contain_text("Ready")
    expect(row).to_contain_text("3 active messages")  # the "once" one is a draft
    expect(page.locator("#dashboard-projects tr", has_text="Sleep and Mood")).to_contain_text(
        "0 of 4 done"
    )
    _shot(page, "12-dashboard-owner")
    row.get_by_role("link", name="2 held (over quota)").click()
    expect(page.locator("#log tbody tr")).to_have_count(2)
    page.goto(f"{base}/projects/{unlinked.pk}/messages/")
    expect(page.locator("#setup-missing")).to_contain_text("link REDCap")
    _shot(page, "13-list-not-set-up")

    # --- The overview's "Texts" card: counts, a fortnight of sent texts, the empty state ---------
    people = list(Participant.objects.filter(project=project, issue="")[:6])
    for ago, n in [(1, 3), (2, 5), (4, 2), (5, 6), (8, 4), (9, 1), (12, 2)]:
        for i in range(n):
            moment = now - datetime.timedelta(days=ago, minutes=i)
            Message.objects.create(
                project=project,
                participant=people[i % len(people)],
                rule=made["recurring"],
                occurrence=f"past-{ago}-{i}",
                dedup_key=f"past:{ago}:{i}",
                kind="reminder",
                status="delivered",
                due_at=moment,
                not_before=moment,
                sent_at=moment,
            )
    page.goto(f"{base}/projects/{project.pk}/")
    card = page.locator("#texting-summary")
    expect(card.locator("[data-field=held]")).to_have_text("2")
    expect(card.locator("[data-field=failed]")).to_have_text("2")
    expect(card.locator("svg.chart rect.bar")).to_have_count(14)
    expect(card).to_contain_text("3 active messages")
    expect(card).to_contain_text("Times are in America/Los_Angeles")
    _shot(page, "15-overview-texts")
    card.get_by_role("link", name="held (over quota)").click()
    expect(page.locator("#log tbody tr")).to_have_count(2)
    expect(page.locator("#f-status")).to_have_value("held")
    page.goto(f"{base}/projects/{unlinked.pk}/")
    expect(page.locator("#texting-empty")).to_contain_text("No texts yet")
    expect(page.locator("#texting-empty").get_by_role("link", name="Messages tab")).to_be_visible()
    _shot(page, "16-overview-no-texts")
    _sign_in(page, base, admin)
    expect(page.get_by_role("heading", name="All projects")).to_be_visible()
    expect(page.locator("#dashboard-projects tr", has_text="Healthy Habits")).to_contain_text(
        "2 failed this week"
    )
    _shot(page, "14-dashboard-admin")
    # The icon the tab shows.
    icon = page.request.get(f"{base}/static/img/favicon.svg")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")


SLOW_OLD_PREVIEWS = """
(() => {
  const realFetch = window.fetch;
  window.fetch = (url, options) => {
    const body = options && options.body instanceof FormData ? options.body.get("body") : null;
    const answer = realFetch(url, options);
    if (body === "Old text") {
      return answer.then((r) => new Promise((ok) => setTimeout(() => ok(r), 1500)));
    }
    return answer;
  };
})();
"""


@pytest.mark.django_db(transaction=True)
def test_a_slow_preview_of_an_older_text_does_not_overwrite_the_newer_one(live_server, page):
    owner = UserFactory(email="owner@uni.test")
    project = ProjectFactory(owner=owner)
    page.add_init_script(SLOW_OLD_PREVIEWS)
    _sign_in(page, live_server.url, owner)
    page.goto(f"{live_server.url}/projects/{project.pk}/messages/new/")
    body = page.get_by_label("Text", exact=True)
    body.fill("Old text")
    page.wait_for_timeout(400)  # its preview is asked for, and answers late
    body.fill("New text")
    expect(page.locator("#preview-text")).to_have_text("New text")
    page.wait_for_timeout(1800)  # the old answer has arrived by now
    expect(page.locator("#preview-text")).to_have_text("New text")


@pytest.mark.django_db(transaction=True)
def test_progress_polling_gives_up_when_answers_stop_making_sense(live_server, page):
    """Signed out mid-send, every poll is answered with the sign-in page: the page used to ask
    again every 3 seconds for as long as it stayed open."""
    owner = UserFactory(email="owner@uni.test")
    project = ProjectFactory(owner=owner)
    rule = MessageRuleFactory(project=project)
    send = Send.objects.create(project=project, rule=rule, created_by=owner, total=3)
    for _ in range(3):
        person = ParticipantFactory(project=project)
        Message.objects.create(
            project=project,
            participant=person,
            rule=rule,
            send=send,
            occurrence="x",
            dedup_key=f"poll-{person.pk}",
            due_at=timezone.now() + datetime.timedelta(days=1),
            not_before=timezone.now() + datetime.timedelta(days=1),
        )
    polls = []

    def answer_with_html(route):
        polls.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><p>Sign in")

    _sign_in(page, live_server.url, owner)
    page.route(re.compile(r".*/sends/\d+/\?format=json$"), answer_with_html)
    page.goto(f"{live_server.url}/projects/{project.pk}/sends/{send.pk}/")
    page.wait_for_timeout(16_000)
    assert len(polls) == 5
    page.wait_for_timeout(3_500)
    assert len(polls) == 5
