"""What a device names, resolved for a whole request at once: products, lots and locations.

A POS sends SKUs or what its scanner read, a tablet product ids or scans, an import SKUs and
package ids. Every service that takes lines from a device — sales, stock documents, count
scans, and every later app — resolves them here, so a name means the same thing everywhere:

* a product is named by exactly one of an id, an SKU, or a scan (``ItemRef``); a ``Product``
  object is taken as it is (no query), after checking it is the organisation's;
* a scan is tried as an SKU or stored code (as sent, then without a symbology prefix), then as a
  package tag naming a received lot (a Metrc tag, a Cova PackageId), then as a GTIN of any
  length or a GS1 element string with (01) GTIN, (10) lot and (17) expiry;
* a lot is found by (product, lot code); a location must be an active one of the store.

The whole request costs a fixed number of queries (products, stored codes, package tags, lots,
locations: each at most once, and none for what is already resolved). Nothing raises on the
first bad line: every problem is collected in ``Problems`` with its line's field path
(``lines.3.sku``), a reason and a stable code, and the service raises them together with the
rules it checks itself.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q

from core.errors import ApplicationError, ValidationFailed
from inventory.catalog.barcodes import Scan, parse_scan, scan_text
from inventory.exceptions import UnknownBarcode
from inventory.models import Batch, Location, Organization, Product, ProductBarcode, Store, Unit


@dataclass(frozen=True)
class ItemRef:
    """A product as a device names it: exactly one of ``product`` (an id), ``sku``, ``barcode``
    (exactly what the scanner sent)."""

    product: int | None = None
    sku: str = ""
    barcode: str = ""

    @property
    def field(self) -> str:
        if self.product is not None:
            return "product"
        return "sku" if self.sku else "barcode"


#: What a line may carry for its product: a device's name for it, or the product itself.
Item = ItemRef | Product


@dataclass
class Named:
    """One line's product, resolved, with what its scan said about the lot."""

    product: Product | None
    lot_code: str = ""  # read from a GS1 (10) or named by a package tag
    expiry_date: datetime.date | None = None  # GS1 (17), or the package's lot
    no_expiry: bool = False  # GS1 (17) 500723 in Canadian cannabis
    matched_by: str = ""  # "object" | "id" | "sku" | "barcode" | "package" | "gtin" | "gs1"
    raw: str = ""  # the scan as sent
    unknown_scan: bool = False  # a readable scan no product matches
    scan: Scan | None = None
    package: Batch | None = None


@dataclass
class Problem:
    field: str
    code: str
    detail: str


@dataclass
class Problems:
    """Every problem of a request, each with the field path of its line; raised together."""

    items: list[Problem] = field(default_factory=list)

    def add(self, field: str, message: str, code: str) -> None:
        self.items.append(Problem(field, code, message))

    def __bool__(self) -> bool:
        return bool(self.items)

    def error(self, message: str = "Some lines cannot be used.") -> ValidationFailed:
        """One error naming every problem: ``fields`` maps each field to its reasons, ``code``
        is the problems' code when they share one (else ``invalid``), and ``problems`` lists
        each with its own code, so a POS can act line by line."""
        fields: dict[str, list[str]] = defaultdict(list)
        self.items.sort(key=_in_request_order)
        for problem in self.items:
            fields[problem.field].append(problem.detail)
        codes = {problem.code for problem in self.items}
        return ValidationFailed(
            message,
            code=codes.pop() if len(codes) == 1 else "invalid",
            fields=dict(fields),
            problems=[vars(problem) for problem in self.items],
        )

    def raise_if_any(self, message: str = "Some lines cannot be used.") -> None:
        if self.items:
            raise self.error(message)


