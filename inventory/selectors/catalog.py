"""Catalog reads: product lists and barcode resolution."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from inventory.barcodes import Scan, parse_scan
from inventory.exceptions import UnknownBarcode
from inventory.models import Organization, Product


@dataclass(frozen=True)
class LookupResult:
    product: Product
    matched_by: str  # "sku" | "barcode" | "gtin" | "gs1"
    scan: Scan | None = None

    @property
    def lot(self) -> str | None:
        return self.scan.lot if self.scan else None

    @property
    def expiry(self):
        return self.scan.expiry if self.scan else None

    @property
    def no_expiry(self) -> bool:
        return bool(self.scan and self.scan.no_expiry)


def product_list(*, org: Organization):
    return Product.objects.filter(org=org).prefetch_related("barcodes")


def product_lookup(*, org: Organization, barcode: str) -> LookupResult:
    """Resolve what a scanner sent to a product.

    Order matters: an exact SKU or stored code wins first, so a numeric SKU or a supplier code is
    never rejected as a GTIN with a bad check digit. Then the text is read as a GTIN (any length,
    zero-padded forms match each other; a wrong check digit raises ``InvalidCheckDigit``) or a GS1
    element string whose (01) GTIN is looked up and whose lot and expiry are returned.
    Unknown codes raise ``UnknownBarcode`` echoing what was scanned.
    """
    text = barcode.strip()
    exact = (
        Product.objects.filter(org=org)
        .filter(Q(sku=text) | Q(barcodes__code=text))
        .order_by("pk").prefetch_related("barcodes").first()
    )
    if exact is not None:
        return LookupResult(exact, "sku" if exact.sku == text else "barcode")

    scan = parse_scan(barcode)
    if scan.text != text:
        # A symbology prefix was stripped: the rest may still be a plain stored code.
        exact = (
            Product.objects.filter(org=org)
            .filter(Q(sku=scan.text) | Q(barcodes__code=scan.text))
            .order_by("pk").prefetch_related("barcodes").first()
        )
        if exact is not None:
            return LookupResult(exact, "sku" if exact.sku == scan.text else "barcode", scan)
    if scan.gtin14:
        product = (
            Product.objects.filter(org=org, barcodes__gtin14=scan.gtin14)
            .prefetch_related("barcodes").first()
        )
        if product is not None:
            return LookupResult(product, "gs1" if scan.is_gs1 else "gtin", scan)
    raise UnknownBarcode(
        f"No product matches '{text}'.", fields={"barcode": ["Unknown barcode."]},
        barcode=text,
    )
