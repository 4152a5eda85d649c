"""API token authentication: ``Authorization: Token <key>`` (``Bearer`` is accepted too).

A token belongs to one person in one organisation, so the request acts for that organisation
whatever header it sends. Tokens are stored as SHA-256 digests; the last-used time is written at
most once per ``API_TOKEN_TOUCH_INTERVAL`` seconds, with a conditional UPDATE so concurrent
requests do not pile up writes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from inventory.models import ApiToken

KEYWORDS = ("token", "bearer")


def generate_key() -> str:
    return secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode(errors="replace").lower() not in KEYWORDS:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        key = header[1].decode(errors="replace")
        token = (
            ApiToken.unscoped.select_related("user", "org").filter(key_digest=digest(key)).first()
        )
        if token is None or token.revoked_at is not None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        self._touch(token)
        return token.user, token

    def authenticate_header(self, request):
        return "Token"

    @staticmethod
    def _touch(token: ApiToken) -> None:
        now = timezone.now()
        stale = now - timedelta(seconds=settings.API_TOKEN_TOUCH_INTERVAL)
        if token.last_used_at is None or token.last_used_at < stale:
            ApiToken.unscoped.filter(pk=token.pk).filter(models_q_last_used_before(stale)).update(
                last_used_at=now
            )
            token.last_used_at = now


def models_q_last_used_before(moment):
    from django.db.models import Q

    return Q(last_used_at__isnull=True) | Q(last_used_at__lt=moment)
