"""Writes for the catalog: products, their barcodes and the classification map.

Each records what it changed, and who changed it, in the audit trail inside its transaction (an
import records one event, not one per product).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from core.errors import ApplicationError, Conflict, ValidationFailed
from core.text import nfc
from inventory.audit.services import audit_diff, audit_record, audit_snapshot
from inventory.catalog.barcodes import looks_like_gtin, normalize_gtin
from inventory.locks import lock_products
from inventory.models import (
    AuditAction,
    ClassificationMapping,
    Organization,
    Product,
    ProductBarcode,
)

PRODUCT_FIELDS = (
    "name",
    "brand",
    "classification",
    "category",
    "subcategory",
    "unit",
    "tracks_expiry",
    "image_url",
    "reorder_point",
    "reorder_qty",
    "default_cost",
    "default_price",
    "is_active",
)


def _classify(org: Organization, data: dict, mappings: dict[str, ClassificationMapping]) -> None:
    """Fill category/subcategory from the classification map when the caller gave none."""
    mapping = mappings.get((data.get("classification") or "").strip().lower())
    if mapping and not data.get("category"):
        data["category"] = mapping.category
        if not data.get("subcategory"):
            data["subcategory"] = mapping.subcategory


def _classification_map(org: Organization) -> dict[str, ClassificationMapping]:
    return {m.classification.lower(): m for m in ClassificationMapping.objects.filter(org=org)}


def _barcode_rows(org: Organization, product: Product, barcodes: list[dict]):
    rows = []
    for item in barcodes:
        code = nfc(item["code"].strip())
        kind = item.get("kind") or ProductBarcode.Kind.GTIN
        gtin14 = None
        if kind == ProductBarcode.Kind.GTIN:
            if not looks_like_gtin(code):
                raise ValidationFailed(
                    "A GTIN has 8, 12, 13 or 14 digits.",
                    code="invalid_gtin",
                    fields={"barcodes": [f"{code}: a GTIN has 8, 12, 13 or 14 digits."]},
                )
            try:
                gtin14 = normalize_gtin(code)
            except ApplicationError as exc:
                exc.fields = {"barcodes": [f"{code}: {exc.message}"]}
                raise
        rows.append(ProductBarcode(org=org, product=product, code=code, kind=kind, gtin14=gtin14))
    return rows


def _barcode_conflict(exc: IntegrityError) -> Conflict:
    return Conflict(
        "A barcode is already used by another product.",
        code="duplicate_barcode",
        fields={"barcodes": ["Each barcode (and each GTIN in any length) identifies one product."]},
    )


def product_create(
    *, org: Organization, data: dict, barcodes: list[dict] | None = None, actor=None
) -> Product:
    data = dict(data)
    if "sku" in data:
        data["sku"] = nfc(data["sku"])  # imports and commands too: one form of each SKU
    _classify(org, data, _classification_map(org))
    try:
        with transaction.atomic():
            product = Product.objects.create(org=org, **data)
            rows = _barcode_rows(org, product, barcodes or [])
            ProductBarcode.objects.bulk_create(rows)
            after = audit_snapshot(product, data)
            if rows:
                after["barcodes"] = [row.code for row in rows]
            audit_record(
                org=org,
                action=AuditAction.PRODUCT_CREATED,
                obj=product,
                after=after,
                actor=actor,
            )
    except IntegrityError as exc:
        if Product.objects.filter(org=org, sku=data.get("sku")).exists():
            raise Conflict(
                "This SKU exists already.",
                code="duplicate_sku",
                fields={"sku": ["A product with this SKU exists."]},
            ) from exc
        raise _barcode_conflict(exc) from exc
    return product


def product_update(
    *,
    org: Organization,
    product: Product,
    data: dict,
    barcodes: list[dict] | None = None,
    actor=None,
) -> Product:
    """Change a product; a given ``barcodes`` list replaces the product's barcodes. Records
    ``product.archived`` when it turns ``is_active`` off (the API's DELETE), else
    ``product.updated``; nothing when nothing changed."""
    data = dict(data)
    if "sku" in data:
        data["sku"] = nfc(data["sku"])
    if "classification" in data and "category" not in data:
        _classify(org, data, _classification_map(org))
    try:
        with transaction.atomic():
            (product,) = lock_products(org=org, ids=[product.pk])
            old = audit_snapshot(product, data)
            for field, value in data.items():
                setattr(product, field, value)
            product.save()
            new = audit_snapshot(product, data)
            if barcodes is not None:
                old["barcodes"] = sorted(
                    ProductBarcode.objects.filter(product=product).values_list("code", flat=True)
                )
                ProductBarcode.objects.filter(product=product).delete()
                rows = _barcode_rows(org, product, barcodes)
                ProductBarcode.objects.bulk_create(rows)
                new["barcodes"] = sorted(row.code for row in rows)
            before, after = audit_diff(old, new)
            if after:
                audit_record(
                    org=org,
                    action=AuditAction.PRODUCT_ARCHIVED
                    if before.get("is_active") and after.get("is_active") is False
                    else AuditAction.PRODUCT_UPDATED,
                    obj=product,
                    before=before,
                    after=after,
                    actor=actor,
                )
    except IntegrityError as exc:
        if "sku" in data:
            raise Conflict(
                "This SKU exists already.",
                code="duplicate_sku",
                fields={"sku": ["A product with this SKU exists."]},
            ) from exc
        raise _barcode_conflict(exc) from exc
    return product


def classification_save(
    *, org: Organization, mapping: ClassificationMapping | None, data: dict, actor=None
) -> ClassificationMapping:
    """Create or change one classification -> category/subcategory mapping."""
    mapping = mapping or ClassificationMapping(org=org)
    fields = ["classification", "category", "subcategory"]
    old = audit_snapshot(mapping, fields) if mapping.pk else None
    for field, value in data.items():
        setattr(mapping, field, value)
    new = audit_snapshot(mapping, fields)
    before, after = audit_diff(old, new) if old is not None else ({}, new)
    try:
        with transaction.atomic():
            mapping.save()
            if after:
                audit_record(
                    org=org,
                    action=AuditAction.CLASSIFICATION_SAVED,
                    obj=mapping,
                    before=before,
                    after=after,
                    actor=actor,
                )
    except IntegrityError as exc:
        raise Conflict(
            "This classification is mapped already.",
            code="duplicate",
            fields={"classification": ["Already mapped; edit that mapping."]},
        ) from exc
    return mapping


def classification_delete(*, org: Organization, mapping: ClassificationMapping, actor=None) -> None:
    """Remove one classification mapping (products keep the category they were given)."""
    with transaction.atomic():
        before = audit_snapshot(mapping, ["classification", "category", "subcategory"])
        audit_record(
            org=org,
            action=AuditAction.CLASSIFICATION_DELETED,
            obj=mapping,
            before=before,
            actor=actor,
        )
        mapping.delete()


def product_upsert_many(*, org: Organization, rows: list[dict], actor=None) -> dict:
    """Create or update many products by SKU in one transaction, set-based.

    ``rows`` are validated product dicts (``sku`` required, ``barcodes`` optional: when given they
    replace that product's barcodes). All or nothing: a conflict rolls everything back and names
    the row. Returns ``{"created": [...], "updated": [...]}`` lists of SKUs. Records one
    ``products.bulk_upserted`` event with the counts and ids of both lists.
    """
    mappings = _classification_map(org)
    by_sku: dict[str, dict] = {}
    for index, row in enumerate(rows):
        sku = nfc(row["sku"])
        if sku in by_sku:
            raise ValidationFailed(
                "The same SKU appears twice.",
                code="duplicate_sku",
                fields={f"products.{index}.sku": ["Repeats an earlier row."]},
            )
        by_sku[sku] = row

    with transaction.atomic():
        existing = {p.sku: p for p in lock_products(org=org, skus=by_sku)}
        to_create, to_update, barcode_rows = [], [], []
        changed_fields: set[str] = set()
        for sku, row in by_sku.items():
            data = {k: v for k, v in row.items() if k in PRODUCT_FIELDS}
            _classify(org, data, mappings)
            product = existing.get(sku)
            if product is None:
                product = Product(org=org, sku=sku, **data)
                to_create.append(product)
            else:
                for field, value in data.items():
                    setattr(product, field, value)
                changed_fields.update(data)
                to_update.append(product)
        Product.objects.bulk_create(to_create)
        if to_update and changed_fields:
            Product.objects.bulk_update(to_update, sorted(changed_fields | {"updated_at"}))
        replaced = [
            p for p in (*to_create, *to_update) if by_sku[p.sku].get("barcodes") is not None
        ]
        if replaced:
            ProductBarcode.objects.filter(product__in=[p.pk for p in replaced]).delete()
            for product in replaced:
                barcode_rows += _barcode_rows(org, product, by_sku[product.sku]["barcodes"])
            codes = [b.code for b in barcode_rows]
            gtins = [b.gtin14 for b in barcode_rows if b.gtin14]
            if len(set(codes)) != len(codes) or len(set(gtins)) != len(gtins):
                raise ValidationFailed(
                    "A barcode appears on two rows.",
                    code="duplicate_barcode",
                    fields={"products": ["Each barcode may belong to one product only."]},
                )
            try:
                with transaction.atomic():
                    ProductBarcode.objects.bulk_create(barcode_rows)
            except IntegrityError as exc:
                raise _barcode_conflict(exc) from exc
        audit_record(
            org=org,
            action=AuditAction.PRODUCTS_BULK_UPSERTED,
            obj=Product,
            after={
                "created": len(to_create),
                "updated": len(to_update),
                "created_ids": [p.pk for p in to_create],
                "updated_ids": [p.pk for p in to_update],
            },
            actor=actor,
        )
    return {"created": [p.sku for p in to_create], "updated": [p.sku for p in to_update]}
