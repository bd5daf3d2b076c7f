"""Secrets at rest: Fernet round trip, keyed fingerprints, key rotation, and no plaintext in the
database."""

import io
import re

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from messaging.services import provider_links
from projects import crypto
from projects.models import Participant, ProviderLink, RedcapLink
from projects.sandbox.data import DEMO_PEOPLE, DEMO_TOKEN
from projects.services import sync
from tests.factories import ProjectFactory

MOSIO_KEY = "mosio-key-7f3a9c21"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_AUTH_TOKEN = "f" * 28 + "9c1e"
TWILIO_SENDER = "+16155550100"


@pytest.fixture
def keys(settings):
    """Swap the encryption keys within a test; the cached MultiFernet follows."""

    def _set(*new_keys):
        settings.SECRETS_ENCRYPTION_KEYS = list(new_keys)
        crypto.reset_keys()

    yield _set
    crypto.reset_keys()


# --- Encryption -------------------------------------------------------------------------------
def test_encryption_round_trips_and_never_repeats_a_ciphertext():
    first, second = crypto.encrypt(DEMO_TOKEN), crypto.encrypt(DEMO_TOKEN)
    assert first != second  # a fresh IV every time: equal secrets do not look equal
    assert DEMO_TOKEN not in first
    assert crypto.decrypt(first) == crypto.decrypt(second) == DEMO_TOKEN
    config = {"account_sid": TWILIO_SID, "auth_token": TWILIO_AUTH_TOKEN}
    assert crypto.decrypt_json(crypto.encrypt_json(config)) == config


def test_a_secret_under_an_unknown_key_is_unreadable_in_words(keys, settings):
    stored = crypto.encrypt(DEMO_TOKEN)
    keys(Fernet.generate_key().decode())
    with pytest.raises(crypto.SecretUnreadable, match="cannot be decrypted"):
        crypto.decrypt(stored)


@pytest.mark.parametrize("value", [[], ["  "], ["not-a-fernet-key"]])
def test_missing_or_bad_keys_are_a_configuration_error(keys, value):
    keys(*value)
    with pytest.raises(ImproperlyConfigured, match="SECRETS_ENCRYPTION_KEYS"):
        crypto.encrypt("x")


# --- Fingerprints -----------------------------------------------------------------------------
def test_a_fingerprint_is_stable_keyed_and_specific_to_its_purpose(settings):
    fp = crypto.fingerprint(MOSIO_KEY, purpose="provider:mosio")
    assert fp == crypto.fingerprint(f"  {MOSIO_KEY} ", purpose="provider:mosio")
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert MOSIO_KEY not in fp
    assert fp != crypto.fingerprint(MOSIO_KEY, purpose="provider:twilio")
    assert fp != crypto.fingerprint(MOSIO_KEY + "x", purpose="provider:mosio")
    settings.SECRETS_FINGERPRINT_KEY = "another-deployment"
    assert fp != crypto.fingerprint(MOSIO_KEY, purpose="provider:mosio")
    settings.SECRETS_FINGERPRINT_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="SECRETS_FINGERPRINT_KEY"):
        crypto.fingerprint(MOSIO_KEY, purpose="provider:mosio")


def test_masks_show_at_most_the_last_4_characters():
    assert crypto.last4(f" {DEMO_TOKEN} ") == DEMO_TOKEN[-4:]
    assert crypto.mask(crypto.last4(DEMO_TOKEN)) == f"••••{DEMO_TOKEN[-4:]}"
    assert crypto.mask("") == ""


# --- Everything that holds a secret ----------------------------------------------------------
@pytest.fixture
def secrets_everywhere(mapped_project, researcher, other_researcher, db):
    """A REDCap token, a Twilio auth token, a Mosio key and participants' phones, all stored."""
    sync.sync_run_start(project=mapped_project, actor=researcher)  # inline in tests
    provider_links.provider_link_store(
        project=mapped_project,
        provider="twilio",
        config={
            "account_sid": TWILIO_SID,
            "auth_token": TWILIO_AUTH_TOKEN,
            "sender": TWILIO_SENDER,
        },
        display={"Auth token": f"••••{TWILIO_AUTH_TOKEN[-4:]}"},
        rate_per_second=1,
        actor=researcher,
    )
    mosio_project = ProjectFactory(owner=other_researcher)
    provider_links.provider_link_store(
        project=mosio_project,
        provider="mosio",
        config={"api_key": MOSIO_KEY},
        display={"API key": f"••••{MOSIO_KEY[-4:]}"},
        rate_per_second=1,
        actor=other_researcher,
    )
    phones = [p.phone for p in Participant.objects.exclude(phone_encrypted="")]
    assert len(phones) >= 15
    return mapped_project, phones


def phone_forms(e164: str) -> list[str]:
    national = e164[2:]  # +1 and ten digits
    return [e164, national, f"({national[:3]}) {national[3:6]}-{national[6:]}"]


