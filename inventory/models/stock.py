"""Stock: batches (lot identity), quants (the only mutable number), the append-only ledger.

Only ``inventory.stock.write_path`` writes quants and ledger rows. See docs/architecture.md.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from inventory.models.base import TenantModel
from inventory.models.catalog import MONEY, QTY, Product
from inventory.models.tenancy import Location, Store

ZERO = Decimal("0")


def quantity_text(value) -> str:
    """A quantity for people: ``2``, ``3.5``, not ``2.0000`` (for ``__str__`` and messages)."""
    if value is None:
        return "?"
    return f"{Decimal(value).normalize():f}"


class RefType(models.TextChoices):
    SALE = "SALE"
    REFUND = "REFUND"
    VOID = "VOID"
    RECEIPT = "RECEIPT"
    PURCHASE_ORDER_RECEIPT = "PURCHASE_ORDER_RECEIPT"
    TRANSFER_OUT = "TRANSFER_OUT"
    TRANSFER_IN = "TRANSFER_IN"
    MOVE_OUT = "MOVE_OUT"
    MOVE_IN = "MOVE_IN"
    ADJUSTMENT = "ADJUSTMENT"
    COUNT_RECONCILE = "COUNT_RECONCILE"
    WASTE = "WASTE"
    DAMAGE = "DAMAGE"
    EXPIRY = "EXPIRY"
    IMPORT = "IMPORT"
    OPENING = "OPENING"


class Batch(TenantModel):
    """One lot of a product, organisation-wide, so it keeps its identity between stores.

    Identity only: quantities live on quants. An *unallocated* batch (one per store and product)
    absorbs sales made without stock in the ``warn``/``record`` negative-stock modes; it is the
    only batch whose quants may go below zero, and the next receipt settles it.
    """

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="batches")
    lot_code = models.CharField(max_length=64, blank=True, default="")
    expiry_date = models.DateField(null=True, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    unit_cost = models.DecimalField(**MONEY, default=ZERO)
    unallocated_store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name_plural = "batches"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                # a lot code names one batch; receipts without a lot each make their own batch
                fields=["org", "product", "lot_code"],
                condition=Q(unallocated_store__isnull=True) & ~Q(lot_code=""),
                name="batch_lot_unique_per_product",
            ),
            models.UniqueConstraint(
                fields=["org", "product", "unallocated_store"],
                condition=Q(unallocated_store__isnull=False),
                name="batch_one_unallocated_per_store_product",
            ),
        ]
        indexes = [models.Index(fields=["org", "product", "expiry_date"], name="batch_org_expiry")]

    def __str__(self) -> str:
        return self.lot_code or f"batch {self.pk}"

    @property
    def is_unallocated(self) -> bool:
        return self.unallocated_store_id is not None


class StockQuant(TenantModel):
    """Quantity of one batch at one location. Store and product are copied on for indexing."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="quants")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="quants")
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="quants")
    quantity = models.DecimalField(**QTY, default=ZERO)
    # The last change applied (the write path's upsert carries each delta in it).
    last_delta = models.DecimalField(**QTY, default=ZERO, db_default=ZERO, editable=False)
    # Copied from the batch: lets the database itself refuse a negative ordinary quant.
    unallocated = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "location", "batch"], name="quant_unique_location_batch"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=0) | Q(unallocated=True), name="quant_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["org", "store", "product"], name="quant_org_store_product"),
            models.Index(fields=["org", "product"], name="quant_org_product"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} of {self.batch_id} at {self.location_id}"


class StockLedger(TenantModel):
    """Append-only: the database refuses UPDATE and DELETE (see inventory.db_triggers).

    One row per (document line, batch, location) change. ``occurred_at`` is business time (for
    balances "as of"), ``created_at`` is when it was written.
    """

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="+")
    qty_delta = models.DecimalField(**QTY)
    ref_type = models.CharField(max_length=32, choices=RefType.choices)
    ref_id = models.BigIntegerField()
    ref_line = models.IntegerField(default=0)
    source = models.CharField(max_length=32, blank=True, default="")
    source_ref = models.CharField(max_length=128, blank=True, default="")
    reason = models.CharField(max_length=255, blank=True, default="")
    unit_cost = models.DecimalField(**MONEY, default=ZERO)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-id"]
        # Each exact-match filter of the ledger API has an index ending in id, so a keyset page
        # (ORDER BY id DESC LIMIT n) reads n index entries however large the table is.
        indexes = [
            models.Index(fields=["org", "id"], name="ledger_org_id"),
            models.Index(fields=["org", "store", "id"], name="ledger_org_store_id"),
            models.Index(fields=["org", "location", "id"], name="ledger_org_location_id"),
            models.Index(fields=["org", "product", "id"], name="ledger_org_product_id"),
            models.Index(fields=["org", "batch", "id"], name="ledger_org_batch_id"),
            models.Index(fields=["org", "ref_type", "ref_id"], name="ledger_org_ref"),
            models.Index(fields=["org", "source_ref"], name="ledger_org_source_ref"),
            models.Index(fields=["org", "store", "occurred_at"], name="ledger_org_store_time"),
            models.Index(fields=["org", "occurred_at"], name="ledger_org_time"),
        ]

    def __str__(self) -> str:
        return f"{self.ref_type} {self.ref_id}: {self.qty_delta}"


