"""The Data Entry Trigger address: what it answers to anything that arrives, cheaply.

A post is a hint (docs/redcap.md): these tests check the answers before any read happens.
Nothing here reaches REDCap: every test spies on the client and fails on a call."""

import pytest
from django.urls import reverse

from projects import crypto
from projects.models import DataEntryTrigger, Project, RecordRefresh, RedcapLink
from projects.services import det
from tests.factories import FieldMappingFactory, ProjectFactory

TOKEN = "B" * 32


@pytest.fixture(autouse=True)
def no_redcap_call(monkeypatch):
    """Any REDCap call fails the test: the endpoint itself never calls REDCap."""

    def refuse(self, content, *args, **kwargs):
        raise AssertionError(f"The DET endpoint called REDCap ({content}).")

    monkeypatch.setattr("projects.redcap.RedcapClient._call", refuse)


def _ready_project(owner, **kwargs) -> Project:
    """A project linked (a token row, no HTTP) and mapped, with a DET address."""
    project = ProjectFactory(owner=owner, redcap_project_id=4242, **kwargs)
    RedcapLink.objects.create(
        project=project,
        token_encrypted=crypto.encrypt(TOKEN),
        token_last4=crypto.last4(TOKEN),
        token_fingerprint=crypto.fingerprint(TOKEN, purpose="redcap-token"),
        linked_by=owner,
    )
    FieldMappingFactory(project=project)
    det.data_entry_trigger_enable(project=project, actor=owner)
    return project


@pytest.fixture
def project(researcher):
    return _ready_project(researcher)


def _url(project) -> str:
    return reverse("redcap-det", args=[project.data_entry_trigger.secret])


