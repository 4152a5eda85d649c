"""Discrepancies: every stock mismatch as a record that a named person reviews.

A discrepancy comes from a source (a count's variance, an ad-hoc correction, a POS shortfall,
the nightly invariant check, later imports and transfers), is judged against the variance
policy of its product's category (``VariancePolicy``), and goes NEW → UNDER_REVIEW →
APPROVED | REJECTED, and APPROVED → ADJUSTED once its correction is posted. The correction's
ledger rows are linked by ``(ref_type, ref_id, ref_line)``, never by a foreign key into the
ledger (which is append-only and partitionable).

Closed discrepancies older than the retention window move to ``ArchivedDiscrepancy`` with the
same id (``archive_discrepancies``): out of default lists, still readable and counted.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from inventory.models import Batch, Location, Product, Store, TenantModel
from inventory.models.catalog import MONEY, QTY
from inventory.models.stock import quantity_text


class Source(models.TextChoices):
    CYCLE_COUNT = "CYCLE_COUNT", "Cycle count"
    AD_HOC = "AD_HOC", "Ad-hoc correction"
    POS_SHORTFALL = "POS_SHORTFALL", "POS shortfall"
    IMPORT = "IMPORT", "Import"
    INTEGRATION = "INTEGRATION", "Integration"
    TRANSFER = "TRANSFER", "Transfer"
    INVARIANT = "INVARIANT", "Invariant check"


class Kind(models.TextChoices):
    """The discrepancy's type (``type`` in the API; ``kind`` here, as ``type`` is a builtin)."""

    COUNT = "COUNT", "Count"
    DAMAGE = "DAMAGE", "Damage"
    EXPIRY = "EXPIRY", "Expiry"
    THEFT = "THEFT", "Theft"
    DATA_ERROR = "DATA_ERROR", "Data error"
    OTHER = "OTHER", "Other"


class Status(models.TextChoices):
    NEW = "NEW", "New"
    UNDER_REVIEW = "UNDER_REVIEW", "Under review"
    APPROVED = "APPROVED", "Approved"
    REJECTED = "REJECTED", "Rejected"
    ADJUSTED = "ADJUSTED", "Adjusted"


#: Waiting for a decision.
UNDECIDED = (Status.NEW, Status.UNDER_REVIEW)
#: Nothing more will happen to it (an informational one ends APPROVED: acknowledged).
CLOSED = (Status.REJECTED, Status.ADJUSTED)


class Severity(models.TextChoices):
    LOW = "LOW", "Low"
    MEDIUM = "MEDIUM", "Medium"
    HIGH = "HIGH", "High"
    CRITICAL = "CRITICAL", "Critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)


#: Severities that escalate to an admin and, while open, hold the product at the store.
SERIOUS = (Severity.HIGH, Severity.CRITICAL)


class DocumentType(models.TextChoices):
    """What a discrepancy came from: the row ``document_id`` (and ``document_line``) names."""

    COUNT_VARIANCE = "count_variance", "Count variance row"
    CORRECTION = "correction", "Ad-hoc correction request"
    SHORTFALL = "shortfall", "Stock shortfall"
    INVARIANT_CHECK = "invariant_check", "Invariant check"
    IMPORT_ROW = "import_row", "Import row"
    TRANSFER_LINE = "transfer_line", "Transfer line"


class CorrectionMode(models.TextChoices):
    """How a count's correction posts (the count's posting modes)."""

    KEEP_DIFFERENCE = "keep_difference", "Keep the movement-adjusted difference"
    SET_COUNTED = "set_counted", "Set stock to the counted quantity"


def open_q(prefix: str = "") -> Q:
    """Open, for enforcement: undecided, or approved with a correction still to post."""
    return Q(**{f"{prefix}status__in": UNDECIDED}) | Q(
        **{f"{prefix}status": Status.APPROVED, f"{prefix}corrective": True}
    )


