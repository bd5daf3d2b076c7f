import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.provider import FAILURE_KINDS, FakeProvider, TokenBucket

SID = "AC" + "0" * 32
ROOT = Path(__file__).resolve().parents[2]


def messages_url(fake):
    return f"{fake.twilio_api_base}Accounts/{SID}/Messages.json"


def post(client, fake, body="Hi", to="+14155550143", **extra):
    return client.post(
        messages_url(fake), data={"To": to, "Body": body, "From": "+15005550006", **extra}
    )


@pytest.fixture
def client():
    with httpx.Client(auth=(SID, "token"), timeout=httpx.Timeout(5.0, read=2.0)) as c:
        yield c


def test_it_starts_on_a_free_loopback_port_and_stops(client):
    fake = FakeProvider().start()
    assert fake.port != 0
    assert fake.twilio_api_base == f"http://127.0.0.1:{fake.port}/2010-04-01/"
    assert fake.mosio_api_base == f"http://127.0.0.1:{fake.port}/mosio/api/"
    assert client.get(f"{fake.url}stats").json()["requests"] == 1
    fake.stop()
    with pytest.raises(httpx.ConnectError):
        client.get(f"{fake.url}stats")


def test_it_speaks_the_twilio_messages_api(client):
    with FakeProvider() as fake:
        response = post(client, fake, StatusCallback="https://p.test/cb")
        assert response.status_code == 201
        message = response.json()
        assert message["sid"].startswith("SM") and len(message["sid"]) == 34
        assert (message["status"], message["to"], message["num_segments"]) == (
            "queued",
            "+14155550143",
            "1",
        )
        fetched = client.get(f"{fake.twilio_api_base}Accounts/{SID}/Messages/{message['sid']}.json")
        assert fetched.json()["status"] == "delivered"
        assert fake.messages[0]["status_callback"] == "https://p.test/cb"


def test_it_requires_basic_auth_for_the_account_in_the_path():
    with FakeProvider() as fake:
        response = httpx.post(messages_url(fake), data={"To": "+14155550143", "Body": "x"})
        assert (response.status_code, response.json()["code"]) == (401, 20003)
        wrong = httpx.post(messages_url(fake), data={"To": "+1"}, auth=("AC" + "1" * 32, "t"))
        assert wrong.status_code == 401


def test_the_message_list_filters_and_pages_newest_first(client):
    with FakeProvider() as fake:
        for n in range(3):
            post(client, fake, body=f"m{n}")
        post(client, fake, body="other", to="+14155550199")
        first = client.get(messages_url(fake), params={"To": "+14155550143", "PageSize": 2}).json()
        assert [m["body"] for m in first["messages"]] == ["m2", "m1"]
        second = client.get(fake.url.rstrip("/") + first["next_page_uri"]).json()
        assert [m["body"] for m in second["messages"]] == ["m0"]
        assert second["next_page_uri"] is None


def test_latency_is_added_to_every_send(client):
    with FakeProvider(latency_ms=120) as fake:
        started = time.monotonic()
        post(client, fake)
        assert time.monotonic() - started >= 0.12


def test_sends_over_the_rate_get_429_with_twilio_20429(client):
    with FakeProvider(rate=5, burst=1) as fake:
        responses = [post(client, fake, body=f"m{n}") for n in range(6)]
        statuses = [r.status_code for r in responses]
        assert statuses[0] == 201
        assert 429 in statuses
        refused = next(r for r in responses if r.status_code == 429)
        assert refused.json()["code"] == 20429
        stats = fake.stats()
        assert stats["rate_limited"] == statuses.count(429)
        assert stats["accepted"] == statuses.count(201)


def test_a_client_paced_under_the_rate_is_never_refused(client):
    rate = 40
    with FakeProvider(rate=rate) as fake:
        for n in range(30):
            # Each send waits its interval after the previous one (never a catch-up burst, which
            # a loaded machine would otherwise produce).
            time.sleep(1 / (rate * 0.8))
            assert post(client, fake, body=f"m{n}").status_code == 201
        assert fake.stats()["rate_limited"] == 0


def test_the_token_bucket_refills_at_its_rate():
    bucket = TokenBucket(rate=100, burst=2)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    time.sleep(0.03)
    assert bucket.take()


