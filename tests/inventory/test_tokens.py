"""API tokens: header forms, revocation, device sign-in, last-used throttling, the commands."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from inventory.models import ApiToken, Membership, Role
from inventory.tenancy.tokens import api_token_create
from tests.factories import MembershipFactory, UserFactory

PASSWORD = "correct horse battery"


def token_client(key: str, scheme: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


@pytest.fixture
def operator(org):
    return MembershipFactory(org=org, role=Role.OPERATOR)


@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "bearer"])
def test_token_is_accepted_with_token_or_bearer(org, operator, scheme):
    _, key = api_token_create(org=org, user=operator.user, name="Tablet 2")
    body = token_client(key, scheme).get("/api/v1/me").json()
    assert (body["email"], body["organization"], body["token"]) == (
        operator.user.email,
        "acme",
        "Tablet 2",
    )


@pytest.mark.parametrize("header", ["Token", "Token a b", "Token nope", "Bearer "])
def test_malformed_or_unknown_token_is_401(org, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] in {"authentication_failed", "not_authenticated"}


def test_revoked_token_stops_working_at_once(org, operator, client_for):
    token, key = api_token_create(org=org, user=operator.user, name="Lost tablet")
    client = token_client(key)
    assert client.get("/api/v1/me").status_code == 200
    admin = client_for(Role.ADMIN)
    assert admin.post(f"/api/v1/tokens/{token.pk}/revoke").json()["is_active"] is False
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_logout_revokes_the_calling_token(org, operator):
    token, key = api_token_create(org=org, user=operator.user, name="Shared tablet")
    client = token_client(key)
    assert client.post("/api/v1/auth/logout").status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/v1/me").status_code == 401


def test_token_of_an_inactive_user_is_refused(org, operator):
    _, key = api_token_create(org=org, user=operator.user, name="x")
    operator.user.is_active = False
    operator.user.save()
    assert token_client(key).get("/api/v1/me").status_code == 401


def test_only_the_digest_of_a_key_is_stored(org, operator):
    token, key = api_token_create(org=org, user=operator.user, name="x")
    assert key not in {token.key_digest, token.prefix}
    assert not ApiToken.objects.filter(key_digest=key).exists()


def test_last_used_is_written_at_most_once_a_minute(org, operator, django_assert_num_queries):
    token, key = api_token_create(org=org, user=operator.user, name="x")
    client = token_client(key)
    client.get("/api/v1/me")
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None
    client.get("/api/v1/me")
    token.refresh_from_db()
    assert token.last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(seconds=61))
    client.get("/api/v1/me")
    token.refresh_from_db()
    assert token.last_used_at > first


def test_device_sign_in_with_password_issues_a_personal_device_token(org, operator):
    operator.user.set_password(PASSWORD)
    operator.user.save()
    response = APIClient().post(
        "/api/v1/auth/token",
        {"email": operator.user.email.upper(), "password": PASSWORD, "device": "Tablet 4"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["organization"], body["name"], body["user_email"]) == (
        "acme",
        "Tablet 4",
        operator.user.email,
    )
    assert token_client(body["key"]).get("/api/v1/me").json()["role"] == "operator"


@pytest.mark.parametrize("case", ["wrong_password", "unknown_email", "no_membership"])
def test_device_sign_in_refusals_look_the_same(org, operator, case):
    stranger = UserFactory()
    email = {
        "wrong_password": operator.user.email,
        "unknown_email": "ghost@example.com",
        "no_membership": stranger.email,
    }[case]
    password = "wrong" if case == "wrong_password" else PASSWORD
    operator.user.set_password(PASSWORD)
    operator.user.save()
    response = APIClient().post(
        "/api/v1/auth/token", {"email": email, "password": password, "device": "T"}, format="json"
    )
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"
    assert not ApiToken.objects.exists()


def test_device_sign_in_for_a_person_in_two_orgs_needs_the_org(org, other_org, operator):
    operator.user.set_password(PASSWORD)
    operator.user.save()
    MembershipFactory(org=other_org, user=operator.user, role=Role.MANAGER)
    body = {"email": operator.user.email, "password": PASSWORD, "device": "T"}
    response = APIClient().post("/api/v1/auth/token", body, format="json")
    assert response.json()["code"] == "organization_required"
    response = APIClient().post(
        "/api/v1/auth/token", {**body, "organization": "rival"}, format="json"
    )
    assert response.json()["organization"] == "rival"


def test_device_sign_in_rejects_missing_fields(db):
    response = APIClient().post("/api/v1/auth/token", {"email": "a@b.c"}, format="json")
    assert response.status_code == 400
    assert {"password", "device"} <= set(response.json()["fields"])


def test_admin_issues_a_token_for_another_member(org, operator, client_for):
    admin = client_for(Role.ADMIN)
    response = admin.post(
        "/api/v1/tokens", {"name": "Counter 1", "email": operator.user.email}, format="json"
    )
    assert response.status_code == 201
    assert token_client(response.json()["key"]).get("/api/v1/me").json()["email"] == (
        operator.user.email
    )


def test_non_admin_cannot_issue_tokens_for_others(org, operator, client_for):
    manager = client_for(Role.MANAGER)
    response = manager.post(
        "/api/v1/tokens", {"name": "x", "email": operator.user.email}, format="json"
    )
    assert response.status_code == 403
    assert ApiToken.objects.filter(user=operator.user).count() == 0


def test_create_api_token_command_prints_a_working_key(org, operator):
    out = io.StringIO()
    call_command(
        "create_api_token",
        "--org",
        "acme",
        "--email",
        operator.user.email,
        "--name",
        "POS",
        stdout=out,
    )
    key = out.getvalue().strip()
    assert token_client(key).get("/api/v1/me").json()["token"] == "POS"


def test_create_api_token_command_refuses_non_members(org, other_org):
    outsider = MembershipFactory(org=other_org)
    with pytest.raises(CommandError):
        call_command(
            "create_api_token",
            "--org",
            "acme",
            "--email",
            outsider.user.email,
            stdout=io.StringIO(),
        )


def test_create_org_and_add_member_bootstrap_a_tenant(db):
    call_command(
        "create_org",
        "--slug",
        "green-leaf",
        "--name",
        "Green Leaf",
        "--time-zone",
        "America/Edmonton",
        stdout=io.StringIO(),
    )
    call_command(
        "add_member",
        "--org",
        "green-leaf",
        "--email",
        "Boss@GreenLeaf.example",
        "--role",
        "admin",
        stdout=io.StringIO(),
    )
    membership = Membership.objects.get(org__slug="green-leaf")
    assert (membership.user.email, membership.role) == ("boss@greenleaf.example", "admin")
    assert not membership.user.has_usable_password()  # signs in with Google


def test_add_member_limits_to_stores_and_rejects_unknown_codes(org, store):
    call_command(
        "add_member",
        "--org",
        "acme",
        "--email",
        "op@x.example",
        "--role",
        "operator",
        "--stores",
        "S1",
        stdout=io.StringIO(),
    )
    membership = Membership.objects.get(user__email="op@x.example")
    assert list(membership.stores.values_list("code", flat=True)) == ["S1"]
    with pytest.raises(CommandError, match="NOPE"):
        call_command(
            "add_member",
            "--org",
            "acme",
            "--email",
            "op2@x.example",
            "--role",
            "viewer",
            "--stores",
            "NOPE",
            stdout=io.StringIO(),
        )


@pytest.mark.parametrize(
    "args",
    [
        ["--slug", "Bad Slug", "--name", "x"],
        ["--slug", "ok-slug", "--name", "x", "--time-zone", "Nowhere/Land"],
    ],
)
def test_create_org_rejects_bad_input(db, args):
    with pytest.raises(CommandError):
        call_command("create_org", *args, stdout=io.StringIO())


def test_touch_never_moves_last_used_backwards(org, operator):
    token, key = api_token_create(org=org, user=operator.user, name="x")
    future = timezone.now() + timedelta(hours=1)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=future)
    token_client(key).get("/api/v1/me")
    token.refresh_from_db()
    assert token.last_used_at == future


def test_device_token_from_a_headless_google_session(org, operator):
    # allauth's headless app flow leaves the tablet with a session token after Google sign-in
    browser = APIClient()
    browser.force_login(operator.user)
    session_token = browser.session.session_key
    response = APIClient().post(
        "/api/v1/auth/token",
        {"device": "Tablet 7"},
        format="json",
        HTTP_X_SESSION_TOKEN=session_token,
    )
    assert response.status_code == 201, response.content
    assert token_client(response.json()["key"]).get("/api/v1/me").json()["email"] == (
        operator.user.email
    )


def test_device_token_needs_password_without_a_session(org, operator):
    response = APIClient().post(
        "/api/v1/auth/token", {"device": "T"}, format="json", HTTP_X_SESSION_TOKEN="no-such-session"
    )
    assert response.status_code in {400, 401}
    assert not ApiToken.objects.exists()


# --- tokens follow the membership ----------------------------------------------------------------


def test_removing_a_member_revokes_their_tokens_in_that_org_only(
    org, other_org, operator, client_for
):
    token, key = api_token_create(org=org, user=operator.user, name="Tablet 1")
    elsewhere = MembershipFactory(org=other_org, user=operator.user, role=Role.MANAGER)
    _, other_key = api_token_create(org=other_org, user=operator.user, name="Other shop")
    assert token_client(key).get("/api/v1/me").status_code == 200

    response = client_for(Role.ADMIN).delete(f"/api/v1/memberships/{operator.pk}")

    assert response.status_code == 204
    token.refresh_from_db()
    assert token.revoked_at is not None
    refused = token_client(key).get("/api/v1/me")
    assert (refused.status_code, refused.json()["code"]) == (401, "authentication_failed")
    assert token_client(other_key).get("/api/v1/me").json()["role"] == elsewhere.role


def test_re_adding_a_removed_member_does_not_bring_the_old_token_back(org, operator, client_for):
    _, key = api_token_create(org=org, user=operator.user, name="Tablet 1")
    admin = client_for(Role.ADMIN)
    assert admin.delete(f"/api/v1/memberships/{operator.pk}").status_code == 204

    response = admin.post(
        "/api/v1/memberships", {"email": operator.user.email, "role": "manager"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert token_client(key).get("/api/v1/me").status_code == 401


def test_re_adding_revokes_tokens_left_from_a_membership_ended_before_the_fix(
    org, operator, client_for
):
    # A membership deactivated without revoking its tokens (data older than the rule).
    _, key = api_token_create(org=org, user=operator.user, name="Tablet 1")
    Membership.objects.filter(pk=operator.pk).update(is_active=False)

    response = client_for(Role.ADMIN).post(
        "/api/v1/memberships", {"email": operator.user.email, "role": "admin"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert token_client(key).get("/api/v1/me").status_code == 401


def test_a_refused_removal_revokes_nothing(org, client_for):
    last_admin = client_for(Role.ADMIN)

    response = last_admin.delete(f"/api/v1/memberships/{last_admin.membership.pk}")

    assert (response.status_code, response.json()["code"]) == (409, "last_admin")
    assert last_admin.get("/api/v1/me").status_code == 200
    assert not ApiToken.objects.filter(revoked_at__isnull=False).exists()


def test_a_role_or_store_change_applies_to_existing_tokens_at_once(
    org, store, operator, client_for
):
    _, key = api_token_create(org=org, user=operator.user, name="Tablet 1")
    device = token_client(key)
    me = device.get("/api/v1/me").json()
    assert (me["role"], me["stores"]) == ("operator", None)
    assert "sale.record" in me["capabilities"]

    response = client_for(Role.ADMIN).patch(
        f"/api/v1/memberships/{operator.pk}",
        {"role": "viewer", "stores": [store.pk]},
        format="json",
    )

    assert response.status_code == 200, response.content
    me = device.get("/api/v1/me").json()
    assert (me["role"], me["stores"]) == ("viewer", [store.pk])
    assert "sale.record" not in me["capabilities"]
    refused = device.post("/api/v1/sales", {}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert ApiToken.objects.get(user=operator.user).revoked_at is None
