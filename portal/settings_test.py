"""Test settings: fast hashing, in-memory mail, fake SMS, django-q2 inline."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("SECRETS_ENCRYPTION_KEYS", "w2nrQiDO3D_4uvgFdTsmaMCiQ_Qx0pb4fwTJ3dJsMBE=")
os.environ.setdefault("SECRETS_FINGERPRINT_KEY", "test-fingerprint-key")

from portal.settings import *  # noqa: E402,F403
from portal.settings import BASE_DIR, DATABASES, Q_CLUSTER, REDIS_URL  # noqa: E402

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_GATEWAY_OVERRIDE = "locmem"
SANDBOX_ENABLED = True
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Tests never run collectstatic: WhiteNoise serves from the finders instead of warning (an error
# under pytest's filterwarnings) that STATIC_ROOT does not exist.
WHITENOISE_AUTOREFRESH = True
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # async_task runs inline (django-q2's advice for tests)
# Under pytest-xdist (make test runs two workers) each worker gets a Redis database of its own,
# REDIS_URL's number plus the worker's (gw0: +0, gw1: +1), so that one worker's tasks in the
# broker are never seen, taken or removed by another. pytest-django already gives each worker its
# own test database; SQLite files and private media are named by process below.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if REDIS_URL and _xdist_worker:
    from urllib.parse import urlsplit

    from django.core.exceptions import ImproperlyConfigured

    _url = urlsplit(REDIS_URL)
    _db = int(_url.path.strip("/") or 0) + int(_xdist_worker.removeprefix("gw"))
    if _db > 15:
        raise ImproperlyConfigured(
            f"REDIS_URL's database number plus the xdist worker's ({_xdist_worker}) is {_db}; "
            "Redis has 16 (0-15). Give REDIS_URL a lower database number."
        )
    REDIS_URL = _url._replace(path=f"/{_db}").geturl()
    Q_CLUSTER["redis"] = REDIS_URL
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The REDCap sandbox is served by the live server on 127.0.0.1 over http (development only).
REDCAP_ALLOW_LOOPBACK_HTTP = True

# A file, not :memory:, so that threads in concurrency tests and the live server get their own
# connections, as the web server and workers do in production. One file per test process.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")}
# Uploaded attachments go to a throwaway folder, one per test process, never into the checkout.
PRIVATE_MEDIA_ROOT = Path(tempfile.gettempdir()) / f"studytext-test-private-{os.getpid()}"

# The sender sends inline: a test's own transaction is invisible to other threads' connections.
# Tests of the threaded sender use transactional databases and override this.
SENDER_THREADS = 0
