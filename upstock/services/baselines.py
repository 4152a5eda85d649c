"""Par levels: what a sales floor holds when it is "well stocked".

A baseline is a product's par at one floor, or the default par of a category (optionally one
subcategory) at that floor. A product's par is its own baseline, else its (category,
subcategory) default, else its category-only default (``runs`` resolves it for a whole run at
once). Managers edit them one at a time or as a CSV file (``baselines_import``: every bad row
reported by its line, the good ones applied, or nothing with ``dry_run``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import ApplicationError, ValidationFailed
from inventory.audit.services import audit_diff, audit_record, audit_snapshot
from inventory.catalog.resolver import ItemRef, Problems, items_resolve
from inventory.models import AuditAction, Location, LocationKind, Product, Store, Unit
from upstock.exceptions import NotASalesFloor
from upstock.models import Baseline

AUDITED = ("location", "product", "category", "subcategory", "par_qty", "min_pull")
#: The largest par a floor may ask for (a typing slip of a few zeros is refused, not pulled).
MAX_PAR = Decimal("1000000")


class DuplicateBaseline(ApplicationError):
    code = "duplicate"
    status = 409
    message = "This floor already has a par level for that product or category."


def check_floor(*, org, store: Store, location: Location) -> None:
    """An active sales floor of the store: what a par level belongs to and a run is made for."""
    if store.org_id != org.pk:
        raise ValidationFailed("Not a store of this organisation.", code="unknown_store")
    if (
        location.org_id != org.pk
        or location.store_id != store.pk
        or not location.is_active
        or location.kind != LocationKind.SALES_FLOOR
    ):
        raise NotASalesFloor(fields={"location": ["An active sales floor of the store."]})


def _quantity_problem(value, *, product: Product | None, what: str) -> str | None:
    """Why ``value`` is not a par or minimum pull, or None."""
    if not isinstance(value, Decimal) or not value.is_finite():
        return f"{what}: a number."
    if value < 0:
        return f"{what}: not below zero."
    if value > MAX_PAR:
        return f"{what}: at most {MAX_PAR}."
    if product is not None and product.unit == Unit.EACH and value % 1 != 0:
        return f"{product.sku} is counted in units: a whole number."
    return None


def _check_values(
    *, org, product: Product | None, category: str, subcategory: str, par_qty, min_pull
) -> dict[str, list[str]]:
    """Every problem of one baseline's values, by field."""
    problems: dict[str, list[str]] = {}
    if product is not None:
        if product.org_id != org.pk:
            problems["product"] = ["Unknown product."]
        elif not product.is_active:
            problems["product"] = ["The product is archived."]
        if category or subcategory:
            problems["category"] = ["Either a product or a category, not both."]
    elif not category:
        problems["category"] = ["A product or a category."]
    if len(category) > 120 or len(subcategory) > 120:
        problems["category"] = ["At most 120 characters."]
    if par_qty is None:
        problems["par_qty"] = ["Required."]
    elif wrong := _quantity_problem(par_qty, product=product, what="par_qty"):
        problems["par_qty"] = [wrong]
    if min_pull is not None and (
        wrong := _quantity_problem(min_pull, product=product, what="min_pull")
    ):
        problems["min_pull"] = [wrong]
    return problems


def baseline_upsert(
    *,
    org,
    store: Store,
    location: Location,
    product: Product | None = None,
    category: str = "",
    subcategory: str = "",
    par_qty: Decimal,
    min_pull: Decimal | None = None,
    actor,
) -> Baseline:
    """Set the par of ``product`` (or of ``category``/``subcategory`` when no product) at the
    floor ``location``: creates the baseline or updates the one that exists. 400 ``invalid``
    naming each bad field, ``not_a_sales_floor`` for another kind of room. Two managers saving
    one par at once: the unique constraint queues the second, which then updates."""
    category, subcategory = (category or "").strip(), (subcategory or "").strip()
    check_floor(org=org, store=store, location=location)
    problems = _check_values(
        org=org,
        product=product,
        category=category,
        subcategory=subcategory,
        par_qty=par_qty,
        min_pull=min_pull,
    )
    if problems:
        raise ValidationFailed("This par level cannot be saved.", fields=problems)
    key = (
        {"product": product}
        if product is not None
        else {"product__isnull": True, "category": category, "subcategory": subcategory}
    )
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _upsert(org, store, location, key, par_qty, min_pull, actor)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _upsert(org, store, location, key, par_qty, min_pull, actor) -> Baseline:
    existing = (
        Baseline.objects.filter(org=org, location=location, **key).select_for_update().first()
    )
    if existing is None:
        baseline = Baseline.objects.create(
            org=org,
            store=store,
            location=location,
            product=key.get("product"),
            category=key.get("category", ""),
            subcategory=key.get("subcategory", ""),
            par_qty=par_qty,
            min_pull=min_pull,
            updated_by=_person(actor),
        )
        audit_record(
            org=org,
            action=AuditAction.UPSTOCK_BASELINE_SAVED,
            obj=baseline,
            after=audit_diff({}, audit_snapshot(baseline, AUDITED))[1],
            store=store,
            actor=actor,
        )
        return baseline
    return _apply_changes(org, existing, {"par_qty": par_qty, "min_pull": min_pull}, actor)


