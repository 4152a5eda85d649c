"""Stock reads and reports over HTTP: the stock list, batches, summary, KPIs, ledger and COGS.

Thin views: parse the query string (bad values answer 400 ``invalid`` naming the field), narrow
the caller's stores (another org's or a forbidden ``store`` answers 404), call one selector in
``inventory.reports.selectors`` and format. Quantities and money leave as strings with four
decimals. Each view costs a fixed number of queries whatever the number of rows.
"""

from __future__ import annotations

import csv
import datetime
import io

from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from core import fields as f
from core.api import CsvPassthroughRenderer
from core.errors import ValidationFailed
from core.isotime import iso
from core.spreadsheet import safe_cell
from inventory.api.base import TenantAPIMixin
from inventory.api.reports import responses
from inventory.models import RefType, ShortfallOutcome, StockShortfall, Store
from inventory.reports import selectors as reads
from inventory.reports.reconciliation import stock_reconciliation_run
from inventory.stock.write_path import fmt
from inventory.tenancy.capabilities import Action

MAX_EXPIRING_WITHIN = 3650
MAX_COGS_DAYS = 366
CSV_CHUNK = 2000


# --- query-string shapes ------------------------------------------------------------------------


def _id(**kwargs):
    return serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1, **kwargs)


class StoreQuery(serializers.Serializer):
    store = _id()


class ExpiringQuery(StoreQuery):
    expiring_within = serializers.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_EXPIRING_WITHIN,
        default=reads.DEFAULT_EXPIRING_WITHIN,
    )


class CatalogQuery(serializers.Serializer):
    category = f.CharField(required=False, allow_blank=True, max_length=120)
    subcategory = f.CharField(required=False, allow_blank=True, max_length=120)
    search = f.CharField(required=False, allow_blank=True, max_length=200)


class StockListQuery(ExpiringQuery, CatalogQuery):
    product = _id()
    location = _id()
    status = serializers.ChoiceField(choices=reads.STATUSES, required=False)
    expiring = serializers.BooleanField(required=False, allow_null=True, default=None)


class SummaryQuery(StoreQuery, CatalogQuery):
    pass


class LedgerQuery(StoreQuery):
    product = _id()
    location = _id()
    batch = _id()
    user = _id()
    ref_type = serializers.ChoiceField(choices=RefType.choices, required=False)
    ref_id = serializers.IntegerField(required=False, min_value=-(2**63), max_value=2**63 - 1)
    source_ref = f.CharField(kind=f.IDENTIFIER, required=False, max_length=128)
    occurred_from = f.BusinessMomentField(required=False)
    occurred_to = f.BusinessMomentField(required=False)

    def validate(self, attrs):
        # Sales, refunds and stock documents number their ids independently: a ref_id alone
        # names several documents (and would miss the (org, ref_type, ref_id) index).
        if attrs.get("ref_id") is not None and not attrs.get("ref_type"):
            raise serializers.ValidationError(
                {"ref_id": ["Give ref_type with ref_id: each kind of document has its own ids."]}
            )
        return attrs


#: A period's store-local days become UTC instants, ``to`` + 1 day its end: a day at either end
#: of Python's calendar would overflow (a 500), so report days stay one day inside it.
FIRST_REPORT_DAY = datetime.date.min + datetime.timedelta(days=1)
LAST_REPORT_DAY = datetime.date.max - datetime.timedelta(days=1)


def _report_day() -> serializers.DateField:
    return serializers.DateField(
        validators=[
            MinValueValidator(
                FIRST_REPORT_DAY, message=f"Must be on or after {FIRST_REPORT_DAY.isoformat()}."
            ),
            MaxValueValidator(
                LAST_REPORT_DAY, message=f"Must be on or before {LAST_REPORT_DAY.isoformat()}."
            ),
        ]
    )


class CogsQuery(StoreQuery):
    def get_fields(self):
        # "from" is a Python keyword: add the fields under their query-string names
        fields = super().get_fields()
        fields["from"] = _report_day()
        fields["to"] = _report_day()
        return fields

    def validate(self, attrs):
        start, end = attrs["from"], attrs["to"]
        if start > end:
            raise serializers.ValidationError({"to": ["Must not be before 'from'."]})
        if (end - start).days + 1 > MAX_COGS_DAYS:
            raise serializers.ValidationError(
                {"to": [f"The period may span at most {MAX_COGS_DAYS} days."]}
            )
        return attrs


# --- shared view plumbing -----------------------------------------------------------------------


