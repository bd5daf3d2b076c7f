import datetime
from types import SimpleNamespace

import pytest

from messaging import piping, segments

MAPPING = SimpleNamespace(first_name_field="fname", date_fields=["enrollment_date"])


def test_it_pipes_mapped_fields_and_survey_links():
    context = piping.PipingContext(
        values={"first_name": "Ana", "enrollment_date": "2026-12-01"},
        survey_link="https://r.edu/s/?s=X",
    )
    text = piping.render("Hi [first_name], since [enrollment_date]: [survey-link]", context)
    assert text == "Hi Ana, since 2026-12-01: https://r.edu/s/?s=X"


def test_piped_values_are_not_piped_again():
    context = piping.PipingContext(values={"first_name": "[survey-link]"}, survey_link="SECRET")
    assert piping.render("Hi [first_name]", context) == "Hi [survey-link]"


def test_only_mapped_fields_may_be_piped():
    allowed = piping.allowed_tokens(MAPPING)
    assert {"first_name", "fname", "enrollment_date", "survey-link", "survey-queue-link"} <= allowed
    assert piping.unknown_tokens("Hi [first_name] [dob] [diagnosis]", MAPPING) == [
        "diagnosis",
        "dob",
    ]
    assert piping.unknown_tokens("[first_name]", None) == ["first_name"]


# --- Dates read like dates ------------------------------------------------------------------
TODAY = datetime.date(2026, 10, 1)


@pytest.mark.parametrize(
    ("raw", "readable"),
    [
        ("2026-10-28", "Wed, Oct 28"),
        ("2026-01-05", "Mon, Jan 5"),
        ("2027-01-05", "Tue, Jan 5, 2027"),
        ("2025-12-31", "Wed, Dec 31, 2025"),
        ("2026-10-28 14:30", "Wed, Oct 28 at 2:30 PM"),
        ("2026-10-28 14:30:59", "Wed, Oct 28 at 2:30 PM"),
        ("2026-10-28 00:05", "Wed, Oct 28 at 12:05 AM"),
        ("2026-10-28 12:00", "Wed, Oct 28 at 12:00 PM"),
        ("2027-05-09 09:07", "Sun, May 9, 2027 at 9:07 AM"),
    ],
)
def test_redcap_dates_are_piped_as_a_participant_reads_them(raw, readable):
    assert piping.readable_date(raw, today=TODAY) == readable


@pytest.mark.parametrize("raw", ["2026-02-30", "2026-10-28 25:00", "28/10/2026", "soon", "", "7"])
def test_a_value_that_is_not_a_redcap_date_is_piped_as_it_is(raw):
    assert piping.readable_date(raw, today=TODAY) == raw


def test_the_longest_readable_date_stays_plain_gsm7_within_the_rule_checks_allowance():
    longest = piping.readable_date("2027-09-29 12:30", today=TODAY)
    assert longest == "Wed, Sep 29, 2027 at 12:30 PM"
    assert len(longest) <= 30  # rules._validate_body pipes 30 characters per token
    assert segments.count(longest).encoding == "GSM-7"


def test_participant_values_pipe_dates_readably_and_keep_the_rest():
    participant = SimpleNamespace(
        record_id="12",
        first_name="Ana",
        dates={"enrollment_date": "2026-10-28", "visit": "2027-01-05 09:00"},
    )
    values = piping.participant_values(participant, MAPPING, today=TODAY)
    assert values == {
        "record_id": "12",
        "first_name": "Ana",
        "fname": "Ana",
        "enrollment_date": "Wed, Oct 28",
        "visit": "Tue, Jan 5, 2027 at 9:00 AM",
    }
    assert participant.dates["enrollment_date"] == "2026-10-28"  # scheduling still reads ISO


