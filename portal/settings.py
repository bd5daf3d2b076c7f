"""StudyText settings. Every value comes from the environment (see .env.example)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional file; the real environment wins

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# Without DJANGO_SECRET_KEY (a fresh checkout, no .env yet) commands that need no stable key run
# on a throwaway one (makemigrations, check). Serving refuses it (portal/wsgi.py, portal/asgi.py)
# unless DEBUG is on, and `check --deploy` reports it (portal.E007).
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
SECRET_KEY_IS_THROWAWAY = not SECRET_KEY
if SECRET_KEY_IS_THROWAWAY:
    from django.core.management.utils import get_random_secret_key

    SECRET_KEY = get_random_secret_key()
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "portal.apps.StudyTextAdminConfig",  # the admin site, with its second-factor check
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc files, served from here (no CDN)
    "django_q",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "portal",
    "billing",
    "projects",
    "messaging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.SecurityHeadersMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "portal.middleware.RequestInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "portal.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portal.middleware.UserTimezoneMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"
ASGI_APPLICATION = "portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
                "billing.context_processors.quota",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------
# SQLite is the embedded default. WAL + IMMEDIATE transactions + a busy timeout keep the web
# server and the django-q2 workers from failing with "database is locked" (docs/architecture.md,
# "Embedded default and scale-out").
SQLITE_OPTIONS = {
    "timeout": 20,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = SQLITE_OPTIONS
else:
    # The ORM broker reconnects on every poll; without persistent connections PostgreSQL is
    # ten times slower (docs/architecture.md, "Embedded default and scale-out").
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=600)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and task queue -----------------------------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

Q_CLUSTER = {
    # Keys the Redis queue and stats: sites (or test runs) sharing one Redis need their own name.
    # django-q2 reads Q_CLUSTER_NAME too; it must match, which reading it here guarantees.
    "name": env("Q_CLUSTER_NAME", default="studytext"),
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 60,  # a task running longer is killed ...
    "retry": 120,  # ... before it could be handed out a second time (timeout < retry)
    "max_attempts": 3,
    "save_limit": 500,
    "poll": 0.5,
    "bulk": 1,
    "catch_up": False,  # the dispatcher decides what a missed run owes; q2 must not replay runs
    "label": "Background tasks",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Authentication ---------------------------------------------------------------------------
AUTH_USER_MODEL = "portal.User"
AUTHENTICATION_BACKENDS = [
    "portal.backends.EmailBackend",
    "portal.backends.ServerAdminBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
PASSWORD_RESET_TIMEOUT = 60 * 60 * 24 * 3

# Sign-in throttling (portal/throttle.py; docs/compliance.md "Sign-in"). Counters live in the
# cache: with several web processes, give them a shared one (REDIS_URL).
SIGNIN_ACCOUNT_FAILURE_LIMIT = env.int("SIGNIN_ACCOUNT_FAILURE_LIMIT", default=5)
SIGNIN_ADDRESS_FAILURE_LIMIT = env.int("SIGNIN_ADDRESS_FAILURE_LIMIT", default=20)
SIGNIN_DEVICE_FAILURE_LIMIT = env.int("SIGNIN_DEVICE_FAILURE_LIMIT", default=10)
SIGNIN_WINDOW_MINUTES = env.int("SIGNIN_WINDOW_MINUTES", default=15)
# How many reverse proxies in front of the portal append to X-Forwarded-For. 0: no proxy, the
# address is the connection's own; the header is ignored, whatever a client puts in it.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Requests a client address (or a target address) may make per hour on the pages e-mails leave
# from, and per minute on each webhook link (portal/throttle.py).
RATE_LIMITS = {
    "password_reset": (5, 3600),
    "password_reset_target": (3, 3600),
    "signup": (10, 3600),
    "resend_verification": (5, 3600),
    "resend_verification_target": (3, 3600),
    "two_factor": (10, 900),
    "webhook": (env.int("WEBHOOK_RATE_PER_MINUTE", default=600), 60),
    # Posts a minute each project's REDCap Data Entry Trigger accepts (docs/redcap.md).
    "det": (env.int("DET_RATE_PER_MINUTE", default=300), 60),
    # The REST API: requests a minute per token (or signed-in person), and per address for
    # calls without a token.
    "api": (env.int("API_RATE_PER_MINUTE", default=300), 60),
    "api_anonymous": (env.int("API_ANONYMOUS_RATE_PER_MINUTE", default=60), 60),
}

# Two-factor sign-in (django-otp): TOTP apps and recovery codes. Administrators must use it.
OTP_TOTP_ISSUER = env("OTP_TOTP_ISSUER", default="StudyText")
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# API tokens: days a new token lasts unless its owner picks another term (0: no expiry).
API_TOKEN_DEFAULT_DAYS = env.int("API_TOKEN_DEFAULT_DAYS", default=90)

# --- Internationalisation ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DEFAULT_TIME_ZONE", default="America/New_York")
USE_I18N = True
USE_TZ = True
# One date format and one date-and-time format across the site (portal/formats/en/formats.py).
FORMAT_MODULE_PATH = ["portal.formats"]

# --- Static files -----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Files people upload (an onboarding request's IRB letter): kept here, outside the web root and
# never served by URL; a view that checks who asks hands them out (portal/storage.py).
PRIVATE_MEDIA_ROOT = Path(env("PRIVATE_MEDIA_ROOT", default="") or BASE_DIR / "private-media")
ATTACHMENT_MAX_MB = env.int("ATTACHMENT_MAX_MB", default=10)

# --- E-mail -----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="StudyText <studytext@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Starts the subject of every e-mail StudyText sends (billing/mail.py), not only Django's own.
EMAIL_SUBJECT_PREFIX = env("EMAIL_SUBJECT_PREFIX", default="[StudyText] ")

# --- REST API ---------------------------------------------------------------------------------
# JSON only, strict input, one error shape, paged lists, a rate limit per token (portal/api/,
# docs/architecture.md "The REST API").
REST_FRAMEWORK = {
    # Token first: DRF takes the WWW-Authenticate header from the first class, and without one
    # (SessionAuthentication has none) a missing or wrong token is answered 403 instead of 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "portal.api.authentication.TokenScopePermission",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["portal.api.errors.LimitedJSONParser"],
    "EXCEPTION_HANDLER": "portal.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "portal.api.schema.ApiAutoSchema",
    "DEFAULT_PAGINATION_CLASS": "portal.api.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["portal.api.throttling.ApiRateThrottle"],
}
# The largest JSON body the API reads (a message rule with a long record list fits easily).
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "StudyText API",
    "DESCRIPTION": (BASE_DIR / "portal" / "api" / "description.md").read_text(),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # portal/api/urls.py's `id` converter: up to 18 digits.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "minimum": 0, "maximum": 999_999_999_999_999_999}
    },
    "ENUM_NAME_OVERRIDES": {
        "ProjectStatusEnum": "projects.models.Project.Status",
        "RuleStatusEnum": "messaging.models.MessageRule.Status",
        "MessageStatusEnum": "messaging.models.Message.Status",
        "OnboardingStatusEnum": "portal.models.OnboardingRequest.Status",
        "CreditPackStatusEnum": "billing.models.RequestStatus",
        "ParticipantIssueEnum": "projects.models.Participant.Issue",
        "ReplyKeywordEnum": "messaging.models.Reply.Keyword",
        "RuleListStatusEnum": ["current", "archived"],
        "HealthStatusEnum": ["ok", "failing"],
        "ParticipantStatusEnum": "portal.api.serializers.PARTICIPANT_STATUSES",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api.schema.strict_request_bodies",
    ],
    "TAGS": [
        {"name": "api", "description": "Where to start, and whether StudyText is working."},
        {"name": "projects", "description": "Your projects: links, plan and this month's use."},
        {"name": "participants", "description": "Participants (numbers masked), opt-outs."},
        {"name": "message rules", "description": "What to text, to whom and when."},
        {"name": "messages", "description": "The texts: log, detail, ad-hoc texts, sends."},
        {"name": "replies", "description": "What participants texted back."},
        {"name": "inbox", "description": "Unread replies and flags waiting on the team."},
        {"name": "text surveys", "description": "Results of surveys answered by text."},
        {"name": "billing", "description": "Usage, history and credit packs."},
        {"name": "onboarding", "description": "Your requests to enable texting."},
    ],
}
# Health (portal/health.py): seconds after which a waiting task, a silent dispatcher, or texts
# waiting with no sender make `GET /api/health/` fail (HTTP 503).
HEALTH_TASK_MAX_SECONDS = env.int("HEALTH_TASK_MAX_SECONDS", default=300)
HEALTH_DISPATCHER_MAX_SECONDS = env.int("HEALTH_DISPATCHER_MAX_SECONDS", default=300)
HEALTH_SENDER_MAX_SECONDS = env.int("HEALTH_SENDER_MAX_SECONDS", default=300)

# --- Security ---------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 8)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# Secrets at rest (REDCap tokens, provider credentials): Fernet keys, newest first. The keyed
# fingerprint detects a credential already linked elsewhere without decrypting anything.
SECRETS_ENCRYPTION_KEYS = env.list("SECRETS_ENCRYPTION_KEYS", default=[])
SECRETS_FINGERPRINT_KEY = env("SECRETS_FINGERPRINT_KEY", default="")

# --- StudyText --------------------------------------------------------------------------------
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=False)
# REDCap addresses (projects/netguard.py, docs/compliance.md "Outbound calls"): only public
# https on port 443, unless an institution's REDCap lives on an internal network named here
# (comma-separated CIDRs, e.g. 10.20.0.0/16). REDCAP_ALLOW_LOOPBACK_HTTP is for development
# only (the built-in REDCap sandbox on http://127.0.0.1:<port>/): with DEBUG off, neither web
# nor worker processes start with it on.
REDCAP_INTERNAL_NETWORKS = env.list("REDCAP_INTERNAL_NETWORKS", default=[])
_DEV_SANDBOX = DEBUG and SANDBOX_ENABLED
REDCAP_ALLOW_LOOPBACK_HTTP = env.bool("REDCAP_ALLOW_LOOPBACK_HTTP", default=_DEV_SANDBOX)
SMS_GATEWAY_OVERRIDE = env("SMS_GATEWAY_OVERRIDE", default="")
MOSIO_API_BASE = env("MOSIO_API_BASE", default="https://api.mosio.com/api/")
# Replies and statuses are read from Mosio's history this often per link (docs/mosio.md,
# "Polling"); the schedule runs each minute, so less than 60 means each minute.
MOSIO_POLL_SECONDS = env.int("MOSIO_POLL_SECONDS", default=60)
# A link's first poll looks back to its creation, at most this far.
MOSIO_POLL_LOOKBACK_HOURS = env.int("MOSIO_POLL_LOOKBACK_HOURS", default=24)
TWILIO_API_BASE = env("TWILIO_API_BASE", default="https://api.twilio.com/2010-04-01/")
QUOTA_UNIT = env("QUOTA_UNIT", default="message")  # "message" or "segment"
PRICE_CURRENCY = env("PRICE_CURRENCY", default="USD")  # of plan and credit-pack prices (ISO 4217)
DEMO_PASSWORD = env("DEMO_PASSWORD", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    # Webhook addresses hold a secret: Django's request logs show them masked.
    "filters": {"webhook_secrets": {"()": "portal.log_filters.MaskWebhookSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {
        # httpx logs full request URLs at INFO; keep it quiet so nothing sensitive leaks.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "django.request": {"filters": ["webhook_secrets"]},
        "django.server": {"filters": ["webhook_secrets"]},
    },
}

# The sender loop (messaging/sender.py): provider calls in flight at once, per loop and per link,
# and how long one loop runs before handing over to a fresh task (below the q2 timeout).
SENDER_THREADS = env.int("SENDER_THREADS", default=64)
SENDER_MAX_IN_FLIGHT_PER_LINK = env.int("SENDER_MAX_IN_FLIGHT_PER_LINK", default=16)
SENDER_MAX_SECONDS = env.float("SENDER_MAX_SECONDS", default=40)
# Read-ahead (docs/sending.md, "Reading REDCap ahead"): what a text pipes, and whether its survey is
# complete, is read from REDCap at most this many seconds before the text leaves (older reads are
# read again), in exports of at most SENDER_READ_BATCH records; a slow link's next minute or so is
# read in one export instead of one per text.
SENDER_READ_AHEAD_SECONDS = env.float("SENDER_READ_AHEAD_SECONDS", default=120)
SENDER_READ_BATCH = env.int("SENDER_READ_BATCH", default=200)
# Sender shards (docs/sending.md, "Shards"): N loops side by side, each owning the provider links
# whose id % N is its shard; 1: one loop for the whole site. Checked at start-up (messaging.checks).
SENDER_SHARDS = env.str("SENDER_SHARDS", default="1")
# Texts that never reached the provider (refused connection, 429) are retried this long before
# they fail and the owners are told (docs/sending.md).
SENDER_RETRY_MINUTES = env.int("SENDER_RETRY_MINUTES", default=60)
MESSAGE_RETENTION_DAYS = env.int("MESSAGE_RETENTION_DAYS", default=365)
# The bounds within which a project's owners pick their own retention (the Settings page).
MESSAGE_RETENTION_MIN_DAYS = env.int("MESSAGE_RETENTION_MIN_DAYS", default=30)
MESSAGE_RETENTION_MAX_DAYS = env.int("MESSAGE_RETENTION_MAX_DAYS", default=2555)
PARTICIPANT_SYNC_BATCH_SIZE = env.int("PARTICIPANT_SYNC_BATCH_SIZE", default=200)
# REDCap's Data Entry Trigger (docs/redcap.md, "Coalescing"): a record is read again once its
# saves have paused this many seconds, and at the latest this many seconds after the first.
DET_QUIET_SECONDS = env.float("DET_QUIET_SECONDS", default=2.0)
DET_MAX_WAIT_SECONDS = env.float("DET_MAX_WAIT_SECONDS", default=20.0)