class LedgerPurge(models.Model):
    """While a row names an organisation, the ledger trigger lets that org's rows be deleted.

    Used only by ``org_purge`` (removing a whole tenant, e.g. the demo's reset), inside one
    transaction that removes the row again; ordinary deletes stay impossible.
    """

    org_id = models.BigIntegerField(primary_key=True)


class ShortfallOutcome(models.TextChoices):
    BLOCKED = "blocked", "Refused (block mode)"
    BOOKED = "booked", "Sold anyway, booked to the unallocated batch"
    CLAMPED = "clamped", "Partly posted: the stock had gone meanwhile (count finalisation)"


class StockShortfall(TenantModel):
    """A move that wanted more than there was; kept even when the move itself was refused."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    requested = models.DecimalField(**QTY)
    available = models.DecimalField(**QTY)
    outcome = models.CharField(max_length=8, choices=ShortfallOutcome.choices)
    ref_type = models.CharField(max_length=32, choices=RefType.choices)
    ref_id = models.BigIntegerField(null=True, blank=True)
    client_ref = models.CharField(max_length=128, blank=True, default="")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["org", "store", "created_at"], name="shortfall_org_store")]

    def __str__(self) -> str:
        return (
            f"Shortfall #{self.pk}: {quantity_text(self.requested)} wanted, "
            f"{quantity_text(self.available)} available ({self.outcome})"
        )


class StockHold(TenantModel):
    """A product held at a store: something is wrong with its stock there (the discrepancies
    app keeps one row per store and product with an open HIGH or CRITICAL discrepancy).

    Kept with the stock so the write path's quant lock reads it in the statement it already
    runs: checking a sale against it costs no statement. What a hold does — nothing, a warning,
    or a refusal — is the organisation's enforcement mode, judged by the policy that keeps it.
    """

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    since = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["store_id", "product_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "store", "product"], name="stock_hold_store_product"
            ),
        ]

    def __str__(self) -> str:
        return f"Hold on product #{self.product_id} at store #{self.store_id}"


class DocumentKind(models.TextChoices):
    RECEIPT = "receipt"
    MOVE = "move"
    ADJUSTMENT = "adjustment"
    WRITE_OFF = "write_off"


class StockDocument(TenantModel):
    """A receipt, move, adjustment or write-off: the document its ledger rows point to.

    ``client_ref`` makes a device's retry safe: the same key with the same request returns the
    first result and posts nothing; with another request it is a conflict.
    """

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=DocumentKind.choices)
    client_ref = models.CharField(max_length=128)
    request_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=255, blank=True, default="")
    write_off_type = models.CharField(max_length=16, blank=True, default="")
    source = models.CharField(max_length=32, blank=True, default="")
    source_ref = models.CharField(max_length=128, blank=True, default="")
    occurred_at = models.DateTimeField()
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "kind", "client_ref"], name="document_client_ref_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.client_ref})"


class SaleStatus(models.TextChoices):
    COMPLETED = "completed"
    VOIDED = "voided"


class Sale(TenantModel):
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    client_ref = models.CharField(max_length=128)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(
        max_length=16, choices=SaleStatus.choices, default=SaleStatus.COMPLETED
    )
    source = models.CharField(max_length=32, blank=True, default="")
    source_ref = models.CharField(max_length=128, blank=True, default="")
    occurred_at = models.DateTimeField()
    warnings = models.JSONField(default=list, blank=True)
    # The first answer, returned again byte for byte when a device replays the request.
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    voided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "client_ref"], name="sale_client_ref_unique"),
        ]
        indexes = [models.Index(fields=["org", "store", "occurred_at"], name="sale_org_store_time")]

    def __str__(self) -> str:
        return f"Sale #{self.pk} ({self.client_ref}, {self.get_status_display().lower()})"


class SaleLine(TenantModel):
    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    quantity = models.DecimalField(**QTY)
    unit_price = models.DecimalField(**MONEY, null=True, blank=True)

    class Meta:
        ordering = ["sale_id", "line_no"]
        constraints = [
            models.UniqueConstraint(fields=["org", "sale", "line_no"], name="sale_line_unique"),
        ]

    def __str__(self) -> str:
        return (
            f"Sale #{self.sale_id} line {self.line_no}: {quantity_text(self.quantity)} of "
            f"product #{self.product_id}"
        )


class Refund(TenantModel):
    sale = models.ForeignKey(Sale, on_delete=models.PROTECT, related_name="refunds")
    client_ref = models.CharField(max_length=128)
    request_hash = models.CharField(max_length=64)
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True, default="")
    occurred_at = models.DateTimeField()
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "client_ref"], name="refund_client_ref_unique"),
        ]

    def __str__(self) -> str:
        return f"Refund #{self.pk} of sale #{self.sale_id} ({self.client_ref})"