def outcome(client, fake, body):
    try:
        return post(client, fake, body=body).status_code
    except httpx.ReadTimeout:
        return "timeout"
    except (httpx.RemoteProtocolError, httpx.ReadError):
        return "drop"


def test_the_failure_mix_is_reproducible_with_a_seed():
    def run():
        with (
            FakeProvider(failure_rate=0.5, failure_kinds=("429", "500"), seed=7) as fake,
            httpx.Client(auth=(SID, "t")) as client,
        ):
            return [outcome(client, fake, f"m{n}") for n in range(30)], fake.stats()["failures"]

    first, second = run(), run()
    assert first == second
    assert set(first[0]) == {201, 429, 500}


@pytest.mark.parametrize(
    "kind, seen, accepted",
    [
        ("drop", "drop", False),
        ("429", 429, False),
        ("500", 500, False),
        ("500-accepted", 500, True),
        ("timeout", "timeout", True),
    ],
)
def test_each_failure_kind_behaves_and_is_recorded_honestly(kind, seen, accepted):
    with (
        FakeProvider(failure_rate=1.0, failure_kinds=(kind,), hang_s=1.0) as fake,
        httpx.Client(auth=(SID, "t"), timeout=httpx.Timeout(5.0, read=0.3)) as client,
    ):
        assert outcome(client, fake, "m") == seen
        stats = fake.stats()
    assert stats["failures"] == {kind: 1}
    assert stats["accepted"] == (1 if accepted else 0)
    assert set(FAILURE_KINDS) >= {kind}


def test_unknown_failure_kinds_are_refused():
    with pytest.raises(ValueError, match="Unknown failure kinds"):
        FakeProvider(failure_kinds=("meteor",))


def test_it_counts_messages_accepted_twice(client):
    with FakeProvider() as fake:
        post(client, fake, body="once")
        post(client, fake, body="twice")
        post(client, fake, body="twice")
        post(client, fake, body="twice", to="+14155550199")  # another participant: not a twin
        stats = client.get(f"{fake.url}stats").json()
    assert (stats["accepted"], stats["unique_accepted"], stats["duplicates"]) == (4, 3, 1)
    assert stats["duplicate_keys"] == ["+14155550143\ntwice"]


def test_the_dedup_key_can_be_the_status_callback(client):
    with FakeProvider(dedup="callback") as fake:
        post(client, fake, body="a", StatusCallback="https://p.test/cb/1")
        post(client, fake, body="b", StatusCallback="https://p.test/cb/1")
        assert fake.stats()["duplicates"] == 1


def test_concurrent_sends_are_counted_in_flight():
    import threading

    with FakeProvider(latency_ms=150) as fake:
        threads = [
            threading.Thread(
                target=lambda n=n: httpx.post(
                    messages_url(fake),
                    data={"To": "+14155550143", "Body": f"m{n}", "From": "+1500"},
                    auth=(SID, "t"),
                )
            )
            for n in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fake.stats()["max_in_flight"] >= 2
        assert fake.stats()["accepted"] == 4


def test_it_speaks_mosio_send_and_history():
    with FakeProvider() as fake, httpx.Client(headers={"X-ApiKey": "k"}) as client:
        sent = client.post(
            f"{fake.mosio_api_base}send_single_sms", data={"Phone": "14155550143", "Message": "Hi"}
        ).json()
        assert sent["Success"] is True and sent["ErrorCode"] == 0
        history = client.get(f"{fake.mosio_api_base}text_history", params={"Limit": 5}).json()
        assert history["Contacts"][0]["Id"] == sent["TransactionId"]
        assert history["Contacts"][0]["Direction"] == "out"
        bad = client.post(
            f"{fake.mosio_api_base}send_single_sms", data={"Phone": "+14155550143", "Message": "Hi"}
        )
        assert bad.json()["Success"] is False
        assert httpx.get(f"{fake.mosio_api_base}text_history").status_code == 401


def test_the_command_line_serves_until_stopped():
    command = [sys.executable, str(ROOT / "tests/fakes/provider.py"), "--serve", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        try:
            line = process.stdout.readline().strip()
            assert line.startswith("TWILIO_API_BASE=http://127.0.0.1:")
            base = line.split("=", 1)[1].removesuffix("2010-04-01/")
            assert httpx.get(f"{base}stats").json()["accepted"] == 0
        finally:
            process.terminate()
            process.wait(timeout=10)
