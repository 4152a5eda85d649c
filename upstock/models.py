"""Upstock: the nightly restock of a sales floor from the back room.

A ``Baseline`` is a floor's par level ("well stocked") for one product, or a default for a
category (and subcategory) of products. An ``UpstockRun`` is one night's pull list for one
floor: its lines are computed once, when the run is created, from what the floor sold in the
run's window, what it holds and what the back room can give; staff then settle each line (done
with the quantity pulled, skipped, or an exception) and complete the run.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from inventory.models import Location, Product, Store, TenantModel
from inventory.models.catalog import NON_NEGATIVE, QTY
from inventory.models.stock import quantity_text


class Baseline(TenantModel):
    """A par level at a sales-floor location: for one product, or (``product`` null) the
    default of a category, optionally narrowed to a subcategory. A product's par is its own
    baseline, else its (category, subcategory) default, else its category-only default."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    category = models.CharField(max_length=120, blank=True, default="")
    subcategory = models.CharField(max_length=120, blank=True, default="")
    par_qty = models.DecimalField(**QTY, validators=NON_NEGATIVE)
    # A suggestion below it is dropped (not worth the trip) unless the floor is out.
    min_pull = models.DecimalField(**QTY, null=True, blank=True, validators=[MinValueValidator(0)])
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["location_id", "category", "subcategory", "product_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "location", "product"],
                condition=Q(product__isnull=False),
                name="upstock_baseline_product",
            ),
            models.UniqueConstraint(
                fields=["org", "location", "category", "subcategory"],
                condition=Q(product__isnull=True),
                name="upstock_baseline_category",
            ),
            # Exactly one of: a product (no category), or a category default (no product).
            models.CheckConstraint(
                condition=(
                    Q(product__isnull=False, category="", subcategory="")
                    | (Q(product__isnull=True) & ~Q(category=""))
                ),
                name="upstock_baseline_product_xor_category",
            ),
            models.CheckConstraint(
                condition=Q(par_qty__gte=0), name="upstock_baseline_par_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(min_pull__isnull=True) | Q(min_pull__gte=0),
                name="upstock_baseline_min_pull_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["org", "store", "location"], name="upstock_baseline_loc")]

    def __str__(self) -> str:
        what = (
            f"product #{self.product_id}"
            if self.product_id
            else "/".join(part for part in (self.category, self.subcategory) if part)
        )
        return f"Par {quantity_text(self.par_qty)} of {what} at location #{self.location_id}"


class RunStatus(models.TextChoices):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class UpstockRun(TenantModel):
    """One night's pull list for one sales-floor location (optionally one category)."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=120, blank=True, default="")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=RunStatus.choices, default=RunStatus.IN_PROGRESS
    )
    # None when the nightly job made it; ``created_by_job`` then names the job.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by_job = models.CharField(max_length=64, blank=True, default="")
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    completed_at = models.DateTimeField(null=True, blank=True)
    abandoned_at = models.DateTimeField(null=True, blank=True)
    # A tablet retrying "create run" gets the run its first attempt made.
    client_ref = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "client_ref"],
                condition=~Q(client_ref=""),
                name="upstock_run_client_ref",
            ),
            # A new run abandons the unfinished one of its floor: one in progress at a time.
            models.UniqueConstraint(
                fields=["org", "location"],
                condition=Q(status="in_progress"),
                name="upstock_run_one_open_per_location",
            ),
        ]
        indexes = [
            models.Index(fields=["org", "location", "status"], name="upstock_run_loc_status"),
            models.Index(fields=["org", "store", "created_at"], name="upstock_run_store_created"),
        ]

    def __str__(self) -> str:
        what = f", {self.category}" if self.category else ""
        return (
            f"Upstock run #{self.pk} of location #{self.location_id}{what} "
            f"({self.get_status_display().lower()})"
        )


class LineStatus(models.TextChoices):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    EXCEPTION = "exception"


class ExceptionReason(models.TextChoices):
    BACK_ROOM_SHORT = "back_room_short", "Back room short"
    ALREADY_STOCKED = "already_stocked", "Already stocked"
    MISSING = "missing", "Missing"
    DAMAGED = "damaged", "Damaged"
    OTHER = "other", "Other"


class UpstockLine(TenantModel):
    """One product of a run: the figures it was computed from (frozen at creation), what to
    pull, and what staff did."""

    run = models.ForeignKey(UpstockRun, on_delete=models.PROTECT, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="+")
    # The first upstock source holding the product (walking order); None when none does.
    source_location = models.ForeignKey(
        Location, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    sold = models.DecimalField(**QTY)
    floor_on_hand = models.DecimalField(**QTY)
    back_room_available = models.DecimalField(**QTY)
    par_qty = models.DecimalField(**QTY, null=True, blank=True)
    suggested = models.DecimalField(**QTY)
    pulled = models.DecimalField(**QTY, null=True, blank=True)
    status = models.CharField(max_length=16, choices=LineStatus.choices, default=LineStatus.PENDING)
    exception_reason = models.CharField(
        max_length=16, choices=ExceptionReason.choices, blank=True, default=""
    )
    exception_quantity = models.DecimalField(**QTY, null=True, blank=True)
    note = models.CharField(max_length=500, blank=True, default="")
    position = models.PositiveIntegerField(default=0)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)
    # The pull's move (a StockDocument id; the last one when scans pulled in several steps).
    move_document_id = models.BigIntegerField(null=True, blank=True)
    # The discrepancy a missing/damaged exception recorded. No foreign key: a closed
    # discrepancy moves to the archive with its id.
    discrepancy_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["run_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "product"], name="upstock_line_product"),
        ]
        indexes = [models.Index(fields=["org", "run", "status"], name="upstock_line_status")]

    def __str__(self) -> str:
        return (
            f"Pull {quantity_text(self.suggested)} of product #{self.product_id} "
            f"in run #{self.run_id} ({self.get_status_display().lower()})"
        )


class UpstockPull(TenantModel):
    """One confirmed pull of a line (a done, or one scan): what makes a tablet's retry of the
    same ``client_ref`` a no-op, and which lots the move took."""

    line = models.ForeignKey(UpstockLine, on_delete=models.PROTECT, related_name="pulls")
    client_ref = models.CharField(max_length=128)
    quantity = models.DecimalField(**QTY)
    raw_scan = models.CharField(max_length=200, blank=True, default="")
    document_id = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "line", "client_ref"], name="upstock_pull_client_ref"
            ),
        ]

    def __str__(self) -> str:
        return f"Pulled {quantity_text(self.quantity)} for line #{self.line_id}"