def _in_request_order(problem: Problem) -> tuple:
    """``lines.2.sku`` before ``lines.10.quantity``: problems in the order of the request."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part) for part in problem.field.split(".")
    )


def _path(prefix: str, index: int, name: str) -> str:
    return f"{prefix}.{index}.{name}" if prefix else name


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
    *,
    org: Organization,
    ids: set[int],
    skus: set[str],
    scans: dict[str, Scan],
    texts: set[str] = frozenset(),
) -> ProductNames:
    """``scans`` maps each raw scanned text to its parsed ``Scan``; ``texts`` are more texts to
    try as SKUs or stored codes (scans that could not be parsed). Two queries at most."""
    texts = {s.text for s in scans.values()} | set(scans) | set(texts)
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


# --- products -----------------------------------------------------------------------------------


def items_resolve(
    *,
    org: Organization,
    items: Sequence[Item | None],
    problems: Problems,
    prefix: str = "lines",
    keep_unknown_scans: bool = False,
) -> list[Named]:
    """The product of every line (``None`` items stay unresolved without a problem).

    Problems: ``unknown_product`` (an id, SKU or readable scan the organisation has no product
    for, or another organisation's product), ``inactive_product``, ``invalid_barcode`` /
    ``invalid_check_digit`` (a scan that cannot be read and matches no stored code). With
    ``keep_unknown_scans`` a readable scan nothing matches is no problem: its line is marked
    ``unknown_scan`` for the caller to keep (a count keeps them for a manager to map).
    """
    refs = [item for item in items if isinstance(item, ItemRef)]
    scans: dict[int, Scan] = {}
    unreadable: dict[int, ApplicationError] = {}
    for index, item in enumerate(items):
        if isinstance(item, ItemRef) and item.barcode:
            try:
                scans[index] = parse_scan(item.barcode)
            except ApplicationError as exc:
                unreadable[index] = exc
    texts: dict[int, set[str]] = {
        index: {item.barcode.strip(), scan_text(item.barcode)}
        for index, item in enumerate(items)
        if isinstance(item, ItemRef) and item.barcode and item.barcode.strip()
    }
    names = (
        product_names_resolve(
            org=org,
            ids={r.product for r in refs if r.product is not None},
            skus={r.sku.strip() for r in refs if r.sku},
            scans={scan.raw.strip(): scan for scan in scans.values()},
            texts={text for group in texts.values() for text in group},
        )
        if refs
        else None
    )
    packages = _packages(org, {text for group in texts.values() for text in group})

    out: list[Named] = []
    for index, item in enumerate(items):
        if item is None:
            out.append(Named(None))
            continue
        if isinstance(item, Product):
            named = Named(item, matched_by="object")
            if item.org_id != org.pk:
                problems.add(_path(prefix, index, "product"), "Unknown product.", "unknown_product")
                named = Named(None)
        else:
            named = _resolve_ref(item, index, names, scans, unreadable, texts, packages)
            where = _path(prefix, index, item.field)
            if named.product is None and named.unknown_scan and keep_unknown_scans:
                pass
            elif named.product is None and index in unreadable:
                error = unreadable[index]
                problems.add(where, error.message, error.code)
            elif named.product is None and item.barcode:
                problems.add(where, "No product matches this scan.", "unknown_product")
            elif named.product is None:
                problems.add(where, "Unknown product.", "unknown_product")
        if named.product is not None and not named.product.is_active:
            problems.add(
                _path(prefix, index, getattr(item, "field", "product")),
                "The product is archived.",
                "inactive_product",
            )
        out.append(named)
    return out


def _packages(org: Organization, texts: set[str]) -> dict[str, Batch]:
    """Received lots whose code is one of ``texts``: a package tag names its lot (the latest
    receipt wins when two products share a supplier's lot number)."""
    if not texts:
        return {}
    found: dict[str, Batch] = {}
    for batch in (
        Batch.objects.filter(org=org, lot_code__in=texts, unallocated_store__isnull=True)
        .select_related("product")
        .order_by("received_at", "id")
    ):
        found[batch.lot_code] = batch
    return found


def _resolve_ref(item, index, names, scans, unreadable, texts, packages) -> Named:
    if item.product is not None:
        return Named(names.by_id.get(item.product), matched_by="id")
    if item.sku:
        return Named(names.by_sku.get(item.sku.strip()), matched_by="sku")
    raw = item.barcode.strip()
    scan = scans.get(index)
    for text in sorted(texts.get(index, ()), key=lambda t: t != raw):  # as sent, then stripped
        product = names.by_sku.get(text)
        if product is not None:
            return Named(product, matched_by="sku", raw=raw, scan=scan, **_scan_lot(scan))
        product = names.by_code.get(text)
        if product is not None:
            return Named(product, matched_by="barcode", raw=raw, scan=scan, **_scan_lot(scan))
    for text in sorted(texts.get(index, ()), key=lambda t: t != raw):
        package = packages.get(text)
        if package is not None:
            return Named(
                package.product,
                lot_code=package.lot_code,
                expiry_date=package.expiry_date,
                matched_by="package",
                raw=raw,
                package=package,
            )
    if scan is not None and scan.gtin14:
        product = names.by_gtin.get(scan.gtin14)
        if product is not None:
            return Named(
                product,
                matched_by="gs1" if scan.is_gs1 else "gtin",
                raw=raw,
                scan=scan,
                **_scan_lot(scan),
            )
    return Named(None, raw=raw, scan=scan, unknown_scan=index not in unreadable)


def _scan_lot(scan: Scan | None) -> dict:
    if scan is None:
        return {}
    return {"lot_code": scan.lot or "", "expiry_date": scan.expiry, "no_expiry": scan.no_expiry}


# --- lots ---------------------------------------------------------------------------------------


def lots_resolve(
    *,
    org: Organization,
    named: Sequence[Named],
    lot_codes: Sequence[str],
    problems: Problems,
    must_exist: Callable[[int], bool] = lambda index: True,
    batch_ids: Sequence[int | None] | None = None,
    prefix: str = "lines",
) -> list[Batch | None]:
    """The known batch of each line's lot: its ``batch_ids`` entry (an internal caller naming a
    batch, e.g. a lot without a code), else its own ``lot_code``, else the lot its scan named.
    ``unknown_lot`` for a batch that is not the line's product's, and for a lot code the lines
    ``must_exist`` says must be known. One query."""
    batch_ids = list(batch_ids) if batch_ids is not None else [None] * len(named)
    wanted = [
        (n.product, (code or "").strip() or n.lot_code)
        for n, code in zip(named, lot_codes, strict=True)
    ]
    pairs = {(product.pk, lot) for product, lot in wanted if product is not None and lot}
    ids = {batch_id for batch_id in batch_ids if batch_id is not None}
    batches: dict[tuple[int, str], Batch] = {}
    by_id: dict[int, Batch] = {}
    if pairs or ids:
        condition = Q(pk__in=ids)
        for product_id, lot in pairs:
            condition |= Q(product_id=product_id, lot_code=lot)
        for batch in Batch.objects.filter(org=org, unallocated_store__isnull=True).filter(
            condition
        ):
            by_id[batch.pk] = batch
            if batch.lot_code:
                batches[(batch.product_id, batch.lot_code)] = batch
    out: list[Batch | None] = []
    for index, ((product, lot), batch_id) in enumerate(zip(wanted, batch_ids, strict=True)):
        where = _path(prefix, index, "lot_code")
        if batch_id is not None:
            batch = by_id.get(batch_id)
            if product is not None and (batch is None or batch.product_id != product.pk):
                problems.add(where, "No such lot of this product.", "unknown_lot")
                batch = None
            out.append(batch)
            continue
        batch = batches.get((product.pk, lot)) if product is not None and lot else None
        if product is not None and lot and batch is None and must_exist(index):
            problems.add(where, "No such lot of this product.", "unknown_lot")
        out.append(batch)
    return out


# --- locations ----------------------------------------------------------------------------------


def locations_resolve(
    *,
    store: Store,
    named: dict[str, Location | int | None],
    problems: Problems,
    sellable: Iterable[str] = (),
) -> dict[str, Location]:
    """The locations a request names, by field path (``{"lines.0.location": 12}``): each must
    be an active location of ``store`` (``unknown_location``), and those whose path is in
    ``sellable`` a sellable one (``not_sellable``). One query for the ids; none for objects."""
    ids = {value for value in named.values() if isinstance(value, int)}
    found = (
        {loc.pk: loc for loc in Location.objects.filter(store=store, pk__in=ids, is_active=True)}
        if ids
        else {}
    )
    sellable = set(sellable)
    out: dict[str, Location] = {}
    for path, value in named.items():
        if value is None:
            continue
        location = found.get(value) if isinstance(value, int) else value
        if location is None or location.store_id != store.pk or not location.is_active:
            problems.add(path, "Not a location of this store.", "unknown_location")
        elif path in sellable and not location.sellable:
            problems.add(path, "Sales come only from sellable locations.", "not_sellable")
        else:
            out[path] = location
    return out


# --- quantities ---------------------------------------------------------------------------------


def check_quantities(
    *,
    named: Sequence[Named],
    quantities: Sequence[Decimal | None],
    problems: Problems,
    prefix: str = "lines",
    field_name: str = "quantity",
    minimum: Decimal | None = None,
    allow_zero: bool = False,
    fractional_code: str = "fractional_quantity",
) -> None:
    """Whole numbers for products counted in units (``fractional_quantity``, or the caller's
    ``fractional_code``); at least ``minimum`` and not zero unless ``allow_zero``
    (``invalid_quantity``)."""
    for index, (n, quantity) in enumerate(zip(named, quantities, strict=True)):
        if quantity is None:
            continue
        where = _path(prefix, index, field_name)
        if (quantity == 0 and not allow_zero) or (minimum is not None and quantity < minimum):
            problems.add(where, "Not a quantity this line can take.", "invalid_quantity")
        elif n.product is not None and n.product.unit == Unit.EACH and quantity % 1 != 0:
            problems.add(
                where,
                f"{n.product.sku} is counted in units: use a whole number.",
                fractional_code,
            )


# --- one scan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LookupResult:
    product: Product
    matched_by: str  # "sku" | "barcode" | "package" | "gtin" | "gs1"
    scan: Scan | None
    lot: str | None
    expiry: datetime.date | None
    no_expiry: bool


def product_lookup(*, org: Organization, barcode: str) -> LookupResult:
    """What a scanner sent, resolved like any line of a request (``items_resolve``): an SKU or
    stored code first (so a numeric SKU is never refused as a GTIN with a bad check digit), then
    a package tag naming a received lot, then a GTIN or GS1 element string. A scan that cannot
    be read raises its error (``invalid_check_digit``, ``invalid_barcode``); one nothing
    matches raises ``UnknownBarcode`` echoing it."""
    problems = Problems()
    (named,) = items_resolve(
        org=org,
        items=[ItemRef(barcode=barcode)],
        problems=problems,
        prefix="",
        keep_unknown_scans=True,
    )
    text = barcode.strip()
    if named.product is None and named.unknown_scan:
        raise UnknownBarcode(
            f"No product matches '{text}'.", fields={"barcode": ["Unknown barcode."]}, barcode=text
        )
    if named.product is None:  # unreadable: the scan itself is bad (archived products are found)
        problem = next(p for p in problems.items if p.code != "inactive_product")
        raise ApplicationError(
            problem.detail, code=problem.code, fields={"barcode": [problem.detail]}
        )
    return LookupResult(
        named.product,
        named.matched_by,
        named.scan,
        named.lot_code or None,
        named.expiry_date,
        named.no_expiry,
    )
