"""Carnet settings, read from the environment through the typed helpers of ``config.env``.

Defaults are the embedded development set-up of ``make run`` (SQLite under ``var/``, a file-system Celery
broker, e-mails written to ``var/mail``); production sets ``DATABASE_URL``, ``REDIS_URL``, the e-mail server
and ``CARNET_MASTER_KEY``, and the system checks in ``records/checks.py`` refuse a production start that lacks them.
"""

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.core import RESERVED_ATTRS as JSON_LOG_RESERVED_ATTRS

from .env import env_bool, env_int, env_list, env_optional, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("CARNET_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("CARNET_DEBUG", False)
INSECURE_SECRET_KEY = "django-insecure-carnet-development-only-never-in-production"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY", INSECURE_SECRET_KEY)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_email",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "oauth2_provider",  # connected apps' authorisation server (issue 17: accounts.smart)
    # The kernel (models, actions, the door, the trail, the outbox) and the doors that call it (docs/architecture.md).
    "records",
    "access_control",
    "notifications",
    "accounts",
    "patients",
    "practitioners",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files (see Static files below), before any session work
    "plumbing.headers.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "accounts.middleware.AssuranceMiddleware",  # the acr of a national sign-in, on the trail (issue 17)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The unread count of the patient's notification centre, lazy: free on pages that do not show it.
                "patients.views_notifications.unread",
                "plumbing.text_size.text_size",  # the remembered text size, a class on <html>
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------------
# Persistent connections: without them a request pays a new PostgreSQL connection and throughput falls ~7x.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'carnet.sqlite3'}")
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
elif DATABASES["default"]["ENGINE"].endswith("postgresql") and env_bool("DATABASE_SERVER_SIDE_BINDING", True):
    # psycopg 3 binds parameters on the server and prepares a statement from its 5th execution on a connection:
    # the access queries are then planned once per connection, not on every call (~1.2 ms each, bench/README.md).
    # Named prepared statements need a session (a direct connection, or PgBouncer >= 1.21 with
    # max_prepared_statements); turn this off behind an older transaction-pooling PgBouncer.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SILENCED_SYSTEM_CHECKS = ["models.W040"]  # covering indexes are PostgreSQL-only; SQLite is development only

# --- Broker, cache ------------------------------------------------------------------------------------
REDIS_URL = env_optional("REDIS_URL")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # A Redis that hangs (accepts, never answers) must not hold a request's after-commit hand-off for long:
    # connecting waits at most 1 s and each reply 2 s, and a publisher stops trying to connect after 1 s
    # (CELERY_BROKER_CONNECTION_TIMEOUT; Celery's 4 s default meant three 2 s tries). The hand-off then gives up
    # in about 2 s and the notice waits for the sweep (docs/operations.md, "A Redis that hangs"). The socket
    # timeout stays above the worker's 1 s BRPOP poll, so an idle worker does not time out its own read; the
    # worker's own reconnection loop is not bounded by the connection timeout (it retries for ever, below).
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "visibility_timeout": 3600,
        "socket_connect_timeout": env_int("CARNET_BROKER_CONNECT_TIMEOUT_SECONDS", 1, minimum=1),
        "socket_timeout": env_int("CARNET_BROKER_SOCKET_TIMEOUT_SECONDS", 2, minimum=2),
    }
    CELERY_BROKER_CONNECTION_TIMEOUT = CELERY_BROKER_TRANSPORT_OPTIONS["socket_connect_timeout"]
    # Falls back to a per-process memory cache while Redis is down (docs/architecture.md, "When Redis is down").
    CACHES = {"default": {"BACKEND": "plumbing.cache.ResilientRedisCache", "LOCATION": REDIS_URL}}