class DiscrepancyFields(TenantModel):
    """The columns of a discrepancy, shared by the live table and its archive.

    Only the foreign keys that reads filter on have an index of their own (the store; the
    organisation and product lead the composite indexes below). A bulk decision or a count's
    finalisation rewrites thousands of rows, and every index is written again for each: the
    single-column indexes Django adds to every foreign key (organisation, location, batch,
    product, three people) made such an UPDATE two and a half times slower and served only
    the refusal to delete a referenced row — which PROTECT still checks, by a scan."""

    org = models.ForeignKey(
        "inventory.Organization",
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
        db_index=False,
    )
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(
        Location,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+", db_index=False)
    batch = models.ForeignKey(
        Batch, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.COUNT)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    # The numbers, frozen when recorded: variance = actual − expected (positive = surplus).
    expected = models.DecimalField(**QTY)
    actual = models.DecimalField(**QTY)
    variance = models.DecimalField(**QTY)
    unit_cost = models.DecimalField(**MONEY, default=0)
    value = models.DecimalField(**MONEY, default=0)  # variance × unit cost (signed)
    # The product's stock at the store before the correction (the 20% rule's base).
    store_on_hand = models.DecimalField(**QTY, null=True, blank=True)
    # The document it came from.
    document_type = models.CharField(max_length=16, choices=DocumentType.choices)
    document_id = models.BigIntegerField(null=True, blank=True)
    document_line = models.PositiveIntegerField(default=0)
    source_ref = models.CharField(max_length=128, blank=True, default="")
    reason = models.CharField(max_length=255, blank=True, default="")
    # Judgement: does approving post a correction; was it within the category's policy; does
    # it need an admin; how it posts (counts).
    corrective = models.BooleanField(default=True)
    within_policy = models.BooleanField(default=False)
    escalated = models.BooleanField(default=False)
    correction_mode = models.CharField(
        max_length=16, choices=CorrectionMode.choices, default=CorrectionMode.KEEP_DIFFERENCE
    )
    # Decisions: who and when at each step.
    resolution_notes = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(default=timezone.now)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    self_approved = models.BooleanField(default=False)
    adjusted_at = models.DateTimeField(null=True, blank=True)
    # The correction's ledger rows: every row with this (ref_type, ref_id, ref_line).
    ledger_ref_type = models.CharField(max_length=32, blank=True, default="")
    ledger_ref_id = models.BigIntegerField(null=True, blank=True)
    ledger_ref_line = models.PositiveIntegerField(null=True, blank=True)
    posted_quantity = models.DecimalField(**QTY, null=True, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_open(self) -> bool:
        return self.status in UNDECIDED or (self.status == Status.APPROVED and self.corrective)

    @property
    def severity_rank(self) -> int:
        return Severity(self.severity).rank

    def __str__(self) -> str:
        variance = quantity_text(self.variance)
        sign = "+" if self.variance is not None and self.variance > 0 else ""
        return (
            f"Discrepancy #{self.pk}: {sign}{variance} of product #{self.product_id} "
            f"({self.get_source_display().lower()}, {self.get_status_display().lower()})"
        )


class Discrepancy(DiscrepancyFields):
    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "discrepancies"
        constraints = [
            # A hook that runs twice (a retried reconcile, a replayed shortfall) records once.
            models.UniqueConstraint(
                fields=["org", "document_type", "document_id", "document_line"],
                condition=Q(document_id__isnull=False),
                name="discrepancy_document_once",
            ),
            models.CheckConstraint(
                condition=~Q(status="ADJUSTED") | Q(ledger_ref_id__isnull=False),
                name="discrepancy_adjusted_has_ledger_ref",
            ),
        ]
        indexes = [
            models.Index(fields=["org", "status", "severity"], name="discrepancy_status_severity"),
            models.Index(fields=["org", "product", "store"], name="discrepancy_product_store"),
            models.Index(fields=["org", "kind", "source"], name="discrepancy_kind_source"),
            models.Index(fields=["org", "created_at"], name="discrepancy_created"),
        ]


class ArchivedDiscrepancy(DiscrepancyFields):
    """A closed discrepancy past the retention window, with its original id."""

    id = models.BigIntegerField(primary_key=True)
    archived_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "archived discrepancies"
        indexes = [
            models.Index(fields=["org", "created_at"], name="archived_discrepancy_created"),
            models.Index(fields=["org", "product", "store"], name="archived_disc_product_store"),
        ]


class VariancePolicy(TenantModel):
    """What a correction of a category may be without anyone's approval: at most ``units``, or
    ``percent`` of the expected quantity (the larger), and — when set — at most ``value`` at
    cost. The blank category is the organisation's default. Severity is measured against the
    same allowances, so a product with no cost is still judged by its units."""

    category = models.CharField(max_length=120, blank=True, default="")
    units = models.DecimalField(**QTY, validators=[MinValueValidator(0)])
    percent = models.DecimalField(max_digits=7, decimal_places=3, validators=[MinValueValidator(0)])
    value = models.DecimalField(**MONEY, null=True, blank=True, validators=[MinValueValidator(0)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category"]
        constraints = [
            models.UniqueConstraint(fields=["org", "category"], name="variance_policy_category"),
        ]
        verbose_name_plural = "variance policies"

    def __str__(self) -> str:
        what = self.category or "default"
        limit = f", ≤ {self.value} at cost" if self.value is not None else ""
        return f"{what}: ±{quantity_text(self.units)} units or {self.percent}%{limit}"


class CorrectionStatus(models.TextChoices):
    POSTED = "posted", "Posted"  # within policy: posted at once
    PENDING = "pending", "Pending approval"
    DECIDED = "decided", "Every line decided"


class CorrectionRequest(TenantModel):
    """An ad-hoc adjustment or write-off as it was asked for: the idempotency record of the
    request (``client_ref`` and the request's hash) and, above policy, what approval posts."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16)  # DocumentKind.ADJUSTMENT | WRITE_OFF
    client_ref = models.CharField(max_length=128)
    request_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=8, choices=CorrectionStatus.choices)
    reason = models.CharField(max_length=255)
    write_off_type = models.CharField(max_length=16, blank=True, default="")
    source_ref = models.CharField(max_length=128, blank=True, default="")
    occurred_at = models.DateTimeField(null=True, blank=True)
    # The resolved lines: [{"line", "product", "location", "quantity", "batch", "lot_code",
    # "expiry_date", "unit_cost"}], what approving a line posts.
    lines = models.JSONField(default=list)
    # The stock document posted at once (within policy), if any.
    document_id = models.BigIntegerField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "kind", "client_ref"], name="correction_request_client_ref"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind.replace('_', '-')} request {self.client_ref} ({self.status})"
