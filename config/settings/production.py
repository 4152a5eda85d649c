"""Production settings: the base settings plus refusals to start in an unsafe state."""

from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import (
    CACHES,
    INSECURE_DEFAULT_SECRET_KEY,
    METRICS_PUBLIC,
    METRICS_TOKEN,
    SECRET_KEY,
    env,
)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
PRODUCTION = True

if DEBUG:
    raise ImproperlyConfigured("Production settings refuse to start with DJANGO_DEBUG on.")
# The same bar as Django's own deployment check (security.W009), enforced instead of warned.
if (
    SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY
    or SECRET_KEY.startswith(SECRET_KEY_INSECURE_PREFIX)
    or len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
):
    raise ImproperlyConfigured(
        f"Production settings need DJANGO_SECRET_KEY: a random value of at least "
        f"{SECRET_KEY_MIN_LENGTH} characters (at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} "
        f'distinct), e.g. python3 -c "import secrets; print(secrets.token_urlsafe(50))".'
    )

if not env("DATABASE_URL", default=""):
    raise ImproperlyConfigured("Production settings need DATABASE_URL (PostgreSQL).")

# Sign-in throttles count attempts in the cache. Gunicorn runs several workers (and there may be
# several web containers): a per-process cache would give each its own count, and a dummy cache
# none at all. No quiet default either: say which shared cache (compose: redis://redis:6379/1).
if not env("CACHE_URL", default=""):
    raise ImproperlyConfigured(
        "Production settings need CACHE_URL: a cache every web process shares, e.g. "
        "redis://redis:6379/1 (sign-in throttling counts attempts there)."
    )
if CACHES["default"]["BACKEND"] in {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
}:
    raise ImproperlyConfigured(
        "CACHE_URL names a per-process or dummy cache: sign-in throttling needs one every web "
        "process shares, e.g. redis://redis:6379/1."
    )

# /metrics shows request rates, routes and per-organisation stock figures: a scraper presents
# METRICS_TOKEN as a bearer token. Serving it to anyone must be a deliberate choice.
if not METRICS_TOKEN and not METRICS_PUBLIC:
    raise ImproperlyConfigured(
        "Production settings need METRICS_TOKEN (Prometheus sends it as "
        "'Authorization: Bearer <token>'), or METRICS_PUBLIC=true to serve /metrics to anyone."
    )
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be a random value of at least 32 characters.")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a TLS-terminating proxy: redirect plain HTTP and tell browsers to stay on HTTPS.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$", r"^metrics/?$"]
# One year: the value browsers' preload lists and Django's deployment check expect.
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