else:
    # Embedded broker for `make run`: messages are files under var/broker, shared by web and worker.
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)  # kombu's file-system transport needs them
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fix-up would close the database connection before and after every task; with this it closes
# them every 1 000 tasks only, and config.celery closes them the way Django does after a request (CONN_MAX_AGE,
# health checks, errors).
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that lost the broker retries for ever (Celery's default gives up after 100 tries and exits): a long
# Redis outage must not end it. A worker that exits anyway is restarted by compose / systemd (docs/operations.md).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_TIMEZONE = "Europe/Paris"
CELERY_BEAT_SCHEDULE: dict = {}  # filled by the apps' scheduled rules (access_control, notifications)
# The worker's heartbeat (records.heartbeat): /readyz check "worker" fails when no worker ran it for STALE s.
# The message expires after one period, so a worker back from an outage does not work through a backlog of them.
CARNET_WORKER_HEARTBEAT_SECONDS = env_int("CARNET_WORKER_HEARTBEAT_SECONDS", 60, minimum=5)
CARNET_WORKER_HEARTBEAT_STALE_SECONDS = max(
    env_int("CARNET_WORKER_HEARTBEAT_STALE_SECONDS", 3 * CARNET_WORKER_HEARTBEAT_SECONDS, minimum=1),
    CARNET_WORKER_HEARTBEAT_SECONDS + 5,
)
CELERY_BEAT_SCHEDULE["records.worker_heartbeat"] = {
    "task": "records.worker_heartbeat",
    "schedule": float(CARNET_WORKER_HEARTBEAT_SECONDS),
    "options": {"expires": float(CARNET_WORKER_HEARTBEAT_SECONDS)},
}

# --- E-mail -------------------------------------------------------------------------------------------
EMAIL_HOST = env_optional("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
else:
    # No mail server in development: messages land as files in the local mailbox var/mail.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Carnet <ne-pas-repondre@carnet.example>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The domain of each notice's stable Message-ID (<notice-123.carnet@domain>, notifications.channels.email).
CARNET_MAIL_DOMAIN = env_str(
    "CARNET_MAIL_DOMAIN", DEFAULT_FROM_EMAIL.rpartition("@")[2].strip("> ") or "carnet.invalid"
)

# --- Auth ---------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "records.User"
LOGIN_URL = "patients:login"
LOGIN_REDIRECT_URL = "/"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
OTP_TOTP_ISSUER = "Carnet"
OTP_EMAIL_TOKEN_VALIDITY = 600
OTP_EMAIL_THROTTLE_FACTOR = 1
OTP_TOTP_THROTTLE_FACTOR = 1
# Throttling of sign-in, recovery and identity look-ups (plumbing.throttling, accounts.auth, README "Security").
# Per account: a few failures; per client address: many more, since a hospital behind one NAT shares an address.
CARNET_LOGIN_ATTEMPTS = env_int("CARNET_LOGIN_ATTEMPTS", 5, minimum=1)
CARNET_LOGIN_ADDRESS_ATTEMPTS = env_int("CARNET_LOGIN_ADDRESS_ATTEMPTS", 100, minimum=1)
CARNET_LOGIN_WINDOW_SECONDS = env_int("CARNET_LOGIN_WINDOW_SECONDS", 900, minimum=1)
CARNET_LOOKUP_ADDRESS_ATTEMPTS = env_int("CARNET_LOOKUP_ADDRESS_ATTEMPTS", 200, minimum=1)  # A11, all accounts, hour
CARNET_RECOVERY_SECONDS = env_int("CARNET_RECOVERY_SECONDS", 30 * 60, minimum=60)  # life of a recovery code
# The reverse proxies whose X-Forwarded-For is believed (addresses or CIDRs); others' is ignored.
CARNET_TRUSTED_PROXIES = env_list("CARNET_TRUSTED_PROXIES", [])
for _proxy in CARNET_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"CARNET_TRUSTED_PROXIES: {_proxy!r} is not an address or a network.") from None
CARNET_PRACTITIONER_IDLE_SECONDS = env_int("CARNET_PRACTITIONER_IDLE_SECONDS", 15 * 60, minimum=60)
CARNET_STEP_UP_SECONDS = env_int("CARNET_STEP_UP_SECONDS", 300, minimum=30)  # re-check before sensitive acts


def _openid_provider(prefix: str, *, scopes: str, acr_values: str, strong_acr: str) -> dict:
    """One national OpenID provider (issue 17, docs/sign-in.md): unset issuer = its button is hidden."""
    return {
        "issuer": (env_optional(f"{prefix}_ISSUER") or "").rstrip("/"),
        "client_id": env_optional(f"{prefix}_CLIENT_ID") or "",
        # A client secret, or a private key (PEM) for private_key_jwt; both read from *_FILE too.
        "client_secret": env_optional(f"{prefix}_CLIENT_SECRET") or "",
        "private_key": env_optional(f"{prefix}_PRIVATE_KEY") or "",
        "scopes": env_str(f"{prefix}_SCOPES", scopes),
        "acr_values": env_str(f"{prefix}_ACR_VALUES", acr_values),  # asked of the provider
        "strong_acr": env_list(f"{prefix}_STRONG_ACR", strong_acr.split(",")),  # waive Carnet's second factor
        "timeout": env_int(f"{prefix}_TIMEOUT_SECONDS", 10, minimum=1),
    }


# Pro Santé Connect: practitioners' door and access tokens on the REST and FHIR APIs (accounts.psc, jwt_tokens).
CARNET_PSC = {
    **_openid_provider("CARNET_PSC", scopes="openid scope_all", acr_values="eidas1", strong_acr="eidas2,eidas3"),
    "api_audience": env_optional("CARNET_PSC_API_AUDIENCE") or "",  # unset: PSC tokens are not accepted on the API
    "jwks_refetch_seconds": env_int("CARNET_PSC_JWKS_REFETCH_SECONDS", 60, minimum=1),  # floor on key refetches
    "jwks_max_age_seconds": env_int("CARNET_PSC_JWKS_MAX_AGE_SECONDS", 3600, minimum=60),
    "leeway_seconds": env_int("CARNET_PSC_LEEWAY_SECONDS", 30, minimum=0),
}
# FranceConnect: patients' sign-in and activation (accounts.franceconnect). eidas2+ is FranceConnect+.
CARNET_FRANCECONNECT = _openid_provider(
    "CARNET_FRANCECONNECT",
    scopes="openid given_name family_name birthdate gender birthplace birthcountry email",
    acr_values="eidas1",
    strong_acr="eidas2,eidas3",
)

# --- Security -----------------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 30 * 60, minimum=60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_SAVE_EVERY_REQUEST = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# No page may be framed (X-Frame-Options and CSP frame-ancestors agree). The only framed responses are document
# bodies in Carnet's own viewers: records.storage.body_response gives them "frame-ancestors 'self'" and their
# views X-Frame-Options SAMEORIGIN.
X_FRAME_OPTIONS = "DENY"
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # probes from inside the cluster, in plain HTTP
_PROVIDER_ORIGINS = sorted(
    {"{0.scheme}://{0.netloc}".format(urlsplit(p["issuer"])) for p in (CARNET_PSC, CARNET_FRANCECONNECT) if p["issuer"]}
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "frame-src": [SELF],
        "frame-ancestors": [NONE],
        # The sign-in and sign-out buttons of the national providers are forms whose answer redirects there.
        "form-action": [SELF, *_PROVIDER_ORIGINS],
        "base-uri": [NONE],
    }
}
CARNET_PERMISSIONS_POLICY = (  # plumbing.headers: browser features Carnet never uses, off everywhere
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), midi=(), payment=(), publickey-credentials-get=(), screen-wake-lock=(), usb=(), "
    "xr-spatial-tracking=(), browsing-topics=()"
)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- I18n ---------------------------------------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

