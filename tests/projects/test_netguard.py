"""REDCap tokens go only to public https servers on port 443 (docs/compliance.md): refused when
an administrator saves an instance, and again at request time after DNS resolution.

The first tests reproduce the security review's finding (these addresses were accepted)."""

import httpx
import pytest
import respx
from django.urls import reverse

from projects import netguard
from projects.models import RedcapInstance
from projects.redcap import RedcapClient, RedcapConfigError, validate_api_url

TOKEN = "A" * 32

REFUSED = {
    "https://127.0.0.1/api/": "this machine",
    "https://[::1]/api/": "this machine",
    "https://169.254.169.254/api/": "link-local",
    "https://10.0.0.5/api/": "private network",
    "https://192.168.1.1/api/": "private network",
    "https://172.16.0.9/api/": "private network",
    "https://[fd00:ec2::254]/api/": "private network",
    "https://[::ffff:127.0.0.1]/api/": "this machine",
    "https://0.0.0.0/api/": "private network",
    "https://localhost/api/": "this machine",
    "https://2130706433/api/": "unusual form",
    "https://0x7f000001/api/": "unusual form",
    "https://0177.0.0.1/api/": "unusual form",
    "https://127.1/api/": "unusual form",
    "https://redcap.uni.test:8443/api/": "port (443)",
    "http://redcap.uni.test/api/": "must use https",
    "http://127.0.0.1:8000/api/": "must use https",
}


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "said"), REFUSED.items())
def test_the_admin_refuses_an_instance_url_inside_the_network(
    as_user, server_admin, settings, url, said
):
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False  # production
    response = as_user(server_admin).post(
        reverse("admin:projects_redcapinstance_add"),
        {"name": "Inside", "api_url": url, "is_active": "on"},
    )
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["api_url"])
    assert said in errors
    assert not RedcapInstance.objects.exists()


@pytest.mark.parametrize("url", REFUSED)
def test_the_client_refuses_them_too_before_any_request(settings, url):
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False
    with respx.mock(assert_all_called=False) as mock:
        route = mock.route().mock(return_value=httpx.Response(200, text="14.0.0"))
        with pytest.raises(RedcapConfigError):
            RedcapClient(url, TOKEN).version()
        assert not route.called


def test_an_internal_network_is_allowed_only_when_named(settings):
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(RedcapConfigError):
        validate_api_url("https://10.20.3.4/api/")
    settings.REDCAP_INTERNAL_NETWORKS = ["10.20.0.0/16"]
    assert validate_api_url("https://10.20.3.4/api/")
    with pytest.raises(RedcapConfigError):
        validate_api_url("https://10.21.3.4/api/")
    with pytest.raises(RedcapConfigError, match="must use https"):
        validate_api_url("http://10.20.3.4/api/")


def test_the_development_sandbox_needs_its_explicit_setting(settings):
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = True
    assert validate_api_url("http://127.0.0.1:8110/sandbox/redcap/api/")
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(RedcapConfigError):
        validate_api_url("http://127.0.0.1:8110/sandbox/redcap/api/")


@pytest.mark.parametrize("inside", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"])
def test_a_name_that_resolves_inward_is_refused_at_request_time(settings, monkeypatch, inside):
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False
    looked_up = []

    def fake_dns(host, port):
        looked_up.append(host)
        return [inside]

    monkeypatch.setattr(netguard, "resolve", fake_dns)
    client = RedcapClient("https://redcap.uni.test/api/", TOKEN)  # a public-looking name
    with pytest.raises(RedcapConfigError, match=f"resolves to {inside}"):
        client.version()
    assert looked_up == ["redcap.uni.test"]


def test_a_name_with_one_inward_address_among_public_ones_is_refused(settings, monkeypatch):
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False
    monkeypatch.setattr(netguard, "resolve", lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(RedcapConfigError, match="10.0.0.7"):
        RedcapClient("https://redcap.uni.test/api/", TOKEN).version()


def test_the_connection_goes_to_the_address_that_was_checked(settings, monkeypatch):
    """DNS answers a public address at check time; the socket is opened to that address, not to
    whatever a second lookup would say."""
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])
    monkeypatch.setattr(netguard, "resolve", lambda host, port: next(answers))
    opened = []

    def fake_connect(self, host, port, *args, **kwargs):
        opened.append(host)
        raise netguard.httpcore.ConnectError("stop here")

    monkeypatch.setattr(netguard.httpcore.SyncBackend, "connect_tcp", fake_connect)
    with pytest.raises(Exception):  # noqa: B017 - the fake refuses to really connect
        RedcapClient("https://redcap.uni.test/api/", TOKEN).version()
    assert opened == ["93.184.216.34"]


def test_a_redirect_to_an_internal_address_is_not_followed(settings):
    settings.REDCAP_ALLOW_LOOPBACK_HTTP = False
    with respx.mock(assert_all_called=False) as mock:
        mock.post("https://redcap.uni.test/api/").mock(
            return_value=httpx.Response(
                302, headers={"Location": "http://169.254.169.254/latest/meta-data/"}
            )
        )
        metadata = mock.route(host="169.254.169.254").mock(return_value=httpx.Response(200))
        with pytest.raises(Exception) as caught:
            RedcapClient("https://redcap.uni.test/api/", TOKEN).version()
        assert "redirected" in str(caught.value)
        assert not metadata.called
