"""The schema and the documentation: valid OpenAPI 3 with no warning, a description and an example
for every operation, one documented error shape, and the docs pages served from this site."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def openapi():
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(openapi):
    for path, item in openapi["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def test_manage_py_spectacular_validates_the_schema_and_finds_no_warning(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    text = out.read_text()
    assert text.startswith("openapi: 3.")
    assert "/api/projects/{project_id}/rules/{rule_id}/send-now/" in text


def test_every_operation_has_a_summary_a_description_and_examples(openapi):
    operations = list(_operations(openapi))
    assert len(operations) >= 34
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), where
        assert len(op.get("description", "")) > 30, where
        success = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert success, where
        for code, response in success.items():
            assert response["content"]["application/json"].get("examples"), f"{where} {code}"
        if "requestBody" in op:
            assert op["requestBody"]["content"]["application/json"].get("examples"), where


def test_every_error_answer_is_documented_with_the_one_error_shape(openapi):
    error = openapi["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"status", "code", "detail", "fields"}
    assert error["properties"]["fields"]["additionalProperties"]["type"] == "array"
    for path, method, op in _operations(openapi):
        codes = {c for c in op["responses"] if c.startswith("4")}
        assert "400" in codes, f"{method} {path}"
        if path != "/api/health/":
            assert "429" in codes, f"{method} {path}"
        for code in codes:
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {code}"
        if op.get("security") and {} not in op["security"]:
            assert {"401", "403"} <= codes, f"{method} {path}"
        if method in ("post", "patch"):
            assert {"413", "415"} <= codes, f"{method} {path}"
    throttled = openapi["paths"]["/api/projects/"]["get"]["responses"]["429"]
    assert "Retry-After" in throttled["headers"]


def test_request_bodies_take_no_field_they_do_not_list(openapi):
    bodies = [
        name
        for name, schema in openapi["components"]["schemas"].items()
        if name.endswith("Request")
    ]
    assert "RuleInputRequest" in bodies and "CreditPackRequestInputRequest" in bodies
    for name in bodies:
        assert openapi["components"]["schemas"][name]["additionalProperties"] is False, name


def test_the_served_schema_is_the_generated_one(client, openapi):
    served = client.get("/api/schema/?format=json").json()
    assert served["paths"].keys() == openapi["paths"].keys()
    assert served["info"]["title"] == "StudyText API"


def test_the_api_root_answers_with_links_to_the_docs_and_the_lists(client):
    response = client.get("/api/")
    assert response.status_code == 200
    body = response.json()
    assert body["documentation"]["swagger_ui"].endswith("/api/docs/")
    assert body["documentation"]["redoc"].endswith("/api/redoc/")
    assert body["documentation"]["openapi_schema"].endswith("/api/schema/")
    assert body["documentation"]["health"].endswith("/api/health/")
    assert body["endpoints"]["projects"].endswith("/api/projects/")
    for url in (*body["documentation"].values(), *body["endpoints"].values()):
        assert client.get(url.replace("http://testserver", "")).status_code in (200, 401, 503)


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_everything_from_this_site(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    script = client.get("/api/docs/?script=").content.decode() if "docs" in url else html
    assert "/api/schema/" in script
    assert not re.search(r"""(src|href)=["']https?://""", html), "an outside address"
    assert "<script>" not in html and "<style" not in html, "inline script or style"
    assert "script-src 'self';" in response["Content-Security-Policy"]
    assets = re.findall(r"""(?:src|href)=["']/static/([^"']+)["']""", html)
    assert len(assets) >= 2
    for asset in assets:
        assert finders.find(asset), f"{asset} is not a file of this site"


def test_the_swagger_ui_start_script_is_a_file_of_its_own(client):
    response = client.get("/api/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in response.content.decode()