# --- Static files -------------------------------------------------------------------------------------
# The web process serves them itself through WhiteNoise (no separate file server): in production from
# STATIC_ROOT, filled by `collectstatic` at image build, with content-hashed names (cached for a year by
# browsers and proxies) and gzip/Brotli copies. The hashed names come from a manifest that `{% static %}`
# reads, and that refuses a file missing from it; so development and the tests (which have no collectstatic)
# use plain names served from the apps' folders on each request (tests/environment.py turns the manifest off).
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("CARNET_STATIC_ROOT", str(VAR_DIR / "staticfiles")))
CARNET_STATIC_MANIFEST = env_bool("CARNET_STATIC_MANIFEST", not DEBUG)
if CARNET_STATIC_MANIFEST:
    from whitenoise.compress import Compressor

    _staticfiles_storage = "whitenoise.storage.CompressedManifestStaticFilesStorage"
    # Source maps (half the bytes: Swagger UI's and ReDoc's) are fetched by developer tools only: compressing
    # them at the highest Brotli level would double collectstatic's time for nobody.
    WHITENOISE_SKIP_COMPRESS_EXTENSIONS = (*Compressor.SKIP_COMPRESS_EXTENSIONS, "map")
else:
    _staticfiles_storage = "django.contrib.staticfiles.storage.StaticFilesStorage"
    WHITENOISE_USE_FINDERS = True
    WHITENOISE_AUTOREFRESH = True  # files looked up per request: no STATIC_ROOT needed, edits show at once

