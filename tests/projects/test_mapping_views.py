"""The field-mapping page, against the sandbox's data dictionary over a live server."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from portal.models import AuditEvent
from projects.forms import FieldMappingForm
from projects.models import FieldMapping, Membership, RedcapLink
from projects.sandbox import services as sandbox
from projects.services import mapping
from tests.factories import MembershipFactory, ProjectFactory
from tests.projects.conftest import MAPPING


def url(project):
    return reverse("project-fields", args=[project.pk])


def form_data(**overrides):
    data = {k: v for k, v in MAPPING.items() if k != "event"}
    data.update(overrides)
    return data


def test_the_form_offers_the_fields_of_the_data_dictionary(as_user, researcher, linked_project):
    page = as_user(researcher).get(url(linked_project)).content.decode()
    assert '<option value="phone">phone — Mobile phone</option>' in page
    assert "sms_consent — May we send you text messages?" in page
    assert "enrollment_date — Enrollment date" in page  # a date field, for schedules
    assert "bl_intro" not in page  # a descriptive field holds no data
    assert "sms_consent</span>: 1 = Yes; 0 = No" in page  # the coded values, to pick from
    assert "Event holding these fields" not in page  # a classic project has no events


def test_an_owner_maps_the_fields_and_is_sent_to_sync(as_user, researcher, linked_project):
    response = as_user(researcher).post(url(linked_project), form_data(), follow=True)
    assert response.redirect_chain[-1][0] == reverse(
        "project-participants", args=[linked_project.pk]
    )
    assert "Fields mapped. Next, sync the participants." in response.content.decode()
    saved = FieldMapping.objects.get(project=linked_project)
    assert (saved.phone_field, saved.consent_field, saved.date_fields) == (
        "phone",
        "sms_consent",
        ["enrollment_date"],
    )
    page = as_user(researcher).get(url(linked_project)).content.decode()
    assert '<option value="phone" selected>' in page  # the saved mapping is shown again


def test_a_tampered_field_name_is_refused(as_user, researcher, linked_project):
    page = (
        as_user(researcher)
        .post(url(linked_project), form_data(phone_field="ssn", time_zone_field="bl_goal2"))
        .content.decode()
    )
    assert page.count("Select a valid choice.") == 2
    assert not FieldMapping.objects.exists()


def test_a_consent_value_that_is_not_a_coded_value_is_refused_naming_the_codes(
    as_user, researcher, linked_project
):
    page = as_user(researcher).post(url(linked_project), form_data(consent_value="yes"))
    assert "“yes” is not one of the coded values of sms_consent: 1 (Yes), 0 (No)." in (
        page.content.decode()
    )
    assert not FieldMapping.objects.exists()


def test_an_opt_out_value_that_is_not_one_of_the_checkbox_codes_is_refused(
    as_user, researcher, linked_project
):
    page = as_user(researcher).post(url(linked_project), form_data(optout_value="yes"))
    assert "“yes” is not one of the coded values of optout: 1 (Stop texting me)." in (
        page.content.decode()
    )
    assert not FieldMapping.objects.exists()


def test_the_opt_out_field_and_its_value_are_saved_and_shown_again(
    as_user, researcher, linked_project
):
    client = as_user(researcher)
    client.post(url(linked_project), form_data(optout_field="withdrawn", withdrawn_logic=""))
    saved = FieldMapping.objects.get(project=linked_project)
    assert (saved.optout_field, saved.optout_value) == ("withdrawn", "1")
    assert "withdrawn" in saved.redcap_fields
    page = client.get(url(linked_project)).content.decode()
    assert '<option value="withdrawn" selected>' in page
    assert 'name="optout_value" value="1"' in page


def test_withdrawn_logic_redcap_rejects_is_refused_on_its_field(
    as_user, researcher, linked_project
):
    page = as_user(researcher).post(
        url(linked_project), form_data(withdrawn_logic="[withdrawn] = = '1'")
    )
    text = page.content.decode()
    assert "withdrawn" in text and "has-error" in text
    assert not FieldMapping.objects.exists()


def test_a_longitudinal_project_must_choose_the_event(as_user, researcher, longitudinal_project):
    client = as_user(researcher)
    page = client.get(url(longitudinal_project)).content.decode()
    assert "Event holding these fields" in page
    assert '<option value="baseline_arm_1">Baseline</option>' in page
    response = client.post(url(longitudinal_project), form_data(withdrawn_logic=""))
    assert "This field is required." in response.content.decode()
    assert not FieldMapping.objects.exists()
    response = client.post(
        url(longitudinal_project), form_data(withdrawn_logic="", event="baseline_arm_1")
    )
    assert response.status_code == 302
    assert FieldMapping.objects.get().event == "baseline_arm_1"


def test_the_service_also_requires_the_event_of_a_longitudinal_project(
    researcher, longitudinal_project
):
    with pytest.raises(ValidationError) as exc:
        mapping.field_mapping_save(
            project=longitudinal_project,
            actor=researcher,
            data={**MAPPING, "withdrawn_logic": "", "event": "week_9_arm_1"},
        )
    assert "choose the event that holds these fields" in exc.value.message_dict["event"][0]


def test_a_classic_project_ignores_a_posted_event(researcher, linked_project):
    saved = mapping.field_mapping_save(
        project=linked_project, actor=researcher, data={**MAPPING, "event": "baseline_arm_1"}
    )
    assert saved.event == ""


def test_a_failed_mapping_leaves_the_project_time_zone_alone(researcher, linked_project):
    before = linked_project.time_zone
    with pytest.raises(ValidationError):
        mapping.field_mapping_save(
            project=linked_project,
            actor=researcher,
            data={**MAPPING, "phone_field": "nope", "time_zone": "Pacific/Honolulu"},
        )
    assert linked_project.time_zone == before
    linked_project.refresh_from_db()
    assert linked_project.time_zone == before


def test_viewers_see_the_mapping_but_cannot_save_it(as_user, linked_project):
    viewer = MembershipFactory(project=linked_project, role=Membership.Role.VIEWER).user
    page = as_user(viewer).get(url(linked_project)).content.decode()
    assert "Viewers cannot change the mapping." in page
    assert "Save mapping" not in page


def test_an_editor_may_map(as_user, linked_project):
    editor = MembershipFactory(project=linked_project, role=Membership.Role.EDITOR).user
    assert as_user(editor).post(url(linked_project), form_data()).status_code == 302
    assert FieldMapping.objects.filter(project=linked_project).exists()


def test_a_dictionary_redcap_will_not_give_is_explained(as_user, researcher, linked_project):
    from projects.crypto import encrypt

    RedcapLink.objects.update(token_encrypted=encrypt("0123456789ABCDEF" * 2))
    page = as_user(researcher).get(url(linked_project)).content.decode()
    assert "The data dictionary could not be read from REDCap" in page
    assert reverse("project-redcap", args=[linked_project.pk]) in page


def test_without_a_redcap_link_the_page_sends_you_to_link_it(as_user, researcher, sandbox_project):
    response = as_user(researcher).get(url(sandbox_project), follow=True)
    assert response.redirect_chain[-1][0] == reverse("project-redcap", args=[sandbox_project.pk])
    assert "REDCap API token first; the fields come from REDCap." in response.content.decode()


# --- The service enforces the kinds of field the form offers -----------------------------------
@pytest.fixture
def demo_dictionary():
    """PID 101's data dictionary, read in-process (no REDCap call needed)."""
    return sandbox.dictionary_from_sandbox(project=ProjectFactory.build(redcap_project_id=101))


