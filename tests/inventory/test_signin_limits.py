"""Device sign-in limits: per address (X-Forwarded-For trusted only as configured), per account,
and one password hash per attempt."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import cache
from rest_framework.test import APIClient

from inventory.models import ApiToken, Role
from tests.factories import MembershipFactory, UserFactory

PASSWORD = "correct horse battery"


@pytest.fixture
def rates(settings):
    """Set the sign-in rates for one test, on an empty cache."""

    def set_rates(
        *, login: str = "1000/min", login_account: str = "1000/min", num_proxies: int | None = 0
    ) -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"login": login, "login_account": login_account},
            "NUM_PROXIES": num_proxies,
        }

    cache.clear()
    yield set_rates
    cache.clear()


@pytest.fixture
def operator(org):
    membership = MembershipFactory(org=org, role=Role.OPERATOR)
    membership.user.set_password(PASSWORD)
    membership.user.save()
    return membership


def sign_in(email: str, password: str = "wrong", **headers):
    return APIClient().post(
        "/api/v1/auth/token",
        {"email": email, "password": password, "device": "T"},
        format="json",
        **headers,
    )


def test_settings_ignore_x_forwarded_for_by_default():
    from django.conf import settings

    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


def test_changing_x_forwarded_for_does_not_reset_the_address_limit(db, rates):
    rates(login="2/min")
    answers = [
        sign_in(f"person{i}@example.com", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").status_code
        for i in range(3)
    ]
    assert answers == [401, 401, 429]
    assert sign_in("person9@example.com").json()["code"] == "throttled"


def test_with_one_proxy_the_address_is_the_one_it_appended(db, rates):
    rates(login="1/min", num_proxies=1)
    # The client wrote the first entry; our proxy appended the real address last.
    assert sign_in("a@example.com", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.7").status_code == 401
    assert sign_in("b@example.com", HTTP_X_FORWARDED_FOR="2.2.2.2, 198.51.100.7").status_code == 429
    assert sign_in("c@example.com", HTTP_X_FORWARDED_FOR="1.1.1.1, 198.51.100.8").status_code == 401


def test_one_account_is_limited_whatever_address_tries_it(operator, rates):
    rates(login_account="2/min", num_proxies=1)
    email = operator.user.email
    spellings = [email, f"  {email.upper()} ", email.title()]
    answers = [
        sign_in(spelling, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
        for i, spelling in enumerate(spellings)
    ]

    assert [a.status_code for a in answers] == [401, 401, 429]
    assert answers[2].json()["code"] == "throttled"
    assert "Retry-After" in answers[2]
    # The right password does not get past the limit either, and nothing is issued.
    assert sign_in(email, PASSWORD).status_code == 429
    assert not ApiToken.objects.exists()
    # Another account from the same addresses is not affected.
    assert sign_in("someone.else@example.com").status_code == 401


def test_unknown_accounts_are_limited_the_same_way(db, rates):
    rates(login_account="1/min")
    assert sign_in("ghost@example.com").status_code == 401
    assert sign_in("GHOST@example.com").status_code == 429


@pytest.fixture
def hashes(monkeypatch):
    """Count password hashes (the test settings hash with MD5; verify() hashes via encode())."""
    calls = []
    encode = MD5PasswordHasher.encode

    def counting_encode(self, password, salt):
        calls.append(salt)
        return encode(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", counting_encode)
    return calls


@pytest.mark.parametrize(
    "case",
    ["wrong_password", "unknown_email", "inactive_user", "no_usable_password", "right_password"],
)
def test_each_sign_in_attempt_hashes_the_password_once(operator, hashes, case):
    email, password = operator.user.email, "wrong"
    if case == "unknown_email":
        email = "ghost@example.com"
    elif case == "inactive_user":
        operator.user.is_active = False
        operator.user.save()
    elif case == "no_usable_password":
        user = UserFactory()
        user.set_unusable_password()
        user.save()
        MembershipFactory(org=operator.org, user=user, role=Role.OPERATOR)
        email = user.email
    elif case == "right_password":
        password = PASSWORD
    hashes.clear()

    response = sign_in(email.upper(), password)

    assert response.status_code == (201 if case == "right_password" else 401), response.content
    assert len(hashes) == 1
