"""Turn what tablets send into count entries, for a whole batch of scans at once.

A scan may be an SKU, a stored barcode, a GTIN of any length, a GS1 string with lot and expiry,
or a package tag (Metrc tag / Cova PackageId) naming a received lot. All of a request's scans
are resolved in a fixed number of queries; what matches nothing is returned as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q

from core.errors import ApplicationError, ValidationFailed
from counts.services.passes import Entry
from inventory.catalog.barcodes import parse_scan
from inventory.catalog.selectors import product_names_resolve
from inventory.models import Batch, Product


@dataclass
class Resolution:
    entries: list[Entry | None]  # None where the scan matched nothing
    unknown: list[int]  # indexes of unknown scans


def resolve_scans(org, items: list[dict]) -> Resolution:
    scans, errors = {}, {}
    for index, item in enumerate(items):
        if item.get("barcode"):
            try:
                scans[index] = parse_scan(item["barcode"])
            except ApplicationError as exc:
                errors[f"lines.{index}.barcode"] = [exc.message]
                if exc.code == "invalid_check_digit":
                    errors.setdefault("_code", exc.code)
    if errors:
        code = errors.pop("_code", "invalid_barcode")
        raise ValidationFailed("Some scans cannot be read.", code=code, fields=errors)

    ids = {item["product"] for item in items if item.get("product")}
    skus = {item["sku"].strip() for item in items if item.get("sku")}
    raw_scans = {items[i]["barcode"].strip(): scan for i, scan in scans.items()}
    names = product_names_resolve(org=org, ids=ids, skus=skus, scans=raw_scans)
    texts = {s.text for s in scans.values()} | set(raw_scans)
    by_package = {}
    if texts:
        for batch in (
            Batch.objects.filter(org=org, lot_code__in=texts, unallocated_store__isnull=True)
            .select_related("product")
            .order_by("received_at", "id")
        ):
            by_package[batch.lot_code] = batch  # the latest receipt wins

    resolved: list[tuple[Product | None, str]] = []
    for index, item in enumerate(items):
        lot = (item.get("lot_code") or "").strip()
        product = None
        if item.get("product"):
            product = names.by_id.get(item["product"])
        elif item.get("sku"):
            product = names.by_sku.get(item["sku"].strip())
        else:
            scan, raw = scans[index], item["barcode"].strip()
            package = by_package.get(raw) or by_package.get(scan.text)
            product = names.exact(raw, scan)
            if product is None and package is not None:
                product, lot = package.product, lot or package.lot_code
            if product is None:
                product = names.gtin(scan)
            lot = lot or (scan.lot or "")
        resolved.append((product, lot))

    pairs = {(p.pk, lot) for p, lot in resolved if p is not None and lot}
    batches = {}
    if pairs:
        condition = Q()
        for product_id, lot in pairs:
            condition |= Q(product_id=product_id, lot_code=lot)
        batches = {
            (b.product_id, b.lot_code): b
            for b in Batch.objects.filter(org=org, unallocated_store__isnull=True).filter(condition)
        }

    entries: list[Entry | None] = []
    unknown: list[int] = []
    for index, ((product, lot), item) in enumerate(zip(resolved, items, strict=True)):
        if product is None:
            if item.get("barcode"):
                unknown.append(index)
                entries.append(None)
                continue
            field = "product" if item.get("product") else "sku"
            raise ValidationFailed(
                "Unknown product.",
                code="unknown_product",
                fields={f"lines.{index}.{field}": ["Unknown product."]},
            )
        entries.append(
            Entry(
                product=product,
                quantity=item["quantity"],
                lot_code=lot,
                batch=batches.get((product.pk, lot)),
                raw_scan=item.get("barcode") or "",
                client_line_id=item.get("client_line_id", ""),
                captured_at=item.get("captured_at"),
                confidence=item.get("confidence")
                or ("scanned" if item.get("barcode") else "typed"),
                notes=item.get("notes", ""),
            )
        )
    return Resolution(entries, unknown)
