"""Settings for every environment, read from the environment (12-factor).

With no ``DATABASE_URL`` the platform runs on a local SQLite file with Celery in eager mode, so
the demo needs nothing else running. ``DATABASE_URL=postgres://…`` switches to PostgreSQL, which
is what tests and production use. ``config.settings.production`` adds the production checks.
"""

import datetime
import os
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# True only under config.settings.production: commands that must never touch a live deployment
# (seed_demo, with its published demo password) refuse to run there.
PRODUCTION = False
INSECURE_DEFAULT_SECRET_KEY = "insecure-dev-key-change-me"
# Read raw: django-environ would treat a key starting with "$" as a reference to another variable.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or INSECURE_DEFAULT_SECRET_KEY
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "inventory.apps.TenantAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.headless",
    "inventory",
    "discrepancies",
    "upstock",
    "counts",
    "demo",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "core.middleware.ErrorShapeMiddleware",
    "core.middleware.BodySizeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "inventory.tenancy.middleware.AdminTenantMiddleware",
    "core.middleware.MetricsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
# Routes answer with and without a trailing slash themselves (see config.urls), so Django must
# never redirect: a redirect drops a POST body.
APPEND_SLASH = False

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
            ],
        },
    },
]

if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env("SQLITE_PATH", default=str(BASE_DIR / "db.sqlite3")),
            # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of
            # failing with "database is locked" half-way through a transaction.
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }

# Set CACHE_URL (e.g. redis://…/1) so every web process shares it: sign-in throttling must agree.
# Production settings refuse to start without one (or with a per-process cache).
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env("MEDIA_ROOT", default=str(BASE_DIR / "media"))

# --- Sign-in: django-allauth, Google only, no open sign-up --------------------------------------
SITE_ID = 1
LOGIN_REDIRECT_URL = "/admin/"
ACCOUNT_ADAPTER = "inventory.tenancy.adapters.ClosedAccountAdapter"
SOCIALACCOUNT_ADAPTER = "inventory.tenancy.adapters.InvitedOnlySocialAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
# A Google login links to the user an admin created, by verified e-mail address.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_PROVIDERS = {
    "google": {
        "SCOPE": ["profile", "email"],
        "AUTH_PARAMS": {"access_type": "online"},
        "APP": {
            "client_id": env("GOOGLE_CLIENT_ID", default=""),
            "secret": env("GOOGLE_CLIENT_SECRET", default=""),
            "key": "",
        },
    }
}
HEADLESS_ONLY = False
HEADLESS_CLIENTS = ("app",)

# --- API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "inventory.tenancy.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.PagePagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    # No RecursionError on deeply nested JSON (inventory.api.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
    # Sign-in attempts per client address and per account (inventory.api.throttling).
    "DEFAULT_THROTTLE_RATES": {
        "login": env("LOGIN_THROTTLE_RATE", default="30/min"),
        "login_account": env("LOGIN_ACCOUNT_THROTTLE_RATE", default="10/min"),
    },
    # How many proxies of ours append to X-Forwarded-For in front of the web process. 0: the
    # client address is REMOTE_ADDR and X-Forwarded-For is ignored, since anyone can write it.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
# The largest request body, bytes: bigger ones answer 413 request_too_large before a byte is
# read. A view that takes more (a file import) or less declares ``max_body_size``
# (core.middleware.BodySizeMiddleware). Django's own limit is one size for every view, and
# the middleware checks every view's body, so it is off.
REQUEST_BODY_MAX_SIZE = env.int("REQUEST_BODY_MAX_SIZE", default=2_621_440)
DATA_UPLOAD_MAX_MEMORY_SIZE = None
SPECTACULAR_SETTINGS = {
    "TITLE": "Inventory platform API",
    "DESCRIPTION": (
        "Perpetual, auditable multi-tenant stock. Authenticate with "
        "`Authorization: Token <key>`; name the organisation with `X-Organization: <slug>` "
        "when you belong to several. Every error is `{code, detail, fields}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.document_errors",  # the 4xx error shape on every operation
    ],
    # A "status" of the same kind appears in several answers (a pass, and a pass in its
    # session's progress): one named enum each, rather than a name made up from a hash.
    "ENUM_NAME_OVERRIDES": {
        "SaleStatusEnum": "inventory.models.SaleStatus",
        "UpstockRunStatusEnum": "upstock.models.RunStatus",
        "UpstockLineStatusEnum": "upstock.models.LineStatus",
        "SessionStatusEnum": "counts.models.SessionStatus",
        "PassStatusEnum": "counts.models.PassStatus",
        "VarianceStatusEnum": "counts.models.VarianceStatus",
        "DiscrepancyStatusEnum": "discrepancies.models.Status",
        "DiscrepancyTypeEnum": "discrepancies.models.Kind",
        "DiscrepancyDocumentTypeEnum": "discrepancies.models.DocumentType",
        # the names these had before the discrepancies' fields of the same names came
        "ModeEnum": "discrepancies.models.CorrectionMode",  # = counts' PostingMode
        "TypeEnum": ["damage", "waste", "expiry"],  # a write-off's type
        "ActionEnum": "inventory.models.AuditAction",
    },
}
# /metrics: when METRICS_TOKEN is set, only a request with "Authorization: Bearer <token>" may
# read it (inventory.ops.metrics). Production settings need the token or METRICS_PUBLIC=true.
# Read raw, like the secret key: django-environ would expand a leading "$".
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
METRICS_PUBLIC = env.bool("METRICS_PUBLIC", default=False)
# Token last-used times are written at most this often (seconds), so a busy tablet does not
# turn every read into a write.
API_TOKEN_TOUCH_INTERVAL = 60
# How far ahead of the server's clock a device may date a sale, document or scan (minutes): a
# clock running a little fast is fine, hours ahead is a clock or time-zone bug that would
# misdate the ledger and the expiry checks.
BUSINESS_TIME_MAX_AHEAD_MINUTES = env.int("BUSINESS_TIME_MAX_AHEAD_MINUTES", default=15)
# How far back an upstock run's window reaches when the floor has no earlier run (hours): the
# first night, or after every earlier run was abandoned.
UPSTOCK_LOOKBACK_HOURS = env.int("UPSTOCK_LOOKBACK_HOURS", default=24)
# The earliest business time (and date) the API accepts (sales, documents, scans, expiry dates,
# ledger filters). Nothing this platform records happened before it: year 1 or 1900 is a device
# or typing error, and would overflow local-date arithmetic. Older history comes in through a
# data migration, not the API.
BUSINESS_TIME_EARLIEST = datetime.date.fromisoformat(
    env("BUSINESS_TIME_EARLIEST", default="2000-01-01")
)

# --- Celery --------------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL or None)
# No broker configured: run tasks inline so the demo needs nothing running.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE: dict = {
    # invariants 1-2 for every organisation; admins are e-mailed when anything is off
    "reconcile-inventory-nightly": {
        "task": "inventory.reconcile_inventory_nightly",
        "schedule": crontab(hour=3, minute=30),
    },
    # the one scheduler of nightly jobs (inventory.scheduling): each tick runs what is due
    # per store (its closing time, time zone, closed days, holidays), each night once; a tick
    # left waiting longer than the next one is dropped, since that one does its work
    "nightly-jobs": {
        "task": "inventory.nightly_jobs",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 240},
    },
}

# --- E-mail --------------------------------------------------------------------------------------
# EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587; default prints to the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="inventory@localhost")

# --- Logging: JSON lines with request id, org and user -------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "core.logging.RequestContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "django.server": {"level": "WARNING"},
    },
}
