"""Production settings: the base settings plus refusals to start in an unsafe state."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import INSECURE_DEFAULT_SECRET_KEY, SECRET_KEY, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)

if DEBUG:
    raise ImproperlyConfigured("Production settings refuse to start with DJANGO_DEBUG on.")
if not SECRET_KEY or SECRET_KEY == INSECURE_DEFAULT_SECRET_KEY or len(SECRET_KEY) < 32:
    raise ImproperlyConfigured(
        "Production settings need DJANGO_SECRET_KEY: a random value of at least 32 characters."
    )

if not env("DATABASE_URL", default=""):
    raise ImproperlyConfigured("Production settings need DATABASE_URL (PostgreSQL).")

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
# Behind a TLS-terminating proxy: redirect plain HTTP and tell browsers to stay on HTTPS.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$", r"^metrics/?$"]
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