def _apply_changes(org, baseline: Baseline, values: dict, actor) -> Baseline:
    before = audit_snapshot(baseline, AUDITED)
    for name, value in values.items():
        setattr(baseline, name, value)
    before_values, after_values = audit_diff(before, audit_snapshot(baseline, AUDITED))
    if not after_values:
        return baseline  # nothing changed: nothing written, nothing audited
    baseline.updated_by = _person(actor)
    baseline.updated_at = timezone.now()
    baseline.save()
    audit_record(
        org=org,
        action=AuditAction.UPSTOCK_BASELINE_SAVED,
        obj=baseline,
        before=before_values,
        after=after_values,
        store=baseline.store_id,
        actor=actor,
    )
    return baseline


def baseline_update(*, org, baseline: Baseline, changes: dict, actor) -> Baseline:
    """Change a par level: ``changes`` may name ``par_qty``, ``min_pull`` (None clears it),
    ``location`` (another floor of the store), ``product``, ``category``, ``subcategory``.
    Checked as a new one would be; 409 ``duplicate`` when the floor already has a par for
    the new product or category."""
    allowed = {"par_qty", "min_pull", "location", "product", "category", "subcategory"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationFailed(
            "These fields cannot be changed.", fields={name: ["Not a field."] for name in unknown}
        )
    values = {
        "location": baseline.location,
        "product": baseline.product,
        "category": baseline.category,
        "subcategory": baseline.subcategory,
        "par_qty": baseline.par_qty,
        "min_pull": baseline.min_pull,
        **changes,
    }
    # Naming a product turns a category default into the product's own par, and naming a
    # category turns a product's par into a category default.
    if changes.get("product") is not None and not {"category", "subcategory"} & set(changes):
        values["category"], values["subcategory"] = "", ""
    if changes.get("category") and "product" not in changes:
        values["product"] = None
    values["category"] = (values["category"] or "").strip()
    values["subcategory"] = (values["subcategory"] or "").strip()
    check_floor(org=org, store=baseline.store, location=values["location"])
    problems = _check_values(
        org=org,
        product=values["product"],
        category=values["category"],
        subcategory=values["subcategory"],
        par_qty=values["par_qty"],
        min_pull=values["min_pull"],
    )
    if problems:
        raise ValidationFailed("This par level cannot be saved.", fields=problems)
    try:
        with transaction.atomic():
            locked = Baseline.objects.select_for_update().get(org=org, pk=baseline.pk)
            return _apply_changes(org, locked, values, actor)
    except IntegrityError as exc:
        raise DuplicateBaseline(fields={"product": [DuplicateBaseline.message]}) from exc


def baseline_delete(*, org, baseline: Baseline, actor) -> None:
    """Remove a par level (the product falls back to its category default, if any)."""
    with transaction.atomic():
        before = audit_diff(audit_snapshot(baseline, AUDITED), {})[0]
        pk, store_id = baseline.pk, baseline.store_id
        Baseline.objects.filter(org=org, pk=pk).delete()
        audit_record(
            org=org,
            action=AuditAction.UPSTOCK_BASELINE_DELETED,
            obj=(Baseline, pk),
            before=before,
            store=store_id,
            actor=actor,
        )


# --- CSV import -----------------------------------------------------------------------------


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict] = field(default_factory=list)
    dry_run: bool = False


