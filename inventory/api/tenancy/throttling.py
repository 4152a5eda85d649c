"""Sign-in throttles: one per client address, one per account, both on the shared cache.

A password check is deliberately slow (one hash takes ~2 s on a small server), so unthrottled
sign-in attempts are a way to occupy every web worker, not only to guess passwords. Two limits:

* ``login`` counts attempts per client address. The address is ``REMOTE_ADDR`` unless
  ``REST_FRAMEWORK["NUM_PROXIES"]`` (env ``NUM_PROXIES``) says how many proxies of ours append
  to ``X-Forwarded-For``; a client-written ``X-Forwarded-For`` is otherwise ignored, so changing
  it does not buy fresh attempts.
* ``login_account`` counts attempts per account (the e-mail as the service normalises it), so
  guessing one person's password from many addresses is limited too.

Counts live in the default cache: production settings refuse a per-process cache, because with
several gunicorn workers every worker would keep its own count.

Rates are read from the current settings on each request (DRF's ``SimpleRateThrottle`` copies
them once at import), so an operator's and a test's settings apply as they are.
"""

from __future__ import annotations

import hashlib

from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from inventory.tenancy.tokens import normalise_email


class _CurrentRateThrottle(SimpleRateThrottle):
    def get_rate(self):
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError as exc:
            raise ImproperlyConfigured(
                f"REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'] names no rate for '{self.scope}'."
            ) from exc


class LoginAddressThrottle(_CurrentRateThrottle):
    """Sign-in attempts per client address (see the module docstring for which address)."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginAccountThrottle(_CurrentRateThrottle):
    """Sign-in attempts per account, whoever sends them.

    Keyed by a digest of the normalised e-mail (whether or not such a person exists, so the
    answer reveals nothing), which also keeps addresses out of the cache. Requests without an
    e-mail (a Google session's ``X-Session-Token``) check no password and are not counted here.
    """

    scope = "login_account"

    def get_cache_key(self, request, view):
        data = request.data
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None
        account = hashlib.sha256(normalise_email(email).encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": account}
