"""E-mail about serious discrepancies: one task per recording after the commit, one e-mail per
person listing every one of theirs, nobody told twice, nothing told of a rolled-back recording."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from smtplib import SMTPException

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction

from discrepancies.models import Discrepancy, DocumentType, Severity, Source, Status
from discrepancies.services import notifications as notify_service
from discrepancies.services.decisions import Decision, discrepancies_decide
from discrepancies.services.notifications import discrepancies_notify
from discrepancies.services.record import Finding, discrepancies_record
from discrepancies.tasks import notify_serious_discrepancies
from inventory.models import Role
from inventory.tenancy.scope import membership_context
from tests.factories import MembershipFactory, ProductFactory, StoreFactory, UserFactory
from tests.stock_helpers import loc

D = Decimal

#: (expected, actual) → severity under the default policy (1 unit or 2%).
CRITICAL = ("100", "50")  # 50 units where 2 are allowed: 25×
HIGH = ("10", "5")  # 5 where 1 is allowed
MEDIUM = ("10", "8")
LOW = ("10", "9")


def finding(store, product, numbers, *, location="SF", cost="2.50", source=Source.CYCLE_COUNT):
    expected, actual = numbers
    return Finding(
        store_id=store.pk,
        product_id=product.pk,
        category="",
        expected=D(expected),
        actual=D(actual),
        unit_cost=D(cost),
        source=source,
        document_type=DocumentType.INVARIANT_CHECK,
        location_id=loc(store, location).pk if location else None,
        store_on_hand=D(expected),
        source_ref="count-7",
    )


def record(org, findings, actor=None):
    return discrepancies_record(org=org, findings=findings, actor=actor)


@pytest.fixture
def shop(org):
    """Two stores and people of every kind: who must hear of what."""
    s1 = StoreFactory(org=org, code="S1", name="Queen West")
    s2 = StoreFactory(org=org, code="S2", name="ByWard")

    def person(email, role, stores=(), **user):
        return MembershipFactory(
            org=org,
            role=role,
            stores=stores,
            user=UserFactory(username=email, email=email, first_name=email.split("@")[0], **user),
        )

    people = {
        "admin": person("admin@acme.test", Role.ADMIN),
        "manager": person("manager@acme.test", Role.MANAGER),
        "manager.s1": person("manager.s1@acme.test", Role.MANAGER, [s1]),
        "manager.s2": person("manager.s2@acme.test", Role.MANAGER, [s2]),
        "operator": person("operator@acme.test", Role.OPERATOR),
        "viewer": person("viewer@acme.test", Role.VIEWER),
        "gone": person("gone@acme.test", Role.MANAGER, is_active=False),
    }
    deactivated = person("deactivated@acme.test", Role.ADMIN)
    deactivated.is_active = False
    deactivated.save(update_fields=["is_active"])
    products = [
        ProductFactory(org=org, sku=f"GUM-{n}", name=f"Gummies {n}", default_cost=D("2.50"))
        for n in range(5)
    ]
    return {"s1": s1, "s2": s2, "people": people, "products": products}


def inbox() -> dict[str, list]:
    by_person: dict[str, list] = {}
    for message in mail.outbox:
        assert len(message.to) == 1  # one recipient per e-mail: nobody sees others' addresses
        by_person.setdefault(message.to[0], []).append(message)
    return by_person


def test_one_email_per_person_per_recording_listing_every_serious_one(
    org, shop, django_capture_on_commit_callbacks
):
    s1, s2, p = shop["s1"], shop["s2"], shop["products"]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            recorded = record(
                org,
                [
                    finding(s1, p[0], CRITICAL),
                    finding(s1, p[1], HIGH, location="BR"),
                    finding(s1, p[2], HIGH),
                    finding(s1, p[3], LOW),
                    finding(s1, p[4], MEDIUM),
                    finding(s2, p[0], HIGH),
                ],
            )

    assert [d.severity for d in recorded] == [
        Severity.CRITICAL,
        Severity.HIGH,
        Severity.HIGH,
        Severity.LOW,
        Severity.MEDIUM,
        Severity.HIGH,
    ]
    assert len(callbacks) == 1  # one task for the recording, not one per row
    serious = [d for d in recorded if d.severity in (Severity.HIGH, Severity.CRITICAL)]
    at_s1 = [d for d in serious if d.store_id == s1.pk]
    got = inbox()
    assert set(got) == {
        "admin@acme.test",
        "manager@acme.test",
        "manager.s1@acme.test",
        "manager.s2@acme.test",
    }
    assert all(len(messages) == 1 for messages in got.values())

    def listed(email):
        body = got[email][0].body
        return sorted(d.pk for d in recorded if f"#{d.pk}:" in body)

    assert listed("admin@acme.test") == listed("manager@acme.test") == [d.pk for d in serious]
    assert listed("manager.s1@acme.test") == [d.pk for d in at_s1]
    assert listed("manager.s2@acme.test") == [serious[-1].pk]

    critical = recorded[0]
    message = got["manager.s1@acme.test"][0]
    assert message.subject == ("[acme] 3 serious stock discrepancies to decide (1 critical) at S1")
    assert "Hello manager.s1," in message.body
    # every fact a person needs to act, the most severe first
    assert message.body.index(f"#{critical.pk}:") < message.body.index(f"#{recorded[1].pk}:")
    assert f"- CRITICAL #{critical.pk}: GUM-0 Gummies 0" in message.body
    assert "at S1 / SF Sales Floor (Queen West)" in message.body
    assert "variance -50 (expected 100, actual 50), value -125.00 at cost" in message.body
    assert "source Cycle count (count-7)" in message.body
    assert f"decide it: /admin/discrepancies/discrepancy/{critical.pk}/change/" in message.body
    assert "at S1 / BR" in message.body
    assert got["admin@acme.test"][0].subject.endswith("(1 critical) at S1, S2")

    notified = dict(Discrepancy.objects.values_list("pk", "notified_at"))
    assert {pk for pk, at in notified.items() if at} == {d.pk for d in serious}


@pytest.mark.parametrize("numbers", [LOW, MEDIUM])
def test_nothing_is_queued_or_sent_for_low_and_medium(
    org, shop, numbers, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        record(org, [finding(shop["s1"], p, numbers) for p in shop["products"]])

    assert callbacks == [] and mail.outbox == []
    assert not Discrepancy.objects.filter(notified_at__isnull=False).exists()


def test_decided_or_closed_rows_are_not_serious_news(org, shop, django_capture_on_commit_callbacks):
    # a correction recorded already ADJUSTED (posted within a manager's rights) is not open
    adjusted = dataclasses.replace(
        finding(shop["s1"], shop["products"][0], CRITICAL),
        status=Status.ADJUSTED,
        ledger_ref=("ADJUSTMENT", 1, 1),
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        record(org, [adjusted])
    assert callbacks == [] and mail.outbox == []


def test_managers_limited_to_other_stores_hear_nothing(
    org, shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record(org, [finding(shop["s2"], shop["products"][0], CRITICAL)])

    assert set(inbox()) == {"admin@acme.test", "manager@acme.test", "manager.s2@acme.test"}


def test_a_retried_task_sends_nothing_twice(org, shop, django_capture_on_commit_callbacks):
    s1, p = shop["s1"], shop["products"]
    with django_capture_on_commit_callbacks(execute=True):
        first = record(org, [finding(s1, p[0], CRITICAL), finding(s1, p[1], HIGH)])
    assert len(mail.outbox) == 3
    stamps = dict(Discrepancy.objects.values_list("pk", "notified_at"))

    # the same task again (a worker that died before acknowledging it)
    assert notify_serious_discrepancies(org.pk, [d.pk for d in first]) == 0
    assert len(mail.outbox) == 3
    assert dict(Discrepancy.objects.values_list("pk", "notified_at")) == stamps

    # a later recording's task that also names the first ones mails only the new one
    with django_capture_on_commit_callbacks(execute=False):
        later = record(org, [finding(s1, p[2], HIGH)])
    assert notify_serious_discrepancies(org.pk, [d.pk for d in first + later]) == 3
    new = mail.outbox[3:]
    assert len(new) == 3
    for message in new:
        assert f"#{later[0].pk}:" in message.body
        assert f"#{first[0].pk}:" not in message.body and "1 serious stock discrepancy" in (
            message.subject
        )


def test_nothing_is_sent_when_the_recording_rolls_back(
    org, shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            record(org, [finding(shop["s1"], shop["products"][0], CRITICAL)])
            raise RuntimeError("the count's reconciliation failed after recording")

    assert callbacks == [] and mail.outbox == []
    assert not Discrepancy.objects.exists()


def test_a_mail_server_failure_leaves_them_unnotified_for_the_retry(org, shop, monkeypatch):
    with transaction.atomic():  # queued on commit: not run here (the test never commits)
        recorded = record(org, [finding(shop["s1"], shop["products"][0], CRITICAL)])

    class Down:
        def send_messages(self, messages):
            raise SMTPException("421 try again later")

    monkeypatch.setattr(notify_service, "get_connection", lambda **kw: Down())
    with pytest.raises(SMTPException):
        discrepancies_notify(org=org, ids=[recorded[0].pk])
    assert Discrepancy.objects.get().notified_at is None

    monkeypatch.undo()
    assert discrepancies_notify(org=org, ids=[recorded[0].pk]).emails == 3
    assert Discrepancy.objects.get().notified_at is not None


def test_a_discrepancy_decided_before_the_task_runs_is_not_mailed(org, shop):
    recorded = record(org, [finding(shop["s1"], shop["products"][0], CRITICAL)])
    admin = shop["people"]["admin"]
    discrepancies_decide(
        org=org,
        ids=[recorded[0].pk],
        decision=Decision("reject", notes="a mis-scan"),
        tenant=membership_context(admin),
        actor=admin.user,
    )

    assert notify_serious_discrepancies(org.pk, [recorded[0].pk]) == 0
    assert mail.outbox == []


def test_people_without_an_address_or_access_are_skipped(org, shop):
    for email in ("admin@acme.test", "manager@acme.test", "manager.s1@acme.test"):
        get_user_model().objects.filter(email=email).update(email="")
    recorded = record(org, [finding(shop["s1"], shop["products"][0], CRITICAL)])

    # nobody left who may hear of S1: the row is still marked, so no retry looks again
    result = discrepancies_notify(org=org, ids=[recorded[0].pk])
    assert (result.emails, result.notified) == (0, [recorded[0].pk])
    assert mail.outbox == []


def test_the_task_of_a_purged_organisation_does_nothing(db):
    assert notify_serious_discrepancies(987654, [1, 2]) == 0


def test_the_service_reads_a_fixed_number_of_rows(org, shop, django_assert_num_queries):
    many = record(
        org,
        [finding(shop["s1"], p, CRITICAL) for p in shop["products"]]
        + [finding(shop["s2"], p, HIGH, location="BR") for p in shop["products"]],
    )
    # savepoint, lock, locations, memberships, their stores, update, release
    with django_assert_num_queries(7):
        result = discrepancies_notify(org=org, ids=[d.pk for d in many])
    assert result.emails == 4 and len(result.notified) == 10
