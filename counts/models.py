"""Physical counts: sessions made of passes, passes made of scanned lines, variance rows.

Lines are what people counted and stay as they were once their pass is submitted; decisions
(reasons, approvals, how to post) live on the variance rows a reconciliation produces.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from inventory.models import Batch, Location, Product, Store, TenantModel
from inventory.models.catalog import MONEY, QTY
from inventory.models.stock import quantity_text


class Scope(models.TextChoices):
    FULL_STORE = "FULL_STORE", "Full store"
    ZONE = "ZONE", "Zone (some locations and/or categories)"


class SessionStatus(models.TextChoices):
    DRAFT = "draft"
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    RECONCILED = "reconciled"
    CLOSED = "closed"
    CANCELLED = "cancelled"


#: A session holds its scope (its store, for a full count; its passes' locations and categories
#: for a zone) from the moment counting starts until it is closed or cancelled: a reconciled
#: session still has shrink to post, and a second count of the same shelf would book it again.
#: A draft holds nothing (it may be forgotten).
ACTIVE_STATUSES = (SessionStatus.IN_PROGRESS, SessionStatus.SUBMITTED, SessionStatus.RECONCILED)


class CountSession(TenantModel):
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    scope = models.CharField(max_length=16, choices=Scope.choices)
    # ZONE scope: location ids and/or [{"category": ..., "subcategory": ...}] (empty = all).
    scope_locations = models.JSONField(default=list, blank=True)
    scope_categories = models.JSONField(default=list, blank=True)
    blind = models.BooleanField(default=False)
    notes = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=16, choices=SessionStatus.choices, default=SessionStatus.DRAFT
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    reconciled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # One full-store count at a time per store: enforced here, not only in code.
            models.UniqueConstraint(
                fields=["org", "store"],
                condition=Q(
                    scope="FULL_STORE", status__in=["in_progress", "submitted", "reconciled"]
                ),
                name="one_active_full_count_per_store",
            ),
        ]
        indexes = [models.Index(fields=["org", "store", "status"], name="count_session_status")]

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def __str__(self) -> str:
        return (
            f"{self.get_scope_display().split(' (')[0]} count #{self.pk} "
            f"({self.get_status_display().lower()})"
        )


class ScanMode(models.TextChoices):
    SCANNER = "scanner"
    CAMERA = "camera"
    TYPED = "typed"


class PassStatus(models.TextChoices):
    IN_PROGRESS = "in_progress"
    SUBMITTED = "submitted"
    VOIDED = "voided"


class CountPass(TenantModel):
    """A time-boxed count of one location, optionally one category/subcategory."""

    session = models.ForeignKey(CountSession, on_delete=models.PROTECT, related_name="passes")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=120, blank=True, default="")
    subcategory = models.CharField(max_length=120, blank=True, default="")
    recount_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="recounts"
    )
    status = models.CharField(
        max_length=16, choices=PassStatus.choices, default=PassStatus.IN_PROGRESS
    )
    scan_mode = models.CharField(max_length=8, choices=ScanMode.choices, default=ScanMode.SCANNER)
    device_id = models.CharField(max_length=100, blank=True, default="")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["org", "session", "status"], name="count_pass_status")]

    def __str__(self) -> str:
        what = "/".join(part for part in (self.category, self.subcategory) if part)
        return (
            f"Pass #{self.pk} of count #{self.session_id}"
            + (f", {what}" if what else "")
            + f" ({self.get_status_display().lower()})"
        )


class Confidence(models.TextChoices):
    SCANNED = "scanned"
    TYPED = "typed"
    CORRECTED = "corrected"


class CountLine(TenantModel):
    """What was counted of one product (and package) in one pass. Repeat scans add to it."""

    count_pass = models.ForeignKey(CountPass, on_delete=models.PROTECT, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(
        Batch, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    lot_code = models.CharField(max_length=64, blank=True, default="")
    raw_scan = models.CharField(max_length=200, blank=True, default="")
    quantity = models.DecimalField(**QTY)
    confidence = models.CharField(
        max_length=10, choices=Confidence.choices, default=Confidence.SCANNED
    )
    notes = models.CharField(max_length=500, blank=True, default="")
    captured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    device_id = models.CharField(max_length=100, blank=True, default="")
    # Earliest scan of this product in the pass (device time, clamped to the pass window).
    captured_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "count_pass", "product", "lot_code"],
                name="count_line_unique_product_lot",
            ),
        ]

    def __str__(self) -> str:
        lot = f", lot {self.lot_code}" if self.lot_code else ""
        return (
            f"{quantity_text(self.quantity)} of product #{self.product_id}{lot} "
            f"in pass #{self.count_pass_id}"
        )


class CountScan(TenantModel):
    """Every scan or typed entry as it arrived: who, which device, when; the audit trail of a
    line, and what makes an offline tablet's replay (same ``client_line_id``) a no-op."""

    count_pass = models.ForeignKey(CountPass, on_delete=models.PROTECT, related_name="scans")
    line = models.ForeignKey(
        CountLine, on_delete=models.SET_NULL, null=True, blank=True, related_name="scans"
    )
    client_line_id = models.CharField(max_length=100, blank=True, default="")
    raw_scan = models.CharField(max_length=200, blank=True, default="")
    quantity = models.DecimalField(**QTY)
    captured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    device_id = models.CharField(max_length=100, blank=True, default="")
    captured_at = models.DateTimeField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "count_pass", "client_line_id"],
                condition=~Q(client_line_id=""),
                name="count_scan_client_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"Scan {self.raw_scan or '(typed)'} × {quantity_text(self.quantity)} "
            f"in pass #{self.count_pass_id}"
        )


