"""`make run` writes a development .env with fresh secrets (portal/envfile.py)."""

from cryptography.fernet import Fernet

from portal import envfile


def read(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_it_writes_a_fresh_encryption_key_that_only_its_owner_may_read(tmp_path):
    path = tmp_path / ".env"
    assert envfile.main(str(path)) == 0
    values = read(path)
    assert path.stat().st_mode & 0o777 == 0o600
    key = Fernet(values["SECRETS_ENCRYPTION_KEYS"])  # a real Fernet key
    assert key.decrypt(key.encrypt(b"a REDCap token")) == b"a REDCap token"
    assert len(values["SECRETS_FINGERPRINT_KEY"]) >= 32
    assert values["SANDBOX_ENABLED"] == "true" and values["DJANGO_DEBUG"] == "true"

    other = tmp_path / "other.env"
    envfile.main(str(other))
    assert read(other)["SECRETS_ENCRYPTION_KEYS"] != values["SECRETS_ENCRYPTION_KEYS"]


def test_it_keeps_an_existing_file(tmp_path):
    path = tmp_path / ".env"
    path.write_text("SECRETS_ENCRYPTION_KEYS=mine\n")
    assert envfile.main(str(path)) == 0
    assert path.read_text() == "SECRETS_ENCRYPTION_KEYS=mine\n"