def _fields(**overrides) -> dict:
    fields = {
        "project_id": "4242",
        "username": "jsmith",
        "instrument": "contact",
        "record": "7",
        "contact_complete": "2",
        "redcap_url": "https://redcap.uni.test/",
        "project_url": "https://redcap.uni.test/redcap_v14.5.11/index.php?pid=4242",
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def test_a_post_from_redcap_is_accepted_in_a_few_queries_and_noted_for_one_read(
    client, project, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = client.post(_url(project), _fields(redcap_repeat_instance="1"))
    assert response.status_code == 200
    assert "reads the record from REDCap" in response.content.decode()
    row = RecordRefresh.objects.get()
    assert (row.project_id, row.record_id, row.status) == (project.pk, "7", "waiting")
    assert row.saves == [["contact", "", 1]]
    project.data_entry_trigger.refresh_from_db()
    assert project.data_entry_trigger.last_post_at is not None


def test_the_posts_cost_the_same_queries_for_ten_saves_as_for_one(
    client, project, django_assert_max_num_queries
):
    client.post(_url(project), _fields())
    for _ in range(10):  # folded into the waiting row: no growth
        with django_assert_max_num_queries(10):
            assert client.post(_url(project), _fields(record="7")).status_code == 200
    row = RecordRefresh.objects.get()
    assert row.posts == 11


def test_an_unknown_address_is_a_404_after_one_query(client, project, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.post(reverse("redcap-det", args=["x" * 43]), _fields())
    assert response.status_code == 404
    assert not RecordRefresh.objects.exists()


def test_an_unknown_project_id_is_a_404_after_one_query_and_nothing_is_noted(
    client, project, django_assert_num_queries
):
    with django_assert_num_queries(1):
        response = client.post(_url(project), _fields(project_id="4243"))
    assert response.status_code == 404
    assert not RecordRefresh.objects.exists()


def test_a_replaced_or_removed_address_no_longer_answers(client, project, researcher):
    old = _url(project)
    det.data_entry_trigger_rotate(project=project, actor=researcher)
    project.refresh_from_db()
    new = _url(project)
    assert new != old
    assert client.post(old, _fields()).status_code == 404
    assert client.post(new, _fields()).status_code == 200
    det.data_entry_trigger_disable(project=project, actor=researcher)
    assert client.post(new, _fields(record="8")).status_code == 404
    assert not DataEntryTrigger.objects.exists()


def test_a_flood_is_answered_429_with_retry_after(client, project, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "det": (3, 60)}
    answers = [client.post(_url(project), _fields(record=str(n))).status_code for n in range(5)]
    assert answers == [200, 200, 200, 429, 429]
    refused = client.post(_url(project), _fields())
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many posts for this project" in refused.content.decode()
    assert RecordRefresh.objects.count() == 3  # nothing noted past the limit


def test_the_limit_counts_each_project_apart(client, project, researcher, settings):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "det": (2, 60)}
    second = ProjectFactory(owner=researcher, redcap_project_id=777)
    RedcapLink.objects.create(
        project=second,
        token_encrypted=crypto.encrypt(TOKEN),
        token_last4="BBBB",
        token_fingerprint="fp-second",
        linked_by=researcher,
    )
    FieldMappingFactory(project=second)
    det.data_entry_trigger_enable(project=second, actor=researcher)
    for _ in range(3):
        client.post(_url(project), _fields())
    assert client.post(_url(project), _fields()).status_code == 429
    assert client.post(_url(second), _fields(project_id="777")).status_code == 200


@pytest.mark.parametrize(
    ("why", "change", "status", "words"),
    [
        ("not linked", lambda p: RedcapLink.objects.filter(project=p).delete(), 409, "no REDCap"),
        (
            "not mapped",
            lambda p: p.field_mapping.delete(),
            409,
            "fields are not mapped yet",
        ),
        (
            "archived",
            lambda p: Project.objects.filter(pk=p.pk).update(status="archived"),
            409,
            "is archived",
        ),
        (
            "suspended",
            lambda p: Project.objects.filter(pk=p.pk).update(status="suspended"),
            409,
            "suspended",
        ),
    ],
)
def test_a_project_that_cannot_read_records_says_why_and_notes_nothing(
    client, project, why, change, status, words
):
    change(project)
    response = client.post(_url(project), _fields())
    assert response.status_code == status, why
    assert words in response.content.decode()
    assert not RecordRefresh.objects.exists()


def test_a_paused_project_is_kept_up_to_date_as_the_sync_keeps_it(client, project):
    Project.objects.filter(pk=project.pk).update(status="paused")
    assert client.post(_url(project), _fields()).status_code == 200


# --- Bad input: a clear 4xx, nothing written --------------------------------------------------
def _raw(client, project, body: bytes, content_type="application/x-www-form-urlencoded"):
    return client.generic("POST", _url(project), body, content_type=content_type)


BAD_POSTS = [
    ("no project id", _fields(project_id=None), "“project_id” is missing"),
    ("no record", _fields(record=None), "“record” is missing"),
    ("a blank record", _fields(record="  "), "“record” is missing"),
    ("no instrument", _fields(instrument=None), "“instrument” is missing"),
    ("a project id in words", _fields(project_id="four"), "must be REDCap's project id"),
    ("a negative project id", _fields(project_id="-1"), "must be REDCap's project id"),
    ("a record too long", _fields(record="9" * 101), "longer than 100 characters"),
    ("a record with a line break", _fields(record="7\n8"), "control characters"),
    ("an instrument with spaces", _fields(instrument="Contact Form"), "unique name"),
    ("an instrument with a quote", _fields(instrument="contact'--"), "unique name"),
    ("an event with a slash", _fields(redcap_event_name="a/b"), "event's unique name"),
    ("an instance of zero", _fields(redcap_repeat_instance="0"), "whole number from 1"),
    ("an instance in words", _fields(redcap_repeat_instance="two"), "whole number from 1"),
    ("a bad repeat instrument", _fields(redcap_repeat_instrument="X Y"), "unique name"),
]


@pytest.mark.parametrize(("why", "fields", "words"), BAD_POSTS, ids=[b[0] for b in BAD_POSTS])
def test_a_malformed_post_is_a_400_naming_the_field_and_nothing_is_written(
    client, project, why, fields, words
):
    response = client.post(_url(project), fields)
    assert response.status_code == 400, why
    body = response.content.decode()
    assert body.startswith("Not a Data Entry Trigger post:") and words in body, body
    assert not RecordRefresh.objects.exists()


@pytest.mark.parametrize(
    ("why", "body", "words"),
    [
        (
            "raw bytes that are not UTF-8",
            b"project_id=4242&instrument=contact&record=\xff\xfe",
            "not valid text",
        ),
        (
            "an escaped byte that is not UTF-8",
            b"project_id=4242&instrument=contact&record=%FF",
            "not valid text",
        ),
        ("an overlong encoding", b"project_id=4242&instrument=contact&record=%C0%AF", "valid text"),
        (
            "a record given twice",
            b"project_id=4242&instrument=contact&record=1&record=2",
            "given 2 times",
        ),
        ("not a form at all", b"\x00\x01\x02garbage", "missing"),
        ("too many fields", b"&".join(b"f%d=1" % n for n in range(101)), "more than 100 fields"),
    ],
)
def test_a_body_that_is_not_a_form_is_a_400_and_nothing_is_written(
    client, project, why, body, words
):
    response = _raw(client, project, body)
    assert response.status_code == 400, why
    assert words in response.content.decode(), response.content
    assert not RecordRefresh.objects.exists()


def test_invalid_utf8_in_multipart_form_data_is_a_400(client, project):
    boundary = "XyZ"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="project_id"\r\n\r\n4242\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="instrument"\r\n\r\ncontact\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="record"\r\n\r\n'
        ).encode()
        + b"\xff\xfe\r\n"
        + f"--{boundary}--\r\n".encode()
    )
    response = _raw(client, project, body, content_type=f"multipart/form-data; boundary={boundary}")
    assert response.status_code == 400
    assert "not valid text" in response.content.decode()
    assert not RecordRefresh.objects.exists()