class ReadApi(TenantAPIMixin, GenericAPIView):
    """A stock read: viewer and above, limited to the caller's stores."""

    read_capability = Action.STOCK_VIEW
    filter_backends: list = []
    query_class: type[serializers.Serializer] = StoreQuery

    def params(self) -> dict:
        # a plain dict, not the QueryDict: a missing boolean must stay "not given", not False
        query = self.query_class(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        return query.validated_data

    def scope(self, params: dict) -> reads.StockScope:
        return reads.stock_scope(
            org=self.org,
            store_ids=self.tenant.store_ids,
            store_id=params.get("store"),
            hide_blind_counts=not self.tenant.can(Action.COUNT_EXPECTED_VIEW),
        )


def _q(value) -> str | None:
    return None if value is None else fmt(value)


def _iso(value) -> str | None:
    return iso(value)


# --- GET /stock/ --------------------------------------------------------------------------------


def stock_row(row: dict) -> dict:
    return {
        "product": row["product_id"],
        "sku": row["sku"],
        "name": row["name"],
        "brand": row["brand"],
        "category": row["category"],
        "subcategory": row["subcategory"],
        "unit": row["unit"],
        "store": row["store_id"],
        "store_code": row["store_code"],
        "on_hand": fmt(row["on_hand"]),
        "sellable": fmt(row["sellable"]),
        "expired": fmt(row["expired"]),
        "value": fmt(row["value"]),
        "reorder_point": _q(row["reorder_point"]),
        "reorder_qty": _q(row["reorder_qty"]),
        "status": row["status"],
        "expiring_soon": fmt(row["expiring_soon"]),
    }


class StockListApi(ReadApi):
    """Stock per product and store: on hand, sellable, expired, value at cost, status against
    the reorder point, quantity expiring within ``expiring_within`` days."""

    query_class = StockListQuery

    @extend_schema(
        parameters=[StockListQuery], responses={200: responses.StockRowSerializer(many=True)}
    )
    def get(self, request):
        params = self.params()
        scope = self.scope(params)
        location = params.get("location")
        if location is not None:
            reads.location_get(scope=scope, location_id=location)
        rows = reads.stock_list(
            scope=scope,
            location_id=location,
            product_id=params.get("product"),
            category=params.get("category"),
            subcategory=params.get("subcategory"),
            status=params.get("status"),
            expiring=params.get("expiring"),
            search=params.get("search"),
            expiring_within=params["expiring_within"],
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([stock_row(row) for row in page])


# --- GET /stock/{product}/batches ---------------------------------------------------------------


def batch_row(entry: dict) -> dict:
    batch = entry["batch"]
    return {
        "batch": batch.pk,
        "lot_code": batch.lot_code,
        "expiry_date": _iso(batch.expiry_date),
        "received_at": _iso(batch.received_at),
        "unit_cost": fmt(batch.unit_cost),
        "unallocated": batch.is_unallocated,
        "total": fmt(entry["total"]),
        "expiry_status": entry["expiry_status"],
        "locations": [{**loc, "quantity": fmt(loc["quantity"])} for loc in entry["locations"]],
    }


class StockBatchesApi(ReadApi):
    """A product's lots holding stock in the caller's stores, quantity per location, FEFO order,
    with expiry status ``expired`` / ``expiring`` / ``ok`` / ``none`` (no expiry date)."""

    query_class = ExpiringQuery
    pagination_class = None

    @extend_schema(parameters=[ExpiringQuery], responses={200: responses.StockBatchesSerializer})
    def get(self, request, product_id: str):
        params = self.params()
        scope = self.scope(params)
        product = reads.product_get(scope=scope, product_id=int(product_id))
        batches = reads.stock_batches(
            scope=scope, product=product, expiring_within=params["expiring_within"]
        )
        return Response(
            {
                "product": product.pk,
                "sku": product.sku,
                "name": product.name,
                "unit": product.unit,
                "store": params.get("store"),
                "expiring_within": params["expiring_within"],
                "results": [batch_row(entry) for entry in batches],
            }
        )


# --- GET /stock/summary -------------------------------------------------------------------------


def summary_row(entry: dict) -> dict:
    product = entry["product"]
    return {
        "product": product.pk,
        "sku": product.sku,
        "name": product.name,
        "brand": product.brand,
        "category": product.category,
        "subcategory": product.subcategory,
        "unit": product.unit,
        "on_hand": fmt(entry["on_hand"]),
        "value": fmt(entry["value"]),
        "stores": [
            {
                "store": r["store_id"],
                "code": r["code"],
                "on_hand": fmt(r["on_hand"]),
                "sellable": fmt(r["sellable"]),
                "value": fmt(r["value"]),
            }
            for r in entry["stores"]
        ],
    }


class StockSummaryApi(ReadApi):
    """Per product across the caller's stores, with a per-store breakdown; paged by product."""

    query_class = SummaryQuery

    @extend_schema(
        parameters=[SummaryQuery], responses={200: responses.SummaryRowSerializer(many=True)}
    )
    def get(self, request):
        params = self.params()
        scope = self.scope(params)
        products = reads.stock_summary_products(
            scope=scope,
            category=params.get("category"),
            subcategory=params.get("subcategory"),
            search=params.get("search"),
        )
        page = self.paginate_queryset(products)
        entries = reads.stock_summary(scope=scope, products=list(page))
        return self.get_paginated_response([summary_row(entry) for entry in entries])


# --- GET /stock/kpis ----------------------------------------------------------------------------


class StockKpisApi(ReadApi):
    """Headline numbers: products in stock, units per unit of measure, value, low-stock
    (product, store) pairs, lots expiring soon, expired stock."""

    query_class = ExpiringQuery
    pagination_class = None

    @extend_schema(parameters=[ExpiringQuery], responses={200: responses.StockKpisSerializer})
    def get(self, request):
        params = self.params()
        kpis = reads.stock_kpis(scope=self.scope(params), expiring_within=params["expiring_within"])
        return Response(
            {
                "store": params.get("store"),
                "expiring_within": params["expiring_within"],
                "skus": kpis["skus"],
                "value": fmt(kpis["value"]),
                "units": {unit: fmt(n) for unit, n in kpis["units"].items()},
                "low_stock_count": kpis["low_stock_count"],
                "expiring_soon_count": kpis["expiring_soon_count"],
                "expired_units": {unit: fmt(n) for unit, n in kpis["expired_units"].items()},
            }
        )


# --- GET /ledger/ -------------------------------------------------------------------------------


class LedgerPagination(CursorPagination):
    """Keyset pagination on the primary key: page N costs what page 1 costs.

    A cursor is opaque text the client sends back; one that is not ours (bad base64, an offset
    or position that is not a number) answers 400 ``invalid`` naming ``cursor`` — DRF would
    answer 404 for some and pass a non-numeric position to the id filter (a 500) for others.
    """

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
            if cursor is not None and cursor.position is not None:
                position = int(cursor.position)  # "-id": the position is a ledger id
                if not 0 < position < 2**63:
                    raise ValueError(position)
        except (NotFound, ValueError):
            raise ValidationFailed(
                "Invalid cursor: use the next or previous link of a page.",
                fields={"cursor": ["Not a cursor of this list."]},
            ) from None
        return cursor


def _ledger_value(column: str, value):
    if value is None:
        return None
    if column in ("qty_delta", "unit_cost"):
        return fmt(value)
    if isinstance(value, datetime.datetime):
        return iso(value)
    return value


def ledger_row(row: dict) -> dict:
    return {column: _ledger_value(column, row[key]) for column, key in reads.LEDGER_COLUMNS}


def ledger_csv_chunks(rows, rows_per_chunk: int = CSV_CHUNK):
    """The CSV text of ``rows``, a header line first, yielded ``rows_per_chunk`` rows at a time
    (one chunk per database fetch: few, large writes rather than one per line)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([column for column, _ in reads.LEDGER_COLUMNS])
    keys = [key for _, key in reads.LEDGER_COLUMNS]
    money = {
        i
        for i, (column, _) in enumerate(reads.LEDGER_COLUMNS)
        if column in ("qty_delta", "unit_cost")
    }
    for n, row in enumerate(rows.iterator(chunk_size=CSV_CHUNK), 1):
        values = [row[key] for key in keys]
        for i, value in enumerate(values):
            if value is None:
                values[i] = ""
            elif i in money:
                values[i] = fmt(value)
            elif isinstance(value, datetime.datetime):
                values[i] = iso(value)
            else:
                values[i] = safe_cell(value)  # a reason or SKU typed like a formula
        writer.writerow(values)
        if n % rows_per_chunk == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


class LedgerApi(ReadApi):
    """The append-only ledger, newest first. Exact-match filters only (each meets an index) and
    cursor pagination; ``?format=csv`` or ``Accept: text/csv`` streams every matching row."""

    query_class = LedgerQuery
    pagination_class = LedgerPagination
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CsvPassthroughRenderer]

    @extend_schema(
        parameters=[
            LedgerQuery,
            OpenApiParameter("cursor", str, description="from next/previous links"),
            OpenApiParameter("page_size", int, description="up to 1000"),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ],
        responses={
            (200, "application/json"): responses.LedgerRowSerializer(many=True),
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="Every matching row: a header line, then the rows."
            ),
        },
    )
    def get(self, request):
        params = self.params()
        scope = self.scope(params)
        rows = reads.ledger_list(
            scope=scope, **{name: params.get(name) for name in reads.LEDGER_FILTERS}
        )
        if request.accepted_renderer.format == CsvPassthroughRenderer.format:
            response = StreamingHttpResponse(
                ledger_csv_chunks(rows), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = 'attachment; filename="ledger.csv"'
            return response
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([ledger_row(row) for row in page])


# --- GET /reports/cogs --------------------------------------------------------------------------


class CogsReportApi(ReadApi):
    """Cost of goods sold for store-local days ``from``..``to`` (inclusive), by product and by
    lot, from the unit costs the ledger recorded at the time of sale."""

    query_class = CogsQuery
    pagination_class = None

    @extend_schema(
        parameters=[
            StoreQuery,
            OpenApiParameter("from", OpenApiTypes.DATE, required=True),
            OpenApiParameter("to", OpenApiTypes.DATE, required=True, description="inclusive"),
        ],
        responses={200: responses.CogsReportSerializer},
    )
    def get(self, request):
        params = self.params()
        report = reads.cogs_report(
            scope=self.scope(params), date_from=params["from"], date_to=params["to"]
        )
        return Response(
            {
                "store": params.get("store"),
                "from": params["from"].isoformat(),
                "to": params["to"].isoformat(),
                "totals": {"quantity": fmt(report["quantity"]), "cost": fmt(report["cost"])},
                "by_product": [
                    {
                        "product": r["product_id"],
                        "sku": r["sku"],
                        "name": r["name"],
                        "quantity": fmt(r["quantity"]),
                        "cost": fmt(r["cost"]),
                    }
                    for r in report["by_product"]
                ],
                "by_lot": [
                    {
                        "product": r["product_id"],
                        "sku": r["sku"],
                        "batch": r["batch_id"],
                        "lot_code": r["lot_code"],
                        "expiry_date": _iso(r["expiry_date"]),
                        "quantity": fmt(r["quantity"]),
                        "cost": fmt(r["cost"]),
                    }
                    for r in report["by_lot"]
                ],
            }
        )


class ShortfallQuery(StoreQuery):
    product = _id()
    outcome = serializers.ChoiceField(choices=ShortfallOutcome.choices, required=False)
    ref_type = serializers.ChoiceField(choices=RefType.choices, required=False)
    occurred_from = f.BusinessMomentField(required=False)
    occurred_to = f.BusinessMomentField(required=False)


def shortfall_row(row: StockShortfall) -> dict:
    return {
        "id": row.pk,
        "store": row.store_id,
        "store_code": row.store.code,
        "location": row.location_id,
        "product": row.product_id,
        "sku": row.product.sku,
        "requested": fmt(row.requested),
        "available": fmt(row.available),
        "missing": fmt(row.requested - row.available),
        "outcome": row.outcome,
        "ref_type": row.ref_type,
        "ref_id": row.ref_id,
        "client_ref": row.client_ref,
        "user": row.user.email if row.user else None,
        "occurred_at": _iso(row.occurred_at),
        "created_at": _iso(row.created_at),
    }


class ShortfallListApi(ReadApi):
    """Refused, oversold and partly posted stock moves of the caller's stores, newest first."""

    read_capability = Action.SHORTFALL_VIEW
    query_class = ShortfallQuery

    @extend_schema(
        parameters=[ShortfallQuery], responses={200: responses.ShortfallSerializer(many=True)}
    )
    def get(self, request):
        params = self.params()
        rows = reads.shortfall_list(
            scope=self.scope(params),
            product_id=params.get("product"),
            outcome=params.get("outcome"),
            ref_type=params.get("ref_type"),
            occurred_from=params.get("occurred_from"),
            occurred_to=params.get("occurred_to"),
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([shortfall_row(row) for row in page])


class ReconciliationQuery(serializers.Serializer):
    """The query parameters the view reads (for the OpenAPI description and the base's
    unknown-parameter check)."""

    store = serializers.IntegerField(
        required=False, min_value=1, help_text="store id (default: every store you may see)"
    )


class StockReconciliationApi(TenantAPIMixin, APIView):
    """Ledger vs quants for the organisation or one store; 200 even when not ok (see ``ok``).

    A member limited to some stores sees only those stores' rows.
    """

    read_capability = Action.STOCK_VIEW
    query_class = ReconciliationQuery

    @extend_schema(
        parameters=[ReconciliationQuery], responses={200: responses.ReconciliationSerializer}
    )
    def get(self, request):
        store = None
        raw = request.query_params.get("store")
        if raw not in (None, ""):
            if not raw.isdigit():
                raise ValidationError({"store": ["A store id is a whole number."]})
            # Store.objects is scoped to the caller's organisation: another org's id is a 404
            store = Store.objects.filter(pk=int(raw)).first()
            if store is None:
                raise NotFound()
            self.check_store(store)
        report = stock_reconciliation_run(
            org=self.org,
            store=store,
            store_ids=self.tenant.store_ids if store is None else None,
        )
        return Response(report.as_dict())