def _decimal(text) -> Decimal | None:
    """A cell as a number: None for an empty cell; raises ``InvalidOperation`` for text."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, Decimal):
        return text
    value = Decimal(str(text).strip())
    if not value.is_finite():
        raise InvalidOperation
    return value


def baselines_import(
    *, org, store: Store, location: Location, rows: list[dict], dry_run: bool, actor
) -> ImportResult:
    """Par levels of one floor from a parsed CSV file.

    Each row (keys: the lower-cased header names, and ``line``, its 1-based line in the file)
    names a product by ``sku``, ``barcode`` or ``product`` (an id), or else a ``category``
    (and optionally ``subcategory``) default; ``par_qty`` is required, ``min_pull`` optional
    (an empty cell clears it). A product row's category columns are ignored (an export shows
    them for reading). Every bad row is reported (``errors``: line, field, code, detail), the
    good ones are applied (created, updated, or unchanged when the same), or none with
    ``dry_run``; a key named twice is an error on its later line. Products resolve in one
    query for the whole file, and the floor's baselines in another; one audit event."""
    check_floor(org=org, store=store, location=location)
    result = ImportResult(dry_run=dry_run)

    def error(row: dict, name: str, code: str, detail: str) -> None:
        result.errors.append(
            {"line": row.get("line"), "field": name, "code": code, "detail": detail}
        )

    refs: list[ItemRef | None] = []
    for row in rows:
        sku = str(row.get("sku") or "").strip()
        barcode = str(row.get("barcode") or "").strip()
        product = str(row.get("product") or "").strip()
        if product and not product.isdigit():
            sku = sku or product  # a "product" column holding SKUs
            product = ""
        if product:
            refs.append(ItemRef(product=int(product)))
        elif sku:
            refs.append(ItemRef(sku=sku))
        elif barcode:
            refs.append(ItemRef(barcode=barcode))
        else:
            refs.append(None)
    problems = Problems()
    named = items_resolve(org=org, items=refs, problems=problems, prefix="rows")
    bad_names: dict[int, tuple[str, str, str]] = {}
    for problem in problems.items:
        _, index, name = problem.field.split(".", 2)
        bad_names.setdefault(int(index), (name, problem.code, problem.detail))

    wanted: dict[tuple, tuple[dict, Product | None, str, str, Decimal, Decimal | None]] = {}
    for index, row in enumerate(rows):
        if index in bad_names:
            name, code, detail = bad_names[index]
            error(row, name, code, detail)
            continue
        product = named[index].product
        category = "" if product else str(row.get("category") or "").strip()
        subcategory = "" if product else str(row.get("subcategory") or "").strip()
        if product is None and not category:
            error(row, "sku", "invalid", "A product (sku, barcode or product) or a category.")
            continue
        values = {}
        failed = False
        for name in ("par_qty", "min_pull"):
            try:
                values[name] = _decimal(row.get(name))
            except (InvalidOperation, ValueError):
                error(row, name, "invalid", f"{name}: a number.")
                failed = True
        if failed:
            continue
        checked = _check_values(
            org=org,
            product=product,
            category=category,
            subcategory=subcategory,
            par_qty=values["par_qty"],
            min_pull=values["min_pull"],
        )
        if checked:
            name, details = next(iter(checked.items()))
            code = "fractional_quantity" if "whole number" in details[0] else "invalid"
            error(row, name, code, details[0])
            continue
        key = ("product", product.pk) if product else ("category", category, subcategory)
        if key in wanted:
            first = wanted[key][0].get("line")
            error(row, "sku" if product else "category", "duplicate", f"Also on line {first}.")
            continue
        wanted[key] = (row, product, category, subcategory, values["par_qty"], values["min_pull"])

    with transaction.atomic():
        existing: dict[tuple, Baseline] = {}
        for baseline in Baseline.objects.filter(org=org, location=location).select_for_update():
            key = (
                ("product", baseline.product_id)
                if baseline.product_id
                else ("category", baseline.category, baseline.subcategory)
            )
            existing[key] = baseline
        to_create: list[Baseline] = []
        to_update: list[Baseline] = []
        now, person = timezone.now(), _person(actor)
        for key, (_row, product, category, subcategory, par_qty, min_pull) in wanted.items():
            baseline = existing.get(key)
            if baseline is None:
                to_create.append(
                    Baseline(
                        org=org,
                        store=store,
                        location=location,
                        product=product,
                        category=category,
                        subcategory=subcategory,
                        par_qty=par_qty,
                        min_pull=min_pull,
                        updated_by=person,
                        updated_at=now,
                    )
                )
            elif baseline.par_qty != par_qty or baseline.min_pull != min_pull:
                baseline.par_qty, baseline.min_pull = par_qty, min_pull
                baseline.updated_by, baseline.updated_at = person, now
                to_update.append(baseline)
            else:
                result.unchanged += 1
        result.created, result.updated = len(to_create), len(to_update)
        if dry_run or not (to_create or to_update):
            return result
        Baseline.objects.bulk_create(to_create)
        Baseline.objects.bulk_update(
            to_update, ["par_qty", "min_pull", "updated_by", "updated_at"], batch_size=1000
        )
        audit_record(
            org=org,
            action=AuditAction.UPSTOCK_BASELINES_IMPORTED,
            obj=Baseline,
            after={
                "location": location.pk,
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "rejected": len(result.errors),
            },
            store=store,
            actor=actor,
        )
    return result


def _person(actor):
    return (
        actor if getattr(actor, "pk", None) and getattr(actor, "is_authenticated", True) else None
    )
