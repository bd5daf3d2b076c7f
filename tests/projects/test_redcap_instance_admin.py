"""Adding a REDCap server to the allowlist in the Django admin."""

import pytest
from django.test import override_settings
from django.urls import reverse

from projects.models import RedcapInstance

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]

ADD = "admin:projects_redcapinstance_add"


def add(client, api_url: str):
    return client.post(
        reverse(ADD), {"name": "University REDCap", "api_url": api_url, "is_active": "on"}
    )


def api_url_errors(response) -> list[str]:
    return list(response.context["adminform"].form.errors.get("api_url", []))


def test_it_adds_an_https_api_url(as_user, server_admin):
    response = add(as_user(server_admin), "https://redcap.uni.test/api/")
    assert response.status_code == 302
    assert RedcapInstance.objects.get().api_url == "https://redcap.uni.test/api/"


def test_it_refuses_plain_http_in_production(as_user, server_admin):
    response = add(as_user(server_admin), "http://redcap.uni.test/api/")
    assert response.status_code == 200
    assert api_url_errors(response) == [
        "The REDCap API URL must use https, so that the API token is never sent in clear text."
    ]
    assert not RedcapInstance.objects.exists()


@override_settings(DEBUG=True)
def test_debugging_does_not_allow_plain_http_to_a_server(as_user, server_admin):
    response = add(as_user(server_admin), "http://redcap.dev.test/api/")
    assert response.status_code == 200
    assert "must use https" in api_url_errors(response)[0]
    assert not RedcapInstance.objects.exists()


@pytest.mark.parametrize(
    "api_url", ["http://localhost:8000/sandbox/redcap/api/", "http://127.0.0.1:8001/api/"]
)
def test_it_allows_plain_http_on_this_machine_for_the_sandbox(as_user, server_admin, api_url):
    response = add(as_user(server_admin), api_url)
    assert response.status_code == 302
    assert RedcapInstance.objects.get().api_url == api_url


@pytest.mark.parametrize(
    "api_url",
    [
        "https://redcap.uni.test/",
        "https://redcap.uni.test/redcap/api",
        "https://redcap.uni.test/redcap_v14.0.0/index.php",
    ],
)
def test_it_refuses_an_address_that_is_not_the_api_endpoint(as_user, server_admin, api_url):
    response = add(as_user(server_admin), api_url)
    assert response.status_code == 200
    assert api_url_errors(response) == [
        "The REDCap API URL must end in /api/ (for example https://redcap.example.edu/api/)."
    ]
    assert not RedcapInstance.objects.exists()


@pytest.mark.parametrize(
    "api_url", ["https://user:secret@redcap.uni.test/api/", "https://redcap.uni.test/api/?x=1"]
)
def test_it_refuses_credentials_or_a_query_in_the_address(as_user, server_admin, api_url):
    response = add(as_user(server_admin), api_url)
    assert response.status_code == 200
    assert api_url_errors(response) == [
        "The REDCap API URL must not contain a user name, password, query or fragment."
    ]


def test_a_value_that_is_no_address_at_all_gets_one_clear_error(as_user, server_admin):
    response = add(as_user(server_admin), "not a url")
    assert response.status_code == 200
    assert api_url_errors(response) == ["Enter a valid URL."]
    assert not RedcapInstance.objects.exists()


def test_editing_an_old_http_instance_asks_for_https(as_user, server_admin):
    old = RedcapInstance.objects.create(name="Old REDCap", api_url="http://redcap.old.test/api/")
    response = as_user(server_admin).post(
        reverse("admin:projects_redcapinstance_change", args=[old.pk]),
        {"name": old.name, "api_url": old.api_url, "is_active": "on"},
    )
    assert response.status_code == 200
    assert "must use https" in api_url_errors(response)[0]
