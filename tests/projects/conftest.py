import pytest

from projects.sandbox.data import DEMO_TOKEN, LONGITUDINAL_TOKEN
from projects.services import links, mapping
from tests.factories import ProjectFactory, RedcapInstanceFactory

MAPPING = {
    "phone_field": "phone",
    "consent_field": "sms_consent",
    "consent_value": "1",
    "time_zone_field": "tz",
    "first_name_field": "first_name",
    "optout_field": "optout",
    "optout_value": "1",
    "withdrawn_logic": "[withdrawn] = '1'",
    "date_fields": ["enrollment_date"],
    "event": "",
    "phone_region": "US",
    "time_zone": "America/New_York",
}


@pytest.fixture
def sandbox_instance(live_server):
    return RedcapInstanceFactory(
        name="Sandbox REDCap", api_url=live_server.url + "/sandbox/redcap/api/"
    )


@pytest.fixture
def sandbox_project(sandbox_instance, researcher):
    """The demo project (PID 101), owned by `researcher`, not linked yet."""
    return ProjectFactory(redcap_instance=sandbox_instance, redcap_project_id=101, owner=researcher)


@pytest.fixture
def linked_project(sandbox_project, researcher):
    links.redcap_link_set(project=sandbox_project, token=DEMO_TOKEN, actor=researcher)
    return sandbox_project


@pytest.fixture
def mapped_project(linked_project, researcher):
    mapping.field_mapping_save(project=linked_project, actor=researcher, data=dict(MAPPING))
    return linked_project


@pytest.fixture
def longitudinal_project(sandbox_instance, researcher):
    """The sandbox's longitudinal project (PID 102: baseline, week 1 and week 2 events), owned by
    `researcher` and linked, not mapped yet."""
    project = ProjectFactory(
        redcap_instance=sandbox_instance, redcap_project_id=102, owner=researcher
    )
    links.redcap_link_set(project=project, token=LONGITUDINAL_TOKEN, actor=researcher)
    return project