class UnresolvedScan(TenantModel):
    """A scan no product matched: kept on the pass for a manager to map later."""

    count_pass = models.ForeignKey(CountPass, on_delete=models.PROTECT, related_name="unresolved")
    raw_scan = models.CharField(max_length=200)
    quantity = models.DecimalField(**QTY)
    client_line_id = models.CharField(max_length=100, blank=True, default="")
    captured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    device_id = models.CharField(max_length=100, blank=True, default="")
    captured_at = models.DateTimeField()
    resolved_line = models.ForeignKey(
        CountLine, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return (
            f"Unknown code {self.raw_scan} × {quantity_text(self.quantity)} "
            f"in pass #{self.count_pass_id}"
        )


class VarianceStatus(models.TextChoices):
    AUTO_APPROVED = "auto_approved"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class PostingMode(models.TextChoices):
    KEEP_DIFFERENCE = "keep_difference", "Keep the movement-adjusted difference"
    SET_COUNTED = "set_counted", "Set stock to the counted quantity"


class VarianceRow(TenantModel):
    """One (location, product) of a reconciled session: the numbers, frozen, and the decision.

    Rows are read by session: its foreign key and the unique (organisation, session, location,
    product) are the indexes. A bulk decision and the finalisation rewrite thousands of rows,
    so the other foreign keys have none of their own (see ``DiscrepancyFields``)."""

    org = models.ForeignKey(
        "inventory.Organization",
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,
    )
    session = models.ForeignKey(CountSession, on_delete=models.PROTECT, related_name="variance")
    location = models.ForeignKey(
        Location, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", db_index=False)
    expected = models.DecimalField(**QTY)
    counted = models.DecimalField(**QTY)
    variance = models.DecimalField(**QTY)
    variance_pct = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    unit_cost = models.DecimalField(**MONEY)
    value = models.DecimalField(**MONEY)
    expected_at = models.DateTimeField()
    # where an overage lands: the package/lot scanned for this product, if any
    overage_batch = models.ForeignKey(
        Batch, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    status = models.CharField(max_length=16, choices=VarianceStatus.choices)
    mode = models.CharField(
        max_length=16, choices=PostingMode.choices, default=PostingMode.KEEP_DIFFERENCE
    )
    reason = models.CharField(max_length=255, blank=True, default="")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    posted_quantity = models.DecimalField(**QTY, null=True, blank=True)
    # The part of a shortage finalising could not post because the stock had gone meanwhile
    # (negative; 0 when everything posted). Also kept as a ``clamped`` StockShortfall row.
    unposted_quantity = models.DecimalField(**QTY, null=True, blank=True)
    # Outside its category's variance policy, the row IS this discrepancy: deciding the
    # discrepancy decides the row, and finalising marks it ADJUSTED.
    # No database constraint: a closed discrepancy moves to the archive with its id
    # (``archive_discrepancies``) and the row keeps pointing at it.
    discrepancy = models.OneToOneField(
        "discrepancies.Discrepancy",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="variance_row",
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "session", "location", "product"], name="variance_row_unique"
            ),
        ]

    def __str__(self) -> str:
        variance = quantity_text(self.variance)
        sign = "+" if self.variance is not None and self.variance > 0 else ""
        return (
            f"Count #{self.session_id}, product #{self.product_id} at location "
            f"#{self.location_id}: {sign}{variance} ({self.get_status_display().lower()})"
        )
