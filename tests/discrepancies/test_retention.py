"""Retention: ``archive_discrepancies`` moves closed discrepancies past the window to the archive
with their ids, columns and timelines; open or recent ones stay; a dry run changes nothing."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.forms.models import model_to_dict
from django.utils import timezone

from core.errors import ValidationFailed
from counts.models import CountPass, VarianceRow
from counts.services import passes as P
from counts.services import sessions as S
from discrepancies.models import (
    ArchivedDiscrepancy,
    Discrepancy,
    DocumentType,
    Source,
    Status,
)
from discrepancies.services.decisions import Decision, discrepancies_decide
from discrepancies.services.record import Finding, discrepancies_record
from discrepancies.services.retention import discrepancies_archive
from inventory.models import AuditAction, AuditEvent, RefType, Role, StockLedger
from inventory.tenancy.scope import membership_context, resolve_tenant
from tests.factories import MembershipFactory, ProductFactory, StoreFactory
from tests.stock_helpers import assert_invariants, loc, receive

D = Decimal
DAYS = datetime.timedelta(days=1)
TYPE = "discrepancies.discrepancy"


def finding(store, product, *, corrective=True, **extra):
    return Finding(
        store_id=store.pk,
        product_id=product.pk,
        category="",
        expected=D("10"),
        actual=D("5"),
        unit_cost=D("4"),
        source=Source.INVARIANT,
        document_type=DocumentType.INVARIANT_CHECK,
        corrective=corrective,
        store_on_hand=D("10"),
        **extra,
    )


def age(d: Discrepancy, days: int) -> None:
    """Backdate every step of ``d`` by ``days`` (what time would have done)."""
    shift = datetime.timedelta(days=days)
    d.refresh_from_db()
    Discrepancy.objects.filter(pk=d.pk).update(
        created_at=d.created_at - shift,
        decided_at=d.decided_at - shift if d.decided_at else None,
        adjusted_at=d.adjusted_at - shift if d.adjusted_at else None,
    )


def columns(model_row) -> dict:
    values = model_to_dict(model_row, fields=[f.name for f in Discrepancy._meta.concrete_fields])
    values["id"] = model_row.pk
    return values


def events(pk: int) -> list:
    return list(
        AuditEvent.objects.filter(object_type=TYPE, object_id=pk)
        .order_by("id")
        .values_list("action", "before", "after", "actor_id")
    )


@pytest.fixture
def world(org):
    """One discrepancy in every state, the closed ones 40 days old unless said otherwise."""
    store = StoreFactory(org=org)
    admin = MembershipFactory(org=org, role=Role.ADMIN)
    products = [ProductFactory(org=org) for _ in range(8)]
    (
        new,
        review,
        approved_open,
        approved_info,
        rejected,
        adjusted,
        rejected_recently,
        adjusted_recently,
    ) = discrepancies_record(
        org=org,
        findings=[
            finding(store, products[0]),
            finding(store, products[1]),
            finding(store, products[2]),
            finding(store, products[3], corrective=False),
            finding(store, products[4]),
            finding(
                store,
                products[5],
                status=Status.ADJUSTED,
                ledger_ref=(RefType.ADJUSTMENT, 77, 1),
                posted_quantity=D("-5"),
            ),
            finding(store, products[6]),
            finding(
                store,
                products[7],
                status=Status.ADJUSTED,
                ledger_ref=(RefType.ADJUSTMENT, 78, 1),
                posted_quantity=D("-5"),
            ),
        ],
        actor=None,
    )
    tenant = membership_context(admin)

    def decide(ds, action):
        discrepancies_decide(
            org=org,
            ids=[d.pk for d in ds],
            decision=Decision(action, notes=f"{action} by the admin"),
            tenant=tenant,
            actor=admin.user,
        )

    decide([review], "review")
    decide([approved_open, approved_info], "approve")
    decide([rejected, rejected_recently], "reject")
    for d in (new, review, approved_open, approved_info, rejected, adjusted):
        age(d, 40)
    age(rejected_recently, 29)
    age(adjusted_recently, 29)
    return {
        "org": org,
        "admin": admin,
        "open": [new, review, approved_open],
        "old_closed": [approved_info, rejected, adjusted],
        "recent_closed": [rejected_recently, adjusted_recently],
    }


def archive(org, days=30, **kw):
    return discrepancies_archive(org=org, older_than=days * DAYS, **kw)


def test_only_closed_and_old_enough_discrepancies_move(world):
    org = world["org"]
    old = {d.pk for d in world["old_closed"]}
    before = {d.pk: columns(Discrepancy.objects.get(pk=d.pk)) for d in world["old_closed"]}

    result = archive(org, 30)

    assert result.count == 3 and result.batches == [sorted(old)]
    assert set(ArchivedDiscrepancy.objects.values_list("pk", flat=True)) == old
    assert set(Discrepancy.objects.values_list("pk", flat=True)) == {
        d.pk for d in world["open"] + world["recent_closed"]
    }
    # the same ids and every column, readable by id from the archive
    for pk, values in before.items():
        archived = ArchivedDiscrepancy.objects.get(pk=pk)
        assert columns(archived) == values
        assert archived.archived_at is not None
    adjusted = ArchivedDiscrepancy.objects.get(pk=world["old_closed"][2].pk)
    assert (adjusted.ledger_ref_type, adjusted.ledger_ref_id, adjusted.ledger_ref_line) == (
        RefType.ADJUSTMENT,
        77,
        1,
    )
    assert adjusted.status == Status.ADJUSTED and adjusted.posted_quantity == D("-5")


def test_the_timeline_and_the_batch_event_stay(world):
    org, rejected = world["org"], world["old_closed"][1]
    timeline = events(rejected.pk)
    assert [e[0] for e in timeline] == [AuditAction.DISCREPANCY_REJECTED]

    result = archive(org, 30, actor=world["admin"].user)

    assert events(rejected.pk) == timeline  # events by object id: the timeline reads them
    (batch,) = AuditEvent.objects.filter(action=AuditAction.DISCREPANCIES_ARCHIVED)
    assert (batch.object_type, batch.object_id) == (TYPE, None)
    assert batch.after["ids"] == result.batches[0] and batch.after["count"] == 3
    assert batch.after["older_than_days"] == 30 and batch.actor_id == world["admin"].user.pk


def test_batches_are_one_transaction_and_one_event_each(world, django_assert_max_num_queries):
    org = world["org"]
    more = discrepancies_record(
        org=org,
        findings=[finding(StoreFactory(org=org), ProductFactory(org=org)) for _ in range(4)],
        actor=None,
    )
    Discrepancy.objects.filter(pk__in=[d.pk for d in more]).update(status=Status.REJECTED)
    for d in more:
        Discrepancy.objects.filter(pk=d.pk).update(decided_at=timezone.now())
        age(d, 100)

    result = archive(org, 30, batch_size=2)

    assert result.count == 7
    assert [len(ids) for ids in result.batches] == [2, 2, 2, 1]
    assert AuditEvent.objects.filter(action=AuditAction.DISCREPANCIES_ARCHIVED).count() == 4
    assert sorted(pk for ids in result.batches for pk in ids) == sorted(
        ArchivedDiscrepancy.objects.values_list("pk", flat=True)
    )


def test_one_batch_is_a_fixed_number_of_statements(world, django_assert_num_queries):
    # savepoint, candidates, lock, INSERT … SELECT, DELETE, audit, release
    with django_assert_num_queries(7):
        assert archive(world["org"], 30).count == 3


def test_running_it_again_moves_nothing_more(world):
    org = world["org"]
    archive(org, 30)
    archived = sorted(ArchivedDiscrepancy.objects.values_list("pk", "archived_at"))

    again = archive(org, 30)

    assert (again.count, again.batches) == (0, [])
    assert sorted(ArchivedDiscrepancy.objects.values_list("pk", "archived_at")) == archived
    assert AuditEvent.objects.filter(action=AuditAction.DISCREPANCIES_ARCHIVED).count() == 1
    # a shorter window then takes the recently closed ones too, and no open one
    assert archive(org, 1).count == 2
    assert set(Discrepancy.objects.values_list("pk", flat=True)) == {d.pk for d in world["open"]}


def test_a_dry_run_changes_nothing(world):
    org = world["org"]
    live = sorted(Discrepancy.objects.values_list("pk", flat=True))

    result = archive(org, 30, dry_run=True)

    assert (result.count, result.batches, result.dry_run) == (3, [], True)
    assert sorted(Discrepancy.objects.values_list("pk", flat=True)) == live
    assert not ArchivedDiscrepancy.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.DISCREPANCIES_ARCHIVED).exists()


@pytest.mark.parametrize("days", [0, -5])
def test_a_window_under_a_day_is_refused(world, days):
    with pytest.raises(ValidationFailed) as refused:
        archive(world["org"], days)
    assert refused.value.fields == {"older_than_days": ["At least 1."]}
    with pytest.raises(ValidationFailed):
        discrepancies_archive(org=world["org"], older_than=datetime.timedelta(hours=23))
    assert not ArchivedDiscrepancy.objects.exists()


def test_other_organisations_are_untouched(world, other_org):
    theirs = discrepancies_record(
        org=other_org,
        findings=[finding(StoreFactory(org=other_org), ProductFactory(org=other_org))],
        actor=None,
    )[0]
    Discrepancy.objects.filter(pk=theirs.pk).update(
        status=Status.REJECTED, decided_at=timezone.now() - 90 * DAYS
    )

    archive(world["org"], 30)

    assert Discrepancy.objects.filter(pk=theirs.pk).exists()
    assert not ArchivedDiscrepancy.objects.filter(org=other_org).exists()


# --- the command ---------------------------------------------------------------------------------


def run(*args) -> str:
    out = io.StringIO()
    call_command("archive_discrepancies", *args, stdout=out)
    return out.getvalue()


def test_command_archives_per_organisation(world, other_org):
    dry = run("--older-than-days", "30", "--org", "acme", "--dry-run")
    assert "acme: would move 3 closed discrepancies" in dry
    assert not ArchivedDiscrepancy.objects.exists()

    out = run("--older-than-days", "30")

    assert "acme: archived 3 closed discrepancies in 1 batch(es)" in out
    assert "rival: archived 0 closed discrepancies in 0 batch(es)" in out
    assert ArchivedDiscrepancy.objects.count() == 3
    assert AuditEvent.objects.get(action=AuditAction.DISCREPANCIES_ARCHIVED).actor_id is None


@pytest.mark.parametrize(
    "args,message",
    [
        (("--older-than-days", "0"), "--older-than-days must be at least 1."),
        (("--older-than-days", "-3"), "--older-than-days must be at least 1."),
        (("--older-than-days", "30", "--org", "nobody"), "No organisation with the slug"),
    ],
)
def test_command_refuses_bad_arguments(world, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ArchivedDiscrepancy.objects.exists()


# --- a count's discrepancy, archived -------------------------------------------------------------


def test_a_counts_adjusted_discrepancy_archives_and_its_variance_row_still_finds_it(org):
    store, product = StoreFactory(org=org), ProductFactory(org=org)
    manager = MembershipFactory(org=org, role=Role.MANAGER).user
    admin = MembershipFactory(org=org, role=Role.ADMIN).user
    clerk = MembershipFactory(org=org, role=Role.OPERATOR).user
    t0 = timezone.now() - datetime.timedelta(hours=2)
    receive(org, store, product, 20, occurred_at=t0 - datetime.timedelta(hours=1))
    session = S.session_start(
        org=org,
        session=S.session_create(org=org, store=store, scope="FULL_STORE", actor=manager),
        actor=manager,
    )
    count_pass = P.pass_create(org=org, session=session, location=loc(store, "SF"), actor=clerk)
    CountPass.objects.filter(pk=count_pass.pk).update(started_at=t0)
    P.lines_add(
        org=org,
        count_pass=count_pass,
        actor=clerk,
        entries=[P.Entry(product, D(12), captured_at=t0 + datetime.timedelta(minutes=5))],
    )
    P.pass_submit(org=org, count_pass=count_pass, actor=clerk)
    S.session_submit(org=org, session=session, actor=manager)
    S.session_reconcile(org=org, session=session, actor=manager)
    row = VarianceRow.objects.get(session=session)
    S.variance_decide(
        org=org,
        row=row,
        approve=True,
        tenant=resolve_tenant(admin, org_id=org.pk),
        actor=admin,
    )
    S.session_finalize(org=org, session=session, actor=admin)
    d = Discrepancy.objects.get()
    assert d.status == Status.ADJUSTED and d.source == Source.CYCLE_COUNT
    age(d, 400)
    timeline = events(d.pk)

    assert archive(org, 365).count == 1

    row.refresh_from_db()
    assert row.discrepancy_id == d.pk  # no constraint: the row keeps the id
    archived = ArchivedDiscrepancy.objects.get(pk=row.discrepancy_id)
    ledger = StockLedger.objects.filter(
        ref_type=archived.ledger_ref_type,
        ref_id=archived.ledger_ref_id,
        ref_line=archived.ledger_ref_line,
    )
    assert sum(r.qty_delta for r in ledger) == D(-8) == archived.posted_quantity
    assert events(d.pk) == timeline
    assert [e[0] for e in timeline] == [
        AuditAction.DISCREPANCY_APPROVED,
        AuditAction.DISCREPANCY_ADJUSTED,
    ]
    assert_invariants()
