"""Resolve the names in a stock request — products, locations, lots — for all lines at once.

A POS sends SKUs or scanned barcodes, a tablet product ids; either way the whole request is
resolved in a fixed number of queries, and every bad line is reported in one answer
(``lines.3.sku: Unknown product``), never just the first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal

from django.db.models import Q

from core.errors import ApplicationError, ValidationFailed
from inventory.catalog.barcodes import parse_scan
from inventory.catalog.selectors import product_names_resolve
from inventory.models import Batch, Location, Product, Store, Unit


class Problems:
    """Collects ``(field, message, code)`` for a request and raises them together."""

    def __init__(self):
        self.fields: dict[str, list[str]] = defaultdict(list)
        self.codes: set[str] = set()

    def add(self, field: str, message: str, code: str) -> None:
        self.fields[field].append(message)
        self.codes.add(code)

    def raise_if_any(self) -> None:
        if self.fields:
            code = next(iter(self.codes)) if len(self.codes) == 1 else "invalid"
            raise ValidationFailed(
                "Some lines cannot be used.", code=code, fields=dict(self.fields)
            )


def resolve_products(org, lines: list[dict], problems: Problems) -> list[Product | None]:
    """The product of each line, named by ``product`` id, ``sku`` or ``barcode`` (as scanned)."""
    ids = {ln["product"] for ln in lines if ln.get("product")}
    skus = {ln["sku"].strip() for ln in lines if ln.get("sku")}
    scans = {}
    for index, ln in enumerate(lines):
        if ln.get("barcode"):
            try:
                scans[index] = parse_scan(ln["barcode"])
            except ApplicationError as exc:
                problems.add(f"lines.{index}.barcode", exc.message, exc.code)
    names = product_names_resolve(
        org=org,
        ids=ids,
        skus=skus,
        scans={lines[i]["barcode"].strip(): scan for i, scan in scans.items()},
    )

    resolved: list[Product | None] = []
    for index, ln in enumerate(lines):
        product, field = None, "product"
        if ln.get("product"):
            product = names.by_id.get(ln["product"])
        elif ln.get("sku"):
            field, product = "sku", names.by_sku.get(ln["sku"].strip())
        elif index in scans:
            field, scan = "barcode", scans[index]
            product = names.exact(ln["barcode"].strip(), scan) or names.gtin(scan)
        elif ln.get("barcode"):
            resolved.append(None)  # unreadable scan, already reported
            continue
        if product is None:
            problems.add(f"lines.{index}.{field}", "Unknown product.", "unknown_product")
        elif not product.is_active:
            problems.add(f"lines.{index}.{field}", "The product is archived.", "inactive_product")
        resolved.append(product)
    return resolved


def check_whole_numbers(
    products: list[Product | None], lines: list[dict], problems: Problems, field: str = "quantity"
) -> None:
    """Products counted in units (``each``) take whole quantities only."""
    for index, (product, ln) in enumerate(zip(products, lines, strict=True)):
        quantity = ln.get(field)
        if (
            product is not None
            and product.unit == Unit.EACH
            and quantity is not None
            and (Decimal(quantity) % 1 != 0)
        ):
            problems.add(
                f"lines.{index}.{field}",
                f"{product.sku} is sold by the unit: use a whole number.",
                "fractional_quantity",
            )


def resolve_locations(
    store: Store,
    lines: list[dict],
    fields: tuple[str, ...],
    problems: Problems,
    *,
    sellable_only: bool = False,
    extra: dict[str, int | None] | None = None,
) -> dict[int, Location]:
    """Locations named in ``lines`` (and ``extra`` top-level fields) that belong to the store."""
    wanted = {ln[f] for ln in lines for f in fields if ln.get(f)}
    wanted |= {v for v in (extra or {}).values() if v}
    found = (
        {loc.pk: loc for loc in Location.objects.filter(store=store, pk__in=wanted, is_active=True)}
        if wanted
        else {}
    )
    for index, ln in enumerate(lines):
        for f in fields:
            value = ln.get(f)
            if not value:
                continue
            location = found.get(value)
            if location is None:
                problems.add(
                    f"lines.{index}.{f}", "Not a location of this store.", "unknown_location"
                )
            elif sellable_only and not location.sellable:
                problems.add(
                    f"lines.{index}.{f}", "Sales come only from sellable locations.", "not_sellable"
                )
    for name, value in (extra or {}).items():
        if value and value not in found:
            problems.add(name, "Not a location of this store.", "unknown_location")
    return found


def resolve_lots(
    org,
    products: list[Product | None],
    lines: list[dict],
    problems: Problems,
    must_exist: Callable[[int], bool] = lambda index: True,
) -> list[int | None]:
    """The batch id of each line's ``lot_code`` (None when the line names no lot, or a lot not
    known yet; that is an ``unknown_lot`` problem for the lines ``must_exist`` says)."""
    pairs = {
        (p.pk, ln["lot_code"].strip())
        for p, ln in zip(products, lines, strict=True)
        if p is not None and ln.get("lot_code", "").strip()
    }
    batches = {}
    if pairs:
        condition = Q()
        for product_id, lot in pairs:
            condition |= Q(product_id=product_id, lot_code=lot)
        batches = {
            (b.product_id, b.lot_code): b.pk
            for b in Batch.objects.filter(org=org, unallocated_store__isnull=True).filter(condition)
        }
    out: list[int | None] = []
    for index, (product, ln) in enumerate(zip(products, lines, strict=True)):
        lot = ln.get("lot_code", "").strip()
        if not lot or product is None:
            out.append(None)
            continue
        batch_id = batches.get((product.pk, lot))
        if batch_id is None and must_exist(index):
            problems.add(f"lines.{index}.lot_code", "No such lot of this product.", "unknown_lot")
        out.append(batch_id)
    return out
