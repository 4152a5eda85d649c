"""Issuing and revoking API tokens; each issue and revocation is in the audit trail (never the
key: only its prefix)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from core.errors import ApplicationError
from inventory.audit.services import audit_record
from inventory.models import ApiToken, AuditAction, Organization
from inventory.tenancy.authentication import digest, generate_key
from inventory.tenancy.scope import resolve_tenant


class InvalidCredentials(ApplicationError):
    code = "invalid_credentials"
    status = 401
    message = "Wrong e-mail or password, or no access to that organisation."


def api_token_create(*, org: Organization, user, name: str, actor=None) -> tuple[ApiToken, str]:
    """Issue a token for ``user`` in ``org``. Returns the token and its key (shown only once).
    ``actor`` issued it: an admin for someone else, the person signing in on a device."""
    key = generate_key()
    with transaction.atomic():
        token = ApiToken.objects.create(
            org=org, user=user, name=name, prefix=key[:8], key_digest=digest(key)
        )
        audit_record(
            org=org,
            action=AuditAction.TOKEN_ISSUED,
            obj=token,
            after={"user": user.pk, "name": name, "prefix": token.prefix},
            actor=actor,
        )
    return token, key


def api_token_revoke(*, token: ApiToken, actor=None) -> ApiToken:
    """Revoke ``token``; revoking it again changes (and records) nothing."""
    with transaction.atomic():
        # The caller already holds this token (resolved in its scope or by authentication).
        revoked = ApiToken.unscoped.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db()
        if revoked:
            audit_record(
                org=token.org_id,
                action=AuditAction.TOKEN_REVOKED,
                obj=token,
                before={"revoked_at": None},
                after={"revoked_at": token.revoked_at},
                actor=actor,
            )
    return token


def api_tokens_revoke_for_member(*, org: Organization, user, actor=None) -> int:
    """Revoke every live token ``user`` (a user or its id) holds in ``org``; returns how many.

    Called when a membership is deactivated (and when an inactive one is re-activated), inside
    that service's transaction: a token acts for its person in its organisation, so it must not
    outlive the membership and come back when the same e-mail is invited again. Records one
    event for the person (``tokens.revoked_for_member``, with how many) when any was live.
    """
    with transaction.atomic():
        revoked = ApiToken.unscoped.filter(org=org, user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            user_id = user if isinstance(user, int) else user.pk
            audit_record(
                org=org,
                action=AuditAction.TOKENS_REVOKED_FOR_MEMBER,
                obj=(get_user_model(), user_id),
                after={"revoked": revoked},
                actor=actor,
            )
    return revoked


def api_token_from_password(
    *, email: str, password: str, device: str, org_slug: str | None = None
) -> tuple[ApiToken, str]:
    """Sign a person in on a (shared) device: check the password, issue a device token.

    The same answer for a wrong password, an unknown e-mail and a missing membership, so the
    endpoint does not reveal who has an account.
    """
    user = _user_with_password(email=email, password=password)
    if user is None:
        raise InvalidCredentials()
    return api_token_for_signed_in_user(user=user, device=device, org_slug=org_slug)


def normalise_email(email: str) -> str:
    """The form sign-in compares and throttles e-mails in (case and spaces do not matter)."""
    return email.strip().lower()


def _user_with_password(*, email: str, password: str):
    """The active person with this e-mail if the password is theirs, else None: one hash.

    Not ``authenticate()``: with ``ModelBackend`` and allauth's backend installed it looked the
    person up by username, then by e-mail, through both backends, and each miss ran a dummy
    hash, so one wrong password cost three slow hashes. Here an unknown or inactive e-mail
    hashes the password once too (as ``ModelBackend`` does), so timing tells nothing.
    """
    User = get_user_model()
    user = (
        User._default_manager.filter(email__iexact=normalise_email(email), is_active=True)
        .order_by("pk")
        .first()
    )
    if user is None:
        User().set_password(password)
        return None
    # check_password runs one hash even for an unusable (Google-only) password.
    return user if user.check_password(password) else None


def api_token_for_signed_in_user(
    *, user, device: str, org_slug: str | None = None
) -> tuple[ApiToken, str]:
    """Issue a device token to a person who has already proven who they are."""
    if not user.is_active:
        raise InvalidCredentials()
    tenant = resolve_tenant(user, org_slug=org_slug)
    if tenant is None:
        raise InvalidCredentials()
    return api_token_create(org=tenant.org, user=user, name=device, actor=user)