@pytest.mark.parametrize(
    ("attr", "value", "message"),
    [
        (
            "phone_field",
            "sms_consent",
            "sms_consent is a radio field; the mobile number must be in a text field.",
        ),
        (
            "phone_field",
            "wk_notes",
            "wk_notes is a notes field; the mobile number must be in a text field.",
        ),
        (
            "consent_field",
            "wk_notes",
            "wk_notes is a notes field; consent to texts must be in a yes/no, true/false, radio, "
            "dropdown, checkbox or text field.",
        ),
        (
            "time_zone_field",
            "optout",
            "optout is a checkbox field; the time zone must be in a text field.",
        ),
        (
            "first_name_field",
            "bl_mood",
            "bl_mood is a radio field; the first name must be in a text field.",
        ),
        (
            "optout_field",
            "tz",
            "tz is a text field; the opt-out flag must be in a yes/no, true/false, radio, "
            "dropdown or checkbox field.",
        ),
        (
            "date_fields",
            ["bl_sleep_hours"],
            "bl_sleep_hours is not a date field, so messages cannot be scheduled from it: choose "
            "a text field validated as a date (Y-M-D, M-D-Y or D-M-Y).",
        ),
    ],
)
def test_the_service_refuses_a_field_of_the_wrong_kind(
    researcher, demo_dictionary, attr, value, message
):
    project = ProjectFactory(redcap_project_id=101, owner=researcher)
    before = AuditEvent.objects.count()
    data = {**MAPPING, "withdrawn_logic": "", attr: value}
    if attr == "consent_field":
        data["consent_value"] = "x"  # a text field takes any value
    with pytest.raises(ValidationError) as exc:
        mapping.field_mapping_save(
            project=project, actor=researcher, data=data, dictionary=demo_dictionary
        )
    assert exc.value.message_dict[attr] == [message]
    assert not FieldMapping.objects.exists()
    assert AuditEvent.objects.count() == before


