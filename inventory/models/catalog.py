"""The catalog: products (one SKU each), their barcodes, and the classification map."""

from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from inventory.models.base import TenantModel

QTY = {"max_digits": 18, "decimal_places": 4}
MONEY = {"max_digits": 14, "decimal_places": 4}
NON_NEGATIVE = [MinValueValidator(Decimal("0"))]


class Unit(models.TextChoices):
    EACH = "each", "Each"
    GRAM = "g", "Gram"
    MILLILITRE = "ml", "Millilitre"


class ClassificationMapping(TenantModel):
    """Maps a POS classification (Cova's per-retailer list) to a category and subcategory."""

    classification = models.CharField(max_length=120)
    category = models.CharField(max_length=120)
    subcategory = models.CharField(max_length=120, blank=True, default="")

    class Meta:
        ordering = ["classification"]
        constraints = [
            models.UniqueConstraint(
                fields=["org", "classification"], name="classification_unique_per_org"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.classification} → {self.category} / {self.subcategory}"


class Product(TenantModel):
    """One stock-keeping unit. A variant is simply another SKU."""

    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255)
    brand = models.CharField(max_length=120, blank=True, default="")
    classification = models.CharField(max_length=120, blank=True, default="")
    category = models.CharField(max_length=120, blank=True, default="")
    subcategory = models.CharField(max_length=120, blank=True, default="")
    unit = models.CharField(max_length=8, choices=Unit.choices, default=Unit.EACH)
    tracks_expiry = models.BooleanField(default=False)
    image_url = models.URLField(max_length=500, blank=True, default="")
    reorder_point = models.DecimalField(**QTY, null=True, blank=True, validators=NON_NEGATIVE)
    reorder_qty = models.DecimalField(**QTY, null=True, blank=True, validators=NON_NEGATIVE)
    default_cost = models.DecimalField(**MONEY, null=True, blank=True, validators=NON_NEGATIVE)
    default_price = models.DecimalField(**MONEY, null=True, blank=True, validators=NON_NEGATIVE)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.UniqueConstraint(fields=["org", "sku"], name="product_sku_unique_per_org"),
        ]
        indexes = [
            models.Index(fields=["org", "category", "subcategory"], name="product_org_category"),
            models.Index(fields=["org", "brand"], name="product_org_brand"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class BarcodeKind(models.TextChoices):
    GTIN = "gtin", "GTIN (UPC/EAN)"
    SKU = "sku", "Alternate SKU"
    PACKAGE = "package", "Package tag / lot"
    SUPPLIER = "supplier", "Supplier code"


class ProductBarcode(TenantModel):
    """A code that identifies a product when scanned.

    GTINs also store their 14-digit form (``gtin14``) so that a GTIN-12, its zero-padded GTIN-13
    and the GTIN-14 all find the same product.
    """

    Kind = BarcodeKind

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="barcodes")
    code = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=BarcodeKind.choices, default=BarcodeKind.GTIN)
    gtin14 = models.CharField(max_length=14, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["org", "code"], name="barcode_code_unique_per_org"),
            models.UniqueConstraint(
                fields=["org", "gtin14"],
                condition=Q(gtin14__isnull=False),
                name="barcode_gtin14_unique_per_org",
            ),
        ]
        indexes = [models.Index(fields=["org", "product"], name="barcode_org_product")]

    def __str__(self) -> str:
        return self.code
