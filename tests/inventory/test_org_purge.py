"""``org_purge``: a whole organisation goes, children first; nobody else's rows move."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, transaction
from django.utils import timezone

from counts.models import VarianceRow
from discrepancies.models import (
    ArchivedDiscrepancy,
    CorrectionRequest,
    CorrectionStatus,
    Discrepancy,
    DocumentType,
    Source,
    VariancePolicy,
)
from discrepancies.services.decisions import Decision, discrepancies_decide
from discrepancies.services.record import Finding, discrepancies_record
from discrepancies.services.retention import discrepancies_archive
from inventory.exceptions import InsufficientStock
from inventory.models import (
    ApiToken,
    Batch,
    ClassificationMapping,
    LedgerPurge,
    Location,
    Membership,
    MembershipStore,
    Organization,
    Product,
    ProductBarcode,
    Refund,
    Role,
    Sale,
    SaleLine,
    StockDocument,
    StockHold,
    StockLedger,
    StockQuant,
    StockShortfall,
    Store,
)
from inventory.sales import services as sales
from inventory.stock import documents
from inventory.tenancy import purge as purge_module
from inventory.tenancy.purge import org_purge, purge_order
from inventory.tenancy.scope import membership_context
from inventory.tenancy.tokens import api_token_create
from tests.factories import (
    MembershipFactory,
    ProductFactory,
    StoreFactory,
    VariancePolicyFactory,
)
from tests.stock_helpers import assert_invariants, days, loc, receive, ref, sell

D = Decimal

#: What the brief names, children before parents (Organization itself goes last).
INVENTORY_MODELS = (
    StockShortfall,
    StockLedger,
    Refund,
    SaleLine,
    Sale,
    StockDocument,
    StockQuant,
    Batch,
    ApiToken,
    MembershipStore,
    Membership,
    ProductBarcode,
    Product,
    ClassificationMapping,
    Location,
    Store,
)

#: The discrepancies' tables, which point at the stock's (stores, products, lots, people).
DISCREPANCY_MODELS = (
    Discrepancy,
    ArchivedDiscrepancy,
    VariancePolicy,
    CorrectionRequest,
    StockHold,
)


def discrepancies_up(org, store, product, membership) -> None:
    """A policy, an open CRITICAL discrepancy (which holds its product), a rejected one moved
    to the archive and a pending correction request."""
    VariancePolicyFactory(org=org, category="Edibles", units=2, percent=5)
    serious, closed = discrepancies_record(
        org=org,
        findings=[
            Finding(
                store_id=store.pk,
                product_id=product.pk,
                category="Edibles",
                expected=D(exp),
                actual=D(act),
                unit_cost=D(2),
                source=Source.INVARIANT,
                document_type=DocumentType.INVARIANT_CHECK,
                store_on_hand=D(exp),
            )
            for exp, act in (("100", "10"), ("10", "9"))
        ],
        actor=None,
    )
    discrepancies_decide(
        org=org,
        ids=[closed.pk],
        decision=Decision("reject", notes="mis-scan"),
        tenant=membership_context(membership),
        actor=membership.user,
    )
    Discrepancy.objects.filter(pk=closed.pk).update(
        decided_at=timezone.now() - datetime.timedelta(days=9)
    )
    assert discrepancies_archive(org=org, older_than=datetime.timedelta(days=7)).count == 1
    CorrectionRequest.objects.create(
        org=org,
        store=store,
        kind="adjustment",
        client_ref=ref("corr"),
        request_hash="0" * 64,
        status=CorrectionStatus.PENDING,
        reason="damage",
        lines=[{"line": 1, "product": product.pk, "quantity": "-90"}],
        created_by=membership.user,
    )
    assert StockHold.objects.filter(org=org, store=store, product=product).exists()


def stock_up(org, code: str) -> dict:
    """An organisation with a bit of everything: people, tokens, lots, sales, every document."""
    store = StoreFactory(org=org, code=code)
    membership = MembershipFactory(org=org, role=Role.MANAGER, stores=[store])
    api_token_create(org=org, user=membership.user, name="Tablet")
    gummy = ProductFactory(
        org=org,
        sku=f"{code}-GUM",
        tracks_expiry=True,
        barcodes=[{"code": f"{code}-SUP-1", "kind": "supplier"}],
    )
    flower = ProductFactory(org=org, sku=f"{code}-FLW")
    user = membership.user
    receive(org, store, gummy, 10, lot=f"{code}-A", expiry=days(90), cost=2, actor=user)
    receive(org, store, gummy, 4, lot=f"{code}-OLD", expiry=days(-3), location="BR", cost=2)
    receive(org, store, flower, 20, location="BR", cost=5)
    documents.move_record(
        org=org,
        store=store,
        client_ref=ref("move"),
        actor=user,
        lines=[documents.MoveLineInput(flower, loc(store, "BR"), loc(store, "SF"), D(8))],
    )
    documents.adjustment_record(
        org=org,
        store=store,
        client_ref=ref("adj"),
        reason="damage",
        actor=user,
        lines=[documents.AdjustmentLineInput(flower, loc(store, "BR"), D(-1))],
    )
    documents.write_off_record(
        org=org,
        store=store,
        client_ref=ref("wo"),
        write_off_type="expiry",
        reason="expired",
        actor=user,
        lines=[documents.WriteOffLineInput(gummy, loc(store, "BR"), D(4))],
    )
    sold = sell(org, store, (gummy, 2), (flower, 1), actor=user)
    sales.sale_refund(
        org=org,
        sale=sold,
        lines=[sales.RefundLineInput(1, D(1))],
        client_ref=ref("refund"),
        actor=user,
    )
    sales.sale_void(org=org, sale=sell(org, store, (flower, 2)), actor=user)
    with pytest.raises(InsufficientStock):  # kept as a StockShortfall row
        sell(org, store, (gummy, 500))
    discrepancies_up(org, store, gummy, membership)
    return {"store": store, "membership": membership, "user": user}


def owned_counts(org) -> dict[str, int]:
    counts = {model._meta.label: model.unscoped.filter(org=org).count() for model in purge_order()}
    counts["inventory.Organization"] = Organization.objects.filter(pk=org.pk).count()
    return counts


def ledger_delete_is_refused(org) -> bool:
    try:
        with transaction.atomic():
            StockLedger.unscoped.filter(org=org).delete()
    except DatabaseError:
        return True
    return False


def test_org_purge_deletes_the_org_and_everything_it_owns(org):
    stock_up(org, "S1")
    before = owned_counts(org)
    assert [m for m in INVENTORY_MODELS + DISCREPANCY_MODELS if not before[m._meta.label]] == []

    deleted = org_purge(org=org)

    assert set(owned_counts(org).values()) == {0}
    assert {label: n for label, n in deleted.items() if n} == {
        label: n for label, n in before.items() if n
    }
    assert not LedgerPurge.objects.exists()


def test_org_purge_leaves_other_orgs_alone(org, other_org):
    stock_up(org, "S1")
    theirs = stock_up(other_org, "R1")
    before = owned_counts(other_org)
    ledger = list(StockLedger.unscoped.filter(org=other_org).values().order_by("id"))

    org_purge(org=org)

    assert owned_counts(other_org) == before
    assert list(StockLedger.unscoped.filter(org=other_org).values().order_by("id")) == ledger
    assert_invariants()
    # the ledger's guard is closed again, for them as for everyone
    assert not LedgerPurge.objects.exists()
    assert ledger_delete_is_refused(other_org)
    with pytest.raises(DatabaseError), transaction.atomic():
        StockLedger.unscoped.filter(org=other_org).update(reason="rewritten")
    # and their stock still sells
    product = Product.unscoped.get(org=other_org, sku="R1-FLW")
    sell(other_org, theirs["store"], (product, 1))
    assert_invariants()


def test_org_purge_keeps_user_accounts(org):
    people = stock_up(org, "S1")

    org_purge(org=org)

    assert get_user_model().objects.filter(pk=people["user"].pk).exists()
    assert not Membership.unscoped.filter(user=people["user"]).exists()


def test_org_purge_is_all_or_nothing(org, monkeypatch):
    # given a purge that fails once the ledger and most of the tables are gone
    stock_up(org, "S1")
    before = owned_counts(org)
    real_delete = purge_module._delete

    def failing_delete(queryset):
        if queryset.model is Store:
            raise DatabaseError("disk full")
        return real_delete(queryset)

    monkeypatch.setattr(purge_module, "_delete", failing_delete)

    with pytest.raises(DatabaseError):
        org_purge(org=org)

    # then nothing was deleted and the ledger's guard is closed again
    assert owned_counts(org) == before
    assert not LedgerPurge.objects.exists()
    assert ledger_delete_is_refused(org)
    assert_invariants()


def test_org_purge_can_run_twice_in_one_transaction(org, other_org):
    """The demo's reset purges two organisations inside one outer transaction."""
    stock_up(org, "S1")
    stock_up(other_org, "R1")

    with transaction.atomic():
        org_purge(org=org)
        org_purge(org=other_org)

    assert not Organization.objects.filter(pk__in=[org.pk, other_org.pk]).exists()
    assert not StockLedger.unscoped.exists() and not Batch.unscoped.exists()


def test_purge_order_puts_referrers_before_what_they_point_to():
    order = purge_order()
    position = {model: i for i, model in enumerate(order)}

    assert set(INVENTORY_MODELS) <= set(order) and set(DISCREPANCY_MODELS) <= set(order)
    assert Organization not in position
    for model in order:
        for field in model._meta.concrete_fields:
            target = field.related_model if field.is_relation else None
            if target in position and target is not model:
                assert position[model] < position[target], (model, field.name, target)
    # the stock models in the brief's order
    stock = [m for m in order if m in INVENTORY_MODELS[:8]]
    assert stock.index(StockLedger) < stock.index(StockQuant) < stock.index(Batch)
    assert stock.index(SaleLine) < stock.index(Sale) and stock.index(Refund) < stock.index(Sale)
    # a count's variance row goes before the discrepancy it names, which goes before the
    # stores, products and lots it points at
    assert position[VarianceRow] < position[Discrepancy]
    for model in DISCREPANCY_MODELS:
        assert position[model] < position[Store] and position[model] < position[Product]
    assert (
        position[Discrepancy] < position[Batch] and position[ArchivedDiscrepancy] < position[Batch]
    )
