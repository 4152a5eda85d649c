"""Issuing and revoking API tokens."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from inventory.auth.tokens import digest, generate_key
from inventory.exceptions import ApplicationError
from inventory.models import ApiToken, Organization
from inventory.tenancy import resolve_tenant


class InvalidCredentials(ApplicationError):
    code = "invalid_credentials"
    status = 401
    message = "Wrong e-mail or password, or no access to that organisation."


def api_token_create(*, org: Organization, user, name: str, actor=None) -> tuple[ApiToken, str]:
    """Issue a token for ``user`` in ``org``. Returns the token and its key (shown only once)."""
    key = generate_key()
    token = ApiToken.objects.create(
        org=org, user=user, name=name, prefix=key[:8], key_digest=digest(key)
    )
    return token, key


def api_token_revoke(*, token: ApiToken, actor=None) -> ApiToken:
    with transaction.atomic():
        # The caller already holds this token (resolved in its scope or by authentication).
        ApiToken.unscoped.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db()
    return token


def api_token_from_password(*, request, email: str, password: str, device: str,
                            org_slug: str | None = None) -> tuple[ApiToken, str]:
    """Sign a person in on a (shared) device: check the password, issue a device token.

    The same answer for a wrong password, an unknown e-mail and a missing membership, so the
    endpoint does not reveal who has an account.
    """
    user = authenticate(request, username=email.strip().lower(), password=password)
    if user is None:
        user = authenticate(request, email=email.strip().lower(), password=password)
    if user is None or not user.is_active:
        raise InvalidCredentials()
    return api_token_for_signed_in_user(user=user, device=device, org_slug=org_slug)


def api_token_for_signed_in_user(*, user, device: str, org_slug: str | None = None
                                 ) -> tuple[ApiToken, str]:
    """Issue a device token to a person who has already proven who they are."""
    if not user.is_active:
        raise InvalidCredentials()
    tenant = resolve_tenant(user, org_slug=org_slug)
    if tenant is None:
        raise InvalidCredentials()
    return api_token_create(org=tenant.org, user=user, name=device)