def all_rows() -> str:
    """Every row of every table, as the database holds it."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            dump.append(repr(cursor.fetchall()))
    return "\n".join(dump)


def test_no_table_holds_a_secret_or_a_phone_number_in_clear(secrets_everywhere):
    project, phones = secrets_everywhere
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM projects_redcaplink")
        redcap = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM projects_providerlink")
        providers = repr(cursor.fetchall())
        cursor.execute("SELECT * FROM projects_participant")
        participants = repr(cursor.fetchall())
    assert redcap.count(f"'{DEMO_TOKEN[-4:]}'") == 1  # the last 4 characters, shown on pages
    assert DEMO_TOKEN not in redcap and DEMO_TOKEN.lower() not in redcap
    assert TWILIO_AUTH_TOKEN not in providers
    assert MOSIO_KEY not in providers
    for phone in phones:
        assert not any(form in participants for form in phone_forms(phone)), phone[-4:]

    everything = all_rows()  # audit log, task queue, sessions...: nowhere
    for secret in (DEMO_TOKEN, DEMO_TOKEN.lower(), TWILIO_AUTH_TOKEN, MOSIO_KEY):
        assert secret not in everything
    for phone in phones:
        assert not any(form in everything for form in phone_forms(phone)), phone[-4:]


def test_the_sandbox_phones_are_really_what_we_look_for(secrets_everywhere):
    """Guard the test above: the phones it searches for are the sandbox's real numbers."""
    _, phones = secrets_everywhere
    sandbox_digits = {re.sub(r"\D", "", person[1])[-10:] for person in DEMO_PEOPLE if person[1]}
    assert {phone[2:] for phone in phones} <= sandbox_digits


def test_rotate_secrets_re_encrypts_everything_under_the_newest_key(
    keys, settings, secrets_everywhere
):
    project, phones = secrets_everywhere
    old_key = settings.SECRETS_ENCRYPTION_KEYS[0]
    before = {
        "redcap": list(RedcapLink.objects.values_list("token_encrypted", flat=True)),
        "providers": list(ProviderLink.objects.values_list("config_encrypted", flat=True)),
        "phones": list(Participant.objects.values_list("phone_encrypted", flat=True)),
    }
    new_key = Fernet.generate_key().decode()
    keys(new_key, old_key)  # the new key first, the old one still there to read with

    out = io.StringIO()
    call_command("rotate_secrets", stdout=out)
    expected = 1 + 2 + len(phones)
    assert f"Re-encrypted {expected} secrets under the newest key." in out.getvalue()

    keys(new_key)  # the old key retired: everything must still read
    assert RedcapLink.objects.get(project=project).token == DEMO_TOKEN
    configs = {link.provider: link.config for link in ProviderLink.objects.all()}
    assert configs["twilio"]["auth_token"] == TWILIO_AUTH_TOKEN
    assert configs["mosio"]["api_key"] == MOSIO_KEY
    assert sorted(p.phone for p in Participant.objects.exclude(phone_encrypted="")) == sorted(
        phones
    )
    after = list(Participant.objects.values_list("phone_encrypted", flat=True))
    changed = [a != b for a, b in zip(before["phones"], after, strict=True) if b]
    assert changed and all(changed)
    # And the old key alone can no longer read them.
    keys(old_key)
    with pytest.raises(crypto.SecretUnreadable):
        _ = RedcapLink.objects.get(project=project).token
    # Fingerprints are not encryption: rotation leaves them (and so lookups) unchanged.
    keys(new_key)
    assert all(
        p.phone_fingerprint == crypto.fingerprint(p.phone, purpose="phone")
        for p in Participant.objects.exclude(phone_encrypted="")
    )


def test_rotation_with_a_key_that_reads_nothing_changes_nothing(keys, secrets_everywhere):
    before = list(RedcapLink.objects.values_list("token_encrypted", flat=True))
    keys(Fernet.generate_key().decode())  # the current key was dropped too early
    with pytest.raises(crypto.SecretUnreadable):
        call_command("rotate_secrets", stdout=io.StringIO())
    assert list(RedcapLink.objects.values_list("token_encrypted", flat=True)) == before


def test_the_django_admin_shows_no_secret_and_no_full_phone(
    as_user, server_admin, secrets_everywhere
):
    from django.urls import reverse

    _, phones = secrets_everywhere
    client = as_user(server_admin)
    pages = []
    for model in (RedcapLink, ProviderLink, Participant):
        name = f"admin:projects_{model._meta.model_name}"
        pages.append(client.get(reverse(f"{name}_changelist")).content.decode())
        for obj in model.objects.all()[:30]:
            response = client.get(reverse(f"{name}_change", args=[obj.pk]))
            assert response.status_code == 200
            pages.append(response.content.decode())
    shown = "\n".join(pages)
    assert f"••••{DEMO_TOKEN[-4:]}" in shown  # the masked form is what is shown
    for secret in (DEMO_TOKEN, TWILIO_AUTH_TOKEN, MOSIO_KEY):
        assert secret not in shown
    for phone in phones:
        assert not any(form in shown for form in phone_forms(phone)), phone[-4:]
