"""Secrets at rest: Fernet encryption (MultiFernet for key rotation) and keyed fingerprints.

Keys come from the environment (SECRETS_ENCRYPTION_KEYS, newest first). A fingerprint is an HMAC of
a value under SECRETS_FINGERPRINT_KEY: it answers "is this key already linked elsewhere?" without
decrypting anything, and it cannot be reversed without that key.
"""

import hashlib
import hmac
import json
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class SecretUnreadable(Exception):
    """The stored secret cannot be decrypted with any configured key."""


@cache
def _fernet() -> MultiFernet:
    keys = [k.strip() for k in settings.SECRETS_ENCRYPTION_KEYS if k.strip()]
    if not keys:
        raise ImproperlyConfigured(
            "SECRETS_ENCRYPTION_KEYS is empty: set at least one Fernet key (see .env.example)."
        )
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "SECRETS_ENCRYPTION_KEYS holds a value that is not a Fernet key."
        ) from exc


def reset_keys() -> None:
    """Forget cached keys (after the settings change, e.g. in key-rotation tests)."""
    _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the configured keys."
        ) from exc


def encrypt_json(data: dict) -> str:
    return encrypt(json.dumps(data, sort_keys=True))


def decrypt_json(token: str) -> dict:
    return json.loads(decrypt(token))


def rotate(token: str) -> str:
    """Re-encrypt under the newest key (MultiFernet.rotate)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("A stored secret cannot be decrypted for rotation.") from exc


def fingerprint(value: str, *, purpose: str) -> str:
    key = settings.SECRETS_FINGERPRINT_KEY
    if not key:
        raise ImproperlyConfigured("SECRETS_FINGERPRINT_KEY is empty (see .env.example).")
    message = f"{purpose}:{value.strip()}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def last4(value: str) -> str:
    return value.strip()[-4:]


def mask(last_four: str) -> str:
    return f"••••{last_four}" if last_four else ""
