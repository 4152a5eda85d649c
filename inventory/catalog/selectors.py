"""Catalog reads: product lists and barcode resolution."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from inventory.catalog.barcodes import Scan, parse_scan
from inventory.exceptions import UnknownBarcode
from inventory.models import Batch, Organization, Product, ProductBarcode


@dataclass(frozen=True)
class LookupResult:
    product: Product
    matched_by: str  # "sku" | "barcode" | "package" | "gtin" | "gs1"
    scan: Scan | None = None
    package: Batch | None = None  # the lot a scanned package tag names

    @property
    def lot(self) -> str | None:
        if self.package is not None:
            return self.package.lot_code
        return self.scan.lot if self.scan else None

    @property
    def expiry(self):
        if self.package is not None:
            return self.package.expiry_date
        return self.scan.expiry if self.scan else None

    @property
    def no_expiry(self) -> bool:
        return bool(self.scan and self.scan.no_expiry)


def product_list(*, org: Organization):
    return Product.objects.filter(org=org).prefetch_related("barcodes")


def product_lookup(*, org: Organization, barcode: str) -> LookupResult:
    """Resolve what a scanner sent to a product.

    Order matters: an exact SKU or stored code wins first, so a numeric SKU or a supplier code is
    never rejected as a GTIN with a bad check digit; then a package tag naming a received lot.
    Then the text is read as a GTIN (any length, zero-padded forms match each other; a wrong
    check digit raises ``InvalidCheckDigit``) or a GS1 element string whose (01) GTIN is looked
    up and whose lot and expiry are returned.
    Unknown codes raise ``UnknownBarcode`` echoing what was scanned.
    """
    text = barcode.strip()
    exact = (
        Product.objects.filter(org=org)
        .filter(Q(sku=text) | Q(barcodes__code=text))
        .order_by("pk")
        .prefetch_related("barcodes")
        .first()
    )
    if exact is not None:
        return LookupResult(exact, "sku" if exact.sku == text else "barcode")
    package = (
        Batch.objects.filter(org=org, lot_code=text, unallocated_store__isnull=True)
        .select_related("product")
        .order_by("-received_at", "-id")
        .first()
    )
    if package is not None:
        # A Metrc tag or Cova PackageId printed on the pack: the lot it names, and its product.
        return LookupResult(package.product, "package", package=package)

    scan = parse_scan(barcode)
    if scan.text != text:
        # A symbology prefix was stripped: the rest may still be a plain stored code.
        exact = (
            Product.objects.filter(org=org)
            .filter(Q(sku=scan.text) | Q(barcodes__code=scan.text))
            .order_by("pk")
            .prefetch_related("barcodes")
            .first()
        )
        if exact is not None:
            return LookupResult(exact, "sku" if exact.sku == scan.text else "barcode", scan)
    if scan.gtin14:
        product = (
            Product.objects.filter(org=org, barcodes__gtin14=scan.gtin14)
            .prefetch_related("barcodes")
            .first()
        )
        if product is not None:
            return LookupResult(product, "gs1" if scan.is_gs1 else "gtin", scan)
    raise UnknownBarcode(
        f"No product matches '{text}'.",
        fields={"barcode": ["Unknown barcode."]},
        barcode=text,
    )


@dataclass
class ProductNames:
    """The products a whole request names — by id, SKU or scanned code — found in two queries,
    so every line of a sale, receipt or count batch resolves without a query of its own."""

    by_id: dict[int, Product]
    by_sku: dict[str, Product]
    by_code: dict[str, Product]
    by_gtin: dict[str, Product]

    def exact(self, raw: str, scan: Scan) -> Product | None:
        """An SKU or stored code, as scanned or without its symbology prefix."""
        return (
            self.by_sku.get(raw)
            or self.by_code.get(raw)
            or self.by_sku.get(scan.text)
            or self.by_code.get(scan.text)
        )

    def gtin(self, scan: Scan) -> Product | None:
        return self.by_gtin.get(scan.gtin14) if scan.gtin14 else None


def product_names_resolve(
    *, org: Organization, ids: set[int], skus: set[str], scans: dict[str, Scan]
) -> ProductNames:
    """``scans`` maps each raw scanned text to its parsed ``Scan``."""
    texts = {s.text for s in scans.values()} | set(scans)
    gtins = {s.gtin14 for s in scans.values() if s.gtin14}
    by_id: dict[int, Product] = {}
    if ids or skus or texts:
        by_id = {
            p.pk: p
            for p in Product.objects.filter(org=org).filter(Q(pk__in=ids) | Q(sku__in=skus | texts))
        }
    by_code: dict[str, Product] = {}
    by_gtin: dict[str, Product] = {}
    if texts or gtins:
        for barcode in (
            ProductBarcode.objects.filter(org=org)
            .filter(Q(code__in=texts) | Q(gtin14__in=gtins))
            .select_related("product")
        ):
            by_code[barcode.code] = barcode.product
            if barcode.gtin14:
                by_gtin[barcode.gtin14] = barcode.product
    return ProductNames(by_id, {p.sku: p for p in by_id.values()}, by_code, by_gtin)