@pytest.mark.parametrize(
    "attr",
    ["phone_field", "consent_field", "time_zone_field", "first_name_field", "optout_field"],
)
def test_the_service_accepts_exactly_the_fields_the_form_offers(researcher, demo_dictionary, attr):
    """Every field of the dictionary, tried in turn: the service takes it for `attr` if and only
    if the mapping form offers it there."""
    project = ProjectFactory(redcap_project_id=101, owner=researcher)
    form = FieldMappingForm(dictionary=demo_dictionary)
    offered = {name for name, _ in form.fields[attr].choices if name}
    accepted = set()
    for name in demo_dictionary.fields:
        data = {**MAPPING, "withdrawn_logic": "", attr: name}
        if attr == "consent_field":
            data["consent_value"] = (demo_dictionary.coded_values(name) or [("yes", "")])[0][0]
        if attr == "optout_field":
            data["optout_value"] = (demo_dictionary.coded_values(name) or [("1", "")])[0][0]
        try:
            mapping.field_mapping_save(
                project=project, actor=researcher, data=data, dictionary=demo_dictionary
            )
        except ValidationError as exc:
            assert attr in exc.message_dict, exc.message_dict  # refused for `attr`
        else:
            accepted.add(name)
    assert accepted == offered
    assert offered  # the demo has fields of every kind


def test_the_service_accepts_as_dates_exactly_the_fields_the_form_offers(
    researcher, demo_dictionary
):
    project = ProjectFactory(redcap_project_id=101, owner=researcher)
    offered = {
        name
        for name, _ in FieldMappingForm(dictionary=demo_dictionary).fields["date_fields"].choices
    }
    accepted = set()
    for name in demo_dictionary.fields:
        try:
            mapping.field_mapping_save(
                project=project,
                actor=researcher,
                data={**MAPPING, "withdrawn_logic": "", "date_fields": [name]},
                dictionary=demo_dictionary,
            )
        except ValidationError as exc:
            assert "date_fields" in exc.message_dict, exc.message_dict
        else:
            accepted.add(name)
    assert accepted == offered == {"enrollment_date", "tc_last_checkup"}


# --- Longitudinal: the mapped fields must be in the chosen event ----------------------------------
@pytest.fixture
def longitudinal_dictionary():
    """PID 102's dictionary: the contact form is in the baseline event only, the weekly check-in
    in the week 1 and week 2 events."""
    return sandbox.dictionary_from_sandbox(project=ProjectFactory.build(redcap_project_id=102))


def test_fields_outside_the_chosen_event_are_refused_naming_field_and_event(
    researcher, longitudinal_dictionary
):
    project = ProjectFactory(redcap_project_id=102, owner=researcher)
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as exc:
        mapping.field_mapping_save(
            project=project,
            actor=researcher,
            data={**MAPPING, "withdrawn_logic": "", "event": "week_1_arm_1"},
            dictionary=longitudinal_dictionary,
        )
    errors = exc.value.message_dict
    assert errors["phone_field"] == [
        "phone is on the form “contact”, which the event “Week 1” (week_1_arm_1) does not have, "
        "so REDCap would export it blank for every record. Choose the event that holds that "
        "form, or another field."
    ]
    for attr, name in [
        ("consent_field", "sms_consent"),
        ("time_zone_field", "tz"),
        ("first_name_field", "first_name"),
        ("optout_field", "optout"),
        ("date_fields", "enrollment_date"),
    ]:
        assert errors[attr][0].startswith(
            f"{name} is on the form “contact”, which the event “Week 1” (week_1_arm_1) does not"
        )
    assert not FieldMapping.objects.exists()
    assert AuditEvent.objects.count() == before


def test_one_field_from_another_event_is_named_alone(researcher, longitudinal_dictionary):
    project = ProjectFactory(redcap_project_id=102, owner=researcher)
    with pytest.raises(ValidationError) as exc:
        mapping.field_mapping_save(
            project=project,
            actor=researcher,
            data={
                **MAPPING,
                "withdrawn_logic": "",
                "event": "baseline_arm_1",
                "first_name_field": "wk_barrier_other",  # a text field of the weekly check-in
            },
            dictionary=longitudinal_dictionary,
        )
    assert exc.value.message_dict == {
        "first_name_field": [
            "wk_barrier_other is on the form “weekly_checkin”, which the event “Baseline” "
            "(baseline_arm_1) does not have, so REDCap would export it blank for every record. "
            "Choose the event that holds that form, or another field."
        ]
    }
    assert not FieldMapping.objects.exists()


def test_the_mapping_page_reads_the_form_event_mapping_from_redcap(
    as_user, researcher, longitudinal_project
):
    client = as_user(researcher)
    response = client.post(
        url(longitudinal_project), form_data(withdrawn_logic="", event="week_2_arm_1")
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "phone is on the form “contact”, which the event “Week 2” (week_2_arm_1) does not have"
        in page
    )
    assert not FieldMapping.objects.exists()
    response = client.post(
        url(longitudinal_project), form_data(withdrawn_logic="", event="baseline_arm_1")
    )
    assert response.status_code == 302
    assert FieldMapping.objects.get().event == "baseline_arm_1"