# --- Documents ----------------------------------------------------------------------------------------
# Master keys: "id:base64key[,id:base64key…]", the first one wraps new data keys (rule D, key rotation).
CARNET_MASTER_KEY = env_optional("CARNET_MASTER_KEY")
CARNET_DOCUMENT_STORAGE = env_str("CARNET_DOCUMENT_STORAGE", "local")
if CARNET_DOCUMENT_STORAGE == "s3":
    _documents_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("CARNET_S3_BUCKET"),
            "endpoint_url": env_optional("CARNET_S3_ENDPOINT_URL"),
            "default_acl": "private",
            "file_overwrite": False,
        },
    }
elif CARNET_DOCUMENT_STORAGE == "local":
    _documents_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "documents"), "base_url": None},
    }
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("CARNET_DOCUMENT_STORAGE must be 'local' or 's3'.")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": _staticfiles_storage},
    "documents": _documents_storage,
}

# --- Domain rules (by rule ID); configurable where the rules say so ---------------------------------
CARNET_OPPOSITION_DAYS = env_int("CARNET_OPPOSITION_DAYS", 42, minimum=1)  # L2
CARNET_PROVISIONAL_CODE_DAYS = env_int("CARNET_PROVISIONAL_CODE_DAYS", 42, minimum=1)  # L1
CARNET_SUSPENSION_CLOSE_DAYS = env_int("CARNET_SUSPENSION_CLOSE_DAYS", 42, minimum=1)  # L7
CARNET_ARCHIVE_YEARS = env_int("CARNET_ARCHIVE_YEARS", 10, minimum=1)  # L5
CARNET_EARLY_DELETION_DAYS = env_int("CARNET_EARLY_DELETION_DAYS", 90, minimum=1)  # L5
# Lifecycle rules (records.tasks), hourly: profiles open, suspensions close and purges run within the hour
# after they are due (L3, L7, L5/T4).
CELERY_BEAT_SCHEDULE["records.open_due_profiles"] = {"task": "records.open_due_profiles", "schedule": 3600.0}
CELERY_BEAT_SCHEDULE["records.close_expired_suspensions"] = {
    "task": "records.close_expired_suspensions",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["records.purge_due_profiles"] = {"task": "records.purge_due_profiles", "schedule": 3600.0}
CARNET_HOLD_REMINDER_DAYS = env_int("CARNET_HOLD_REMINDER_DAYS", 14, minimum=1)  # A8
CARNET_HOLD_RELEASE_DAYS = env_int("CARNET_HOLD_RELEASE_DAYS", 30, minimum=1)  # A8
# A8 hold rules (access_control.tasks), hourly: the thresholds are counted in days.
CELERY_BEAT_SCHEDULE["access_control.send_hold_reminders"] = {
    "task": "access_control.send_hold_reminders",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["access_control.release_expired_holds"] = {
    "task": "access_control.release_expired_holds",
    "schedule": 3600.0,
}
# A13: high-profile review alerts left unsent (broker down at commit, worker killed) are queued again.
CELERY_BEAT_SCHEDULE["access_control.sweep_review_alerts"] = {
    "task": "access_control.sweep_review_alerts",
    "schedule": 60.0,
}
CARNET_NOTICE_DEBOUNCE_HOURS = env_int("CARNET_NOTICE_DEBOUNCE_HOURS", 24, minimum=0)  # N1
CARNET_PATIENT_UPLOAD_MAX_BYTES = env_int("CARNET_PATIENT_UPLOAD_MAX_BYTES", 5 * 1024 * 1024, minimum=1)
CARNET_PRACTITIONER_UPLOAD_MAX_BYTES = env_int("CARNET_PRACTITIONER_UPLOAD_MAX_BYTES", 50 * 1024 * 1024, minimum=1)
# FHIR: NIRs are published under the INS-NIR OID only in production (real INS); otherwise under the INS test OID.
CARNET_INS_PRODUCTION = env_bool("CARNET_INS_PRODUCTION", False)
CARNET_LOOKUP_ATTEMPTS = env_int("CARNET_LOOKUP_ATTEMPTS", 20, minimum=1)  # A11, per practitioner and hour
CARNET_LETTER_BATCH_HOUR = env_int("CARNET_LETTER_BATCH_HOUR", 17, minimum=0)  # N4
CARNET_SENDER_ADDRESS = env_list(
    "CARNET_SENDER_ADDRESS", ["Carnet — Assurance Maladie", "TSA 12345", "75948 PARIS CEDEX 19"]
)
CARNET_PUBLIC_URL = env_str("CARNET_PUBLIC_URL", "http://127.0.0.1:8000")

# --- Notice delivery (N5), owned by notifications -----------------------------------------------------
# "dev" makes every notice go through the development channel, which only records (no e-mail, no letter).
CARNET_NOTICE_CHANNEL_OVERRIDE = env_optional("CARNET_NOTICE_CHANNEL_OVERRIDE")
CARNET_NOTICE_MAX_ATTEMPTS = env_int("CARNET_NOTICE_MAX_ATTEMPTS", 8, minimum=1)
CARNET_NOTICE_RETRY_BASE_SECONDS = env_int("CARNET_NOTICE_RETRY_BASE_SECONDS", 30, minimum=1)
CARNET_NOTICE_RETRY_MAX_SECONDS = env_int("CARNET_NOTICE_RETRY_MAX_SECONDS", 3600, minimum=1)
# The delivery task's hard time limit: the worker kills a run still going after it (an e-mail takes well under
# EMAIL_TIMEOUT, a letter under a second).
CARNET_NOTICE_TASK_TIME_LIMIT_SECONDS = env_int("CARNET_NOTICE_TASK_TIME_LIMIT_SECONDS", 60, minimum=10)
# Notices committed together (more than two) go to the worker in messages of at most this many ids; one run
# claims them in one statement and sends them over its one SMTP connection (notifications.delivery.deliver_batch).
CARNET_NOTICE_BATCH_SIZE = env_int("CARNET_NOTICE_BATCH_SIZE", 50, minimum=1)
# A notice claimed longer ago than this is taken for abandoned (worker killed). It must stay above the task's
# hard time limit, so that no live run still holds a claim the sweep takes over (at most once): a killed
# delivery is retried about one time limit (+ at most one sweep period) later.
CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS = max(
    env_int("CARNET_NOTICE_CLAIM_TIMEOUT_SECONDS", CARNET_NOTICE_TASK_TIME_LIMIT_SECONDS + 15, minimum=1),
    CARNET_NOTICE_TASK_TIME_LIMIT_SECONDS + 5,
)
# The sweep re-queues a due pending notice whose id went to the broker longer ago than this, while the broker's
# queue is empty (the message was lost); while a backlog waits in the queue, only after the longer grace.
CARNET_NOTICE_SWEEP_GRACE_SECONDS = env_int("CARNET_NOTICE_SWEEP_GRACE_SECONDS", 30, minimum=0)
CARNET_NOTICE_SWEEP_BACKLOG_GRACE_SECONDS = env_int("CARNET_NOTICE_SWEEP_BACKLOG_GRACE_SECONDS", 300, minimum=0)
CARNET_NOTICE_SWEEP_BATCH = env_int("CARNET_NOTICE_SWEEP_BATCH", 5000, minimum=1)
CARNET_NOTICE_SWEEP_SECONDS = env_int("CARNET_NOTICE_SWEEP_SECONDS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["notifications.sweep_notices"] = {
    "task": "notifications.sweep_notices",
    "schedule": float(CARNET_NOTICE_SWEEP_SECONDS),
}
CELERY_BEAT_SCHEDULE["notifications.close_letter_batches"] = {
    "task": "notifications.close_letter_batches",
    "schedule": crontab(hour=CARNET_LETTER_BATCH_HOUR, minute=0),  # N4, local time (CELERY_TIMEZONE)
}

# --- Connected apps: the OAuth 2 authorisation server (issue 17: accounts.smart, docs/sign-in.md) --------------
# Authorisation code with PKCE (S256 only) for every client, public or confidential; tokens stored hashed; the
# SMART scopes of accounts.smart; codes live one minute, access tokens one hour, refresh tokens (offline_access)
# 90 days and rotate on use. Clients are registered by staff in the admin site.
# django-oauth-toolkit's own models (named here: migrations that point at them resolve these settings).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105  a model name
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"  # noqa: S105  a model name
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"  # noqa: S105  a model name
OAUTH2_PROVIDER_DEVICE_GRANT_MODEL = "oauth2_provider.DeviceGrant"
CARNET_APP_TOKEN_SECONDS = env_int("CARNET_APP_TOKEN_SECONDS", 3600, minimum=60)
OAUTH2_PROVIDER = {
    "SCOPES_BACKEND_CLASS": "accounts.smart.SmartScopes",
    "OAUTH2_VALIDATOR_CLASS": "accounts.app_server.SmartValidator",
    "ACCESS_TOKEN_GENERATOR": "accounts.app_server.new_access_token",
    "REFRESH_TOKEN_GENERATOR": "accounts.app_server.new_refresh_token",
    "PKCE_REQUIRED": True,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ACCESS_TOKEN_EXPIRE_SECONDS": CARNET_APP_TOKEN_SECONDS,
    "REFRESH_TOKEN_EXPIRE_SECONDS": 90 * 24 * 3600,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    # Registered redirect URIs are https (RFC 9700 2.1); the consent page would redirect over plain http only to
    # a loopback address in any case (accounts.app_authorise.redirect_to_app).
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    "ALLOW_LOCALHOST_LOOPBACK": True,  # native apps' loopback redirects (RFC 8252)
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,  # S256 only
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,  # the database keeps digests, not tokens
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,  # tokens in the Authorization header only
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,  # RFC 9207: the code comes with Carnet's issuer
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
}

# --- REST API and FHIR (issue 8: docs/api.md) ------------------------------------------------------------
REST_FRAMEWORK = {
    # Bearer API tokens first (a 401 then names the Bearer scheme), then the portal session (second factor passed).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.jwt_tokens.PscTokenAuthentication",  # Pro Santé Connect's JWTs (issue 17); passes on carnet_…
        "accounts.api_auth.TokenAuthentication",
        "accounts.api_auth.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "plumbing.api_errors.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["plumbing.json_renderer.JSONRenderer"],
    # JSON with a nesting limit: a deeply nested body is a 400, not a RecursionError (issue 13, item 7).
    "DEFAULT_PARSER_CLASSES": [
        "plumbing.json_parser.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "accounts.api_auth.TokenRateThrottle",
        "accounts.api_auth.AddressRateThrottle",
    ],
    "EXCEPTION_HANDLER": "plumbing.api_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
CARNET_API_TOKEN_RATE = env_str("CARNET_API_TOKEN_RATE", "1200/min")  # per token (or per portal session's account)
CARNET_API_ADDRESS_RATE = env_str("CARNET_API_ADDRESS_RATE", "3000/min")  # per client address
SPECTACULAR_SETTINGS = {
    "TITLE": "Carnet API",
    "DESCRIPTION": "REST API of Carnet for practice software and patient apps. See docs/api.md.",
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from our static files: the CSP allows no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Logs -----------------------------------------------------------------------------------------------
# CARNET_LOG_FORMAT=json: one JSON object a line (python-json-logger) for a log collector; gunicorn.conf.py
# reads the same variable for the web server's own logs. Logs never carry patient data.
CARNET_LOG_FORMAT = env_str("CARNET_LOG_FORMAT", "text")
if CARNET_LOG_FORMAT not in ("text", "json"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("CARNET_LOG_FORMAT must be 'text' or 'json'.")
LOG_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
# A JSON line also carries a record's extra attributes; Django's request logs attach the request itself, whose
# text is the full URL with its query string (a NIR, a birth date): it is left out.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": LOG_FIELDS},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": LOG_FIELDS,
            "reserved_attrs": [*JSON_LOG_RESERVED_ATTRS, "request"],
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json" if CARNET_LOG_FORMAT == "json" else "plain"}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"fontTools": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}},
}