@pytest.mark.django_db
def test_the_preview_shows_and_counts_exactly_the_text_the_participant_receives(
    researcher, as_user, fake_redcap
):
    """The preview and the sender share the renderer, so the date, the length and the segments
    in the preview are the ones that go out (the preview pipes the synced copy, the text what
    REDCap holds at release: the same values here)."""
    from django.urls import reverse
    from django.utils import timezone

    from messaging import sender
    from messaging.gateways import locmem
    from messaging.services import outbox
    from tests.factories import (
        FieldMappingFactory,
        MessageRuleFactory,
        ParticipantFactory,
        ProjectFactory,
        ProviderLinkFactory,
    )

    project = ProjectFactory(owner=researcher, always_open=True)
    ProviderLinkFactory(project=project)
    FieldMappingFactory(project=project)
    this_year = timezone.localdate().year
    ana = ParticipantFactory(
        project=project, first_name="Ana", dates={"enrollment_date": f"{this_year}-10-28"}
    )
    redcap = fake_redcap(project)
    redcap.redcap_records[ana.record_id] = {"first_name": "Ana", **ana.dates}
    # 160 GSM-7 characters with the ISO date (one segment), 161 with "Wed, Oct 28" (two).
    body = "Hi [first_name], you joined on [enrollment_date]. " + "x" * 126
    rule = MessageRuleFactory(project=project, body=body)

    preview = (
        as_user(researcher)
        .post(reverse("rule-preview", args=[project.pk]), {"body": body, "participant": ana.pk})
        .json()
    )
    weekday = piping.WEEKDAYS[datetime.date(this_year, 10, 28).weekday()]
    assert preview["text"].startswith(f"Hi Ana, you joined on {weekday}, Oct 28. ")
    assert preview["characters"] == 161 and preview["segments"] == 2

    outbox.send_now(rule=rule, actor=researcher)
    sender.run(max_seconds=10)
    (sent,) = locmem.outbox
    assert sent.body == preview["text"]
    assert segments.count(sent.body).segments == preview["segments"]


@pytest.mark.django_db
@pytest.mark.parametrize(("date_fields", "shown"), [(["enrollment_date"], True), ([], False)])
def test_the_message_form_says_how_dates_read_when_the_project_has_date_fields(
    researcher, as_user, date_fields, shown
):
    from django.urls import reverse

    from tests.factories import FieldMappingFactory, ProjectFactory

    project = ProjectFactory(owner=researcher)
    FieldMappingFactory(project=project, date_fields=date_fields)
    page = as_user(researcher).get(reverse("rule-create", args=[project.pk])).content.decode()
    assert ("Dates are piped as participants read them: “Wed, Oct 28”" in page) is shown


def test_missing_values_names_the_piped_fields_that_are_blank_for_this_participant():
    context = piping.PipingContext(values={"first_name": "Ana", "enrollment_date": ""})
    body = "Hi [first_name], you joined on [enrollment_date]: [survey-link] [visit]"
    assert piping.missing_values(body, context) == ["enrollment_date", "visit"]
    assert piping.missing_values("Hi [first_name]", context) == []


@pytest.mark.django_db
def test_the_preview_warns_when_a_piped_date_is_blank_for_the_chosen_participant(
    researcher, as_user
):
    from django.urls import reverse

    from tests.factories import FieldMappingFactory, ParticipantFactory, ProjectFactory

    project = ProjectFactory(owner=researcher)
    FieldMappingFactory(project=project)
    yael = ParticipantFactory(project=project, first_name="Yael", dates={})
    url = reverse("rule-preview", args=[project.pk])
    body = "Hi [first_name], you joined on [enrollment_date]. [dob]"
    data = as_user(researcher).post(url, {"body": body, "participant": yael.pk}).json()
    assert data["text"] == "Hi Yael, you joined on . "
    assert data["missing"] == ["enrollment_date"]  # [dob] is reported as unknown instead
    assert data["unknown"] == ["dob"]
    field_names = as_user(researcher).post(url, {"body": body}).json()
    assert field_names["missing"] == []  # "(field names)" shows the names, nothing is blank