def test_a_multipart_post_from_redcap_is_read_like_a_form(client, project):
    response = client.post(_url(project), _fields())  # the test client sends multipart
    assert response.status_code == 200
    assert RecordRefresh.objects.get().record_id == "7"


def test_json_is_refused_as_the_wrong_media_type(client, project):
    response = _raw(client, project, b'{"project_id": 4242}', content_type="application/json")
    assert response.status_code == 415
    assert "posts form fields" in response.content.decode()
    assert not RecordRefresh.objects.exists()


def test_an_empty_post_is_refused_as_no_form(client, project):
    response = client.generic("POST", _url(project), b"")
    assert response.status_code == 415
    assert "without a content type" in response.content.decode()
    assert not RecordRefresh.objects.exists()


def test_the_parser_itself_refuses_replacement_characters_it_is_handed():
    # The site's middleware refuses invalid UTF-8 before the view; the parser does not rely on it.
    with pytest.raises(det.DetPostError, match="not valid UTF-8"):
        det.det_post_parse({"project_id": ["1"], "instrument": ["contact"], "record": ["\ufffd"]})


def test_a_body_larger_than_redcap_sends_is_refused_before_it_is_read(client, project):
    body = b"project_id=4242&instrument=contact&record=1&pad=" + b"x" * 9000
    response = _raw(client, project, body)
    assert response.status_code == 413
    assert not RecordRefresh.objects.exists()


def test_only_post_is_answered(client, project):
    response = client.get(_url(project))
    assert response.status_code == 405 and response["Allow"] == "POST"


def test_posted_values_and_addresses_are_never_kept(client, project):
    client.post(
        _url(project),
        _fields(phone="+15550000000", sms_consent="0", redcap_url="http://169.254.169.254/"),
    )
    row = RecordRefresh.objects.get()
    kept = str(
        {f.name: getattr(row, f.name) for f in RecordRefresh._meta.fields if f.name != "project"}
    )
    assert "5550000000" not in kept and "169.254" not in kept


def test_the_secret_in_the_address_is_never_logged(client, project, caplog):
    secret = project.data_entry_trigger.secret
    with caplog.at_level("WARNING", logger="django.request"):
        client.post(_url(project), _fields(record=None))  # 400
        client.get(_url(project))  # 405
        client.post(reverse("redcap-det", args=["x" * 43]), _fields())  # 404
    logged = [r.getMessage() for r in caplog.records if r.name == "django.request"]
    assert len(logged) == 3
    assert all("/webhooks/redcap/…/" in line and secret not in line for line in logged), logged
    assert not any("x" * 43 in line for line in logged)
