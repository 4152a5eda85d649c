"""Upstock over HTTP, under /api/v1/upstock/: par levels (one at a time, in bulk, as CSV) and
the nightly pull lists (runs, their lines, scans).

Thin: parse (a bad value answers 400 naming the field), authorise by the capability matrix,
resolve what the request names inside the caller's organisation and stores (another's id is a
404, or a 400 naming the field for ids in a body), call one service or selector, serialise.
Par levels are edited by managers (``par_level.edit``); runs are worked by operators
(``upstock.work``); both are read by whoever may see the store (``stock.view``). A
store-limited membership sees and touches its stores only.
"""

from __future__ import annotations

import datetime
import zoneinfo
from decimal import Decimal

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiRequest, OpenApiResponse, extend_schema
from rest_framework import parsers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.api import CsvPassthroughRenderer
from core.errors import NotFound, ValidationFailed
from core.fields import JsonNumber
from inventory.api.base import TenantAPIMixin, created_or_replayed, item_ref
from inventory.catalog.resolver import Problems, items_resolve
from inventory.models import Location, Store
from inventory.tenancy.capabilities import Action
from upstock import selectors
from upstock.api import csv_io
from upstock.api import responses as r
from upstock.api import serializers as s
from upstock.models import Baseline, UpstockLine, UpstockPull, UpstockRun
from upstock.services import baselines as baseline_services
from upstock.services import lines as line_services
from upstock.services import runs as run_services

MAX_ID = 2**63 - 1


def _pk(value) -> int:
    """A path's id (digits by the route): one past bigint is as missing as any other."""
    pk = int(value)
    if pk > MAX_ID:
        raise NotFound()
    return pk


#: A pull (done, or a scan) posts a move: 201 when it did, 200 when the client_ref was pulled
#: before and nothing moved.
PULL_ANSWERS = {
    201: OpenApiResponse(r.UpstockLineSerializer, description="Pulled: the move is posted."),
    200: OpenApiResponse(
        r.UpstockLineSerializer,
        description="A replay of the client_ref: nothing moved; the line as it is now.",
    ),
}


class UpstockAPIMixin(TenantAPIMixin):
    """What every upstock view shares: the caller's stores, and the store and floor a request
    names."""

    filter_backends: list = []
    lookup_value_regex = r"[0-9]+"

    def visible(self, queryset, store_field: str = "store_id"):
        if self.tenant.store_ids is not None:
            queryset = queryset.filter(**{f"{store_field}__in": self.tenant.store_ids})
        return queryset

    def query(self, serializer_class):
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data

    def filter_store(self, store_id: int | None) -> Store | None:
        """A store named by a filter: another organisation's, or one the membership may not
        use, answers 404 like a missing one."""
        if store_id is None:
            return None
        store = Store.objects.filter(pk=store_id).first()
        if store is None or not self.tenant.may_use_store(store.pk):
            raise NotFound()
        return store

    def filter_location(self, location_id: int | None) -> Location | None:
        if location_id is None:
            return None
        location = Location.objects.filter(pk=location_id).first()
        if location is None or not self.tenant.may_use_store(location.store_id):
            raise NotFound()
        return location

    @staticmethod
    def body_location(store: Store, location_id: int, field: str = "location") -> Location:
        """The floor a body names: a location of ``store`` (else 400 ``unknown_location``).
        Whether it is an active sales floor is the services' rule (``not_a_sales_floor``)."""
        location = Location.objects.filter(store=store, pk=location_id).first()
        if location is None:
            raise ValidationFailed(
                "Not a location of this store.",
                fields={field: ["Not a location of this store."]},
                code="unknown_location",
            )
        return location


# --- par levels ---------------------------------------------------------------------------------


class CsvBodyParser(parsers.BaseParser):
    """A CSV file sent as the request body (``Content-Type: text/csv``): handed to the view as
    bytes, decoded by ``csv_io`` (UTF-8, a byte-order mark or not)."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read() if stream is not None else b""


class BaselineViewSet(UpstockAPIMixin, viewsets.GenericViewSet):
    """Par levels of sales floors: a product's own, or a category (and subcategory) default."""

    queryset = Baseline.objects.none()
    read_capability = Action.STOCK_VIEW
    write_capability = Action.PAR_LEVEL_EDIT
    action_query_classes = {
        "list": s.UpstockBaselineQuery,
        "export": s.UpstockBaselineExportQuery,
        "csv_import": s.UpstockImportQuery,
    }
    max_body_size = csv_io.MAX_FILE_BYTES

    def get_object(self) -> Baseline:
        baseline = (
            self.visible(Baseline.objects.select_related("store", "location", "product"))
            .filter(pk=_pk(self.kwargs["pk"]))
            .first()
        )
        if baseline is None:
            raise NotFound()
        return baseline

    def _answer(self, baseline: Baseline, code: int = status.HTTP_200_OK) -> Response:
        fresh = Baseline.objects.select_related("location", "product", "updated_by").get(
            pk=baseline.pk
        )
        return Response(s.UpstockBaselineSerializer(fresh).data, status=code)

    @extend_schema(
        parameters=[s.UpstockBaselineQuery], responses={200: s.UpstockBaselineSerializer(many=True)}
    )
    def list(self, request):
        """By store, floor, then category defaults and products."""
        params = self.query(s.UpstockBaselineQuery)
        rows = selectors.baseline_list(
            org=self.org,
            store=self.filter_store(params.get("store")),
            location=self.filter_location(params.get("location")),
            product=params.get("product"),
        )
        rows = self.visible(rows.select_related("updated_by"))
        if params.get("category"):
            rows = rows.filter(category=params["category"])
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.UpstockBaselineSerializer(page, many=True).data)

    @extend_schema(responses={200: s.UpstockBaselineSerializer})
    def retrieve(self, request, pk=None):
        return self._answer(self.get_object())

    @extend_schema(
        request=s.UpstockBaselineCreateSerializer,
        responses={
            201: s.UpstockBaselineSerializer,
            200: OpenApiResponse(
                s.UpstockBaselineSerializer, description="It existed: par changed."
            ),
        },
    )
    def create(self, request):
        body = s.UpstockBaselineCreateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        store = data["store"]
        location = self.body_location(store, data["location"])
        product = None
        if data.get("product") or data.get("sku") or data.get("barcode"):
            problems = Problems()
            (named,) = items_resolve(
                org=self.org, items=[item_ref(data)], problems=problems, prefix=""
            )
            problems.raise_if_any("Unknown product.")
            product = named.product
        existed = Baseline.objects.filter(
            location=location,
            product=product,
            category="" if product else data["category"],
            subcategory="" if product else data["subcategory"],
        ).exists()
        baseline = baseline_services.baseline_upsert(
            org=self.org,
            store=store,
            location=location,
            product=product,
            category=data["category"],
            subcategory=data["subcategory"],
            par_qty=data["par_qty"],
            min_pull=data["min_pull"],
            actor=request.user,
        )
        return self._answer(baseline, status.HTTP_200_OK if existed else status.HTTP_201_CREATED)

    @extend_schema(
        request=s.UpstockBaselineUpdateSerializer, responses={200: s.UpstockBaselineSerializer}
    )
    def partial_update(self, request, pk=None):
        baseline = self.get_object()
        body = s.UpstockBaselineUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        baseline = baseline_services.baseline_update(
            org=self.org, baseline=baseline, changes=dict(body.validated_data), actor=request.user
        )
        return self._answer(baseline)

    @extend_schema(
        request=s.UpstockBaselineUpdateSerializer, responses={200: s.UpstockBaselineSerializer}
    )
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        baseline_services.baseline_delete(
            org=self.org, baseline=self.get_object(), actor=request.user
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _import(self, *, store, location, rows, dry_run, errors=(), ignored=()) -> Response:
        result = baseline_services.baselines_import(
            org=self.org,
            store=store,
            location=location,
            rows=rows,
            dry_run=dry_run,
            actor=self.request.user,
        )
        return Response(
            r.import_body(
                result,
                dry_run=dry_run,
                rows=len(rows) + len(errors),
                errors=errors,
                ignored=ignored,
            )
        )

    @extend_schema(
        request=s.UpstockBaselineBulkSerializer, responses={200: r.UpstockImportResultSerializer}
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """Many par levels of one floor as JSON rows, by the CSV import's rules: every bad
        row is listed by its position (``line``, from 1) and the good ones are applied."""
        body = s.UpstockBaselineBulkSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        location = self.body_location(data["store"], data["location"])
        rows, errors = [], []
        for line, given in enumerate(data["rows"], start=1):
            row, error = bulk_row(given, line)
            if error:
                errors.append(error)
            else:
                rows.append(row)
        return self._import(
            store=data["store"],
            location=location,
            rows=rows,
            dry_run=data["dry_run"],
            errors=errors,
        )

    @extend_schema(
        operation_id="upstock_baselines_import",
        parameters=[s.UpstockImportQuery],
        request={
            "text/csv": OpenApiTypes.STR,
            "multipart/form-data": OpenApiRequest(
                {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            ),
        },
        responses={200: r.UpstockImportResultSerializer},
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[CsvBodyParser, parsers.MultiPartParser],
    )
    def csv_import(self, request):
        """A floor's par levels from a CSV file (a multipart ``file``, or the body as
        ``text/csv``): columns found by header name, any case (``sku``, ``barcode``,
        ``product``, ``category``, ``subcategory``, ``par_qty``, ``min_pull``), UTF-8 with or
        without a byte-order mark, report rows above the header skipped. Every bad row is
        listed by its line and the good ones applied; ``dry_run=true`` only checks."""
        params = self.query(s.UpstockImportQuery)
        store = Store.objects.filter(pk=params["store"], is_active=True).first()
        if store is None or not self.tenant.may_use_store(store.pk):
            raise ValidationFailed(
                "Unknown store.", fields={"store": ["Unknown store."]}, code="unknown_store"
            )
        location = self.body_location(store, params["location"])
        raw = self._csv_bytes(request)
        parsed = csv_io.parse(raw)
        return self._import(
            store=store,
            location=location,
            rows=parsed.rows,
            dry_run=params["dry_run"],
            errors=parsed.errors,
            ignored=parsed.ignored_columns,
        )

    @staticmethod
    def _csv_bytes(request) -> bytes:
        if isinstance(request.data, bytes):
            raw = request.data
        else:
            upload = request.FILES.get("file")
            if upload is None:
                raise ValidationFailed(
                    "Send the CSV as a multipart 'file' or as a text/csv body.",
                    fields={"file": ["This field is required."]},
                )
            raw = upload.read()
        if not raw.strip():
            raise csv_io.refuse("The file is empty.")
        return raw

    @extend_schema(
        parameters=[s.UpstockBaselineExportQuery],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="A header line, then one row per par level; imports again as is.",
            )
        },
    )
    @action(
        detail=False,
        methods=["get"],
        renderer_classes=[CsvPassthroughRenderer, *api_settings.DEFAULT_RENDERER_CLASSES],
    )
    def export(self, request):
        """A store's par levels (or one floor's) as CSV."""
        params = self.query(s.UpstockBaselineExportQuery)
        store = self.filter_store(params["store"])
        location = self.filter_location(params.get("location"))
        rows = selectors.baseline_list(org=self.org, store=store, location=location)
        body = csv_io.write(
            [
                {
                    "store": b.store.code,
                    "location": b.location.code,
                    "sku": b.product.sku if b.product_id else "",
                    "name": b.product.name if b.product_id else "",
                    "category": b.category,
                    "subcategory": b.subcategory,
                    "par_qty": r.q(b.par_qty),
                    "min_pull": r.q(b.min_pull) or "",
                    "updated_at": b.updated_at.isoformat() if b.updated_at else "",
                }
                for b in rows
            ]
        )
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        suffix = f"-{location.code}" if location is not None else ""
        response["Content-Disposition"] = (
            f'attachment; filename="par-levels-{store.code}{suffix}.csv"'
        )
        return response


def bulk_row(given: dict, line: int) -> tuple[dict, dict | None]:
    """A JSON row as the import takes a CSV row: the columns it reads, as text."""
    row: dict = {"line": line}
    for key, value in given.items():
        name = csv_io.column_name(str(key))
        if name not in csv_io.COLUMNS:
            continue
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            return row, {
                "line": line,
                "field": name,
                "code": "invalid",
                "detail": "A text or a number.",
            }
        if value is None:
            value = ""
        elif isinstance(value, JsonNumber):
            value = value.literal
        elif isinstance(value, (int, Decimal)):
            value = str(value)
        row[name] = value.strip()
    return row, None


# --- runs ---------------------------------------------------------------------------------------


class RunViewSet(UpstockAPIMixin, viewsets.GenericViewSet):
    """Pull lists: one per sales floor and night (the nightly job makes them at closing, staff
    may start one), their lines in walking order, completing and abandoning them."""

    queryset = UpstockRun.objects.none()
    read_capability = Action.STOCK_VIEW
    write_capability = Action.UPSTOCK_WORK
    action_query_classes = {"list": s.UpstockRunQuery}

    def get_object(self) -> UpstockRun:
        run = (
            self.visible(UpstockRun.objects.select_related("store", "location", "created_by"))
            .filter(pk=_pk(self.kwargs["pk"]))
            .first()
        )
        if run is None:
            raise NotFound()
        return run

    def _detail(self, run: UpstockRun, code: int = status.HTTP_200_OK) -> Response:
        run = selectors.run_get(org=self.org, run_id=run.pk)
        lines = list(selectors.run_lines(run))
        for line in lines:
            line.run = run
        body = {
            **s.UpstockRunSerializer(run).data,
            "summary": r.summary_body(selectors.run_summary(run)),
            "lines": r.lines_body(lines),
        }
        return Response(body, status=code)

    @extend_schema(
        parameters=[s.UpstockRunQuery], responses={200: s.UpstockRunSerializer(many=True)}
    )
    def list(self, request):
        """Newest first."""
        params = self.query(s.UpstockRunQuery)
        store = self.filter_store(params.get("store"))
        location = self.filter_location(params.get("location"))
        runs = self.visible(
            selectors.run_list(
                org=self.org, store=store, location=location, status=params.get("status")
            )
        )
        if params.get("date"):
            runs = runs.filter(pk__in=self._created_on(params["date"], store))
        page = self.paginate_queryset(runs)
        return self.get_paginated_response(s.UpstockRunSerializer(page, many=True).data)

    def _created_on(self, day: datetime.date, store: Store | None) -> list[int]:
        """Runs created on ``day`` in their store's time zone (one query per time zone the
        caller's stores use: a handful)."""
        stores = self.visible(Store.objects.all(), "pk")
        if store is not None:
            stores = stores.filter(pk=store.pk)
        ids: list[int] = []
        by_zone: dict[str, list[int]] = {}
        for pk, zone in stores.values_list("pk", "time_zone"):
            by_zone.setdefault(zone, []).append(pk)
        for zone, store_ids in by_zone.items():
            tz = zoneinfo.ZoneInfo(zone)
            start = datetime.datetime.combine(day, datetime.time.min, tzinfo=tz)
            end = datetime.datetime.combine(
                day + datetime.timedelta(days=1), datetime.time.min, tzinfo=tz
            )
            ids += UpstockRun.objects.filter(
                store_id__in=store_ids, created_at__gte=start, created_at__lt=end
            ).values_list("pk", flat=True)
        return ids

    @extend_schema(responses={200: r.UpstockRunDetailSerializer})
    def retrieve(self, request, pk=None):
        """The run with its summary and its lines in walking order."""
        return self._detail(self.get_object())

    @extend_schema(
        request=s.UpstockRunCreateSerializer,
        responses={
            201: r.UpstockRunDetailSerializer,
            200: OpenApiResponse(
                r.UpstockRunDetailSerializer, description="A replay of the client_ref: that run."
            ),
        },
    )
    def create(self, request):
        """Compute a pull list for a sales floor now; an unfinished earlier run of that floor
        is abandoned (its settled lines stay as they are)."""
        body = s.UpstockRunCreateSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        data = body.validated_data
        store = data["store"]
        location = self.body_location(store, data["location"])
        replay = bool(data["client_ref"]) and (
            UpstockRun.objects.filter(client_ref=data["client_ref"]).exists()
        )
        run = run_services.run_create(
            org=self.org,
            store=store,
            location=location,
            category=data["category"],
            client_ref=data["client_ref"],
            actor=request.user,
        )
        self.check_store(run.store)
        answer = self._detail(run)
        return created_or_replayed(answer.data, created=not replay)

    def _transition(self, service) -> Response:
        run = service(org=self.org, run=self.get_object(), actor=self.request.user)
        return Response(s.UpstockRunSerializer(selectors.run_get(org=self.org, run_id=run.pk)).data)

    @extend_schema(request=None, responses={200: s.UpstockRunSerializer})
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        """Every line done, skipped or an exception (else 409 ``lines_pending``)."""
        return self._transition(run_services.run_complete)

    @extend_schema(request=None, responses={200: s.UpstockRunSerializer})
    @action(detail=True, methods=["post"])
    def abandon(self, request, pk=None):
        """Give the run up: its pending lines stay pending, nothing moves."""
        return self._transition(run_services.run_abandon)

    @extend_schema(responses={200: r.UpstockRunSummarySerializer})
    @action(detail=True, methods=["get"])
    def summary(self, request, pk=None):
        """Lines per status, suggested and pulled totals."""
        return Response(r.summary_body(selectors.run_summary(self.get_object())))

    @extend_schema(request=s.UpstockScanSerializer, responses=PULL_ANSWERS)
    @action(detail=True, methods=["post"])
    def scan(self, request, pk=None):
        """Confirm a pull by scanning the pack: its quantity moves onto the floor (a GS1 code
        with a lot takes that lot). A product not on the run is 409 ``not_on_run``; with
        ``line``, another product than that line's is 409 ``wrong_product`` naming the one
        expected. The same ``client_ref`` again moves nothing."""
        run = self.get_object()
        body = s.UpstockScanSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        replay = UpstockPull.objects.filter(line__run=run, client_ref=data["client_ref"]).exists()
        extra = {}
        if data["line"] is not None:
            line = UpstockLine.objects.filter(run=run, pk=data["line"]).first()
            if line is None:
                raise ValidationFailed(
                    "Not a line of this run.",
                    fields={"line": ["Not a line of this run."]},
                    code="unknown_line",
                )
            extra["line"] = line
        line = line_services.line_scan(
            org=self.org,
            run=run,
            code=data["code"],
            quantity=data["quantity"],
            client_ref=data["client_ref"],
            actor=request.user,
            **extra,
        )
        return created_or_replayed(line_answer(line), created=not replay)


def line_answer(line: UpstockLine) -> dict:
    fresh = UpstockLine.objects.select_related(
        "run", "product", "source_location", "updated_by"
    ).get(pk=line.pk)
    return r.lines_body([fresh])[0]


class LineViewSet(UpstockAPIMixin, viewsets.GenericViewSet):
    """One line of a run: pulled (done), skipped, or an exception."""

    queryset = UpstockLine.objects.none()
    read_capability = Action.STOCK_VIEW
    write_capability = Action.UPSTOCK_WORK

    def get_object(self) -> UpstockLine:
        line = (
            self.visible(
                UpstockLine.objects.select_related(
                    "run", "product", "source_location", "updated_by"
                ),
                "run__store_id",
            )
            .filter(pk=_pk(self.kwargs["pk"]))
            .first()
        )
        if line is None:
            raise NotFound()
        return line

    @extend_schema(responses={200: r.UpstockLineSerializer})
    def retrieve(self, request, pk=None):
        return Response(r.lines_body([self.get_object()])[0])

    @extend_schema(request=s.UpstockLineDoneSerializer, responses=PULL_ANSWERS)
    def partial_update(self, request, pk=None):
        """Done: ``pulled`` moves from the back room onto the floor (earliest expiry first,
        unless ``batch`` names the lot); more than the back room holds is 409
        ``insufficient_stock``. The same ``client_ref`` again moves nothing."""
        line = self.get_object()
        body = s.UpstockLineDoneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        replay = UpstockPull.objects.filter(line=line, client_ref=data["client_ref"]).exists()
        line = line_services.line_done(
            org=self.org,
            line=line,
            pulled=data["pulled"],
            client_ref=data["client_ref"],
            batch=data["batch"],
            actor=request.user,
        )
        return created_or_replayed(line_answer(line), created=not replay)

    @extend_schema(request=s.UpstockLineDoneSerializer, responses=PULL_ANSWERS)
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    @extend_schema(request=s.UpstockLineSkipSerializer, responses={200: r.UpstockLineSerializer})
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        """Nothing pulled, on purpose (a ``note`` says why)."""
        line = self.get_object()
        body = s.UpstockLineSkipSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        line = line_services.line_skip(
            org=self.org, line=line, note=body.validated_data["note"], actor=request.user
        )
        return Response(line_answer(line))

    @extend_schema(
        request=s.UpstockLineExceptionSerializer, responses={200: r.UpstockLineSerializer}
    )
    @action(detail=True, methods=["post"])
    def exception(self, request, pk=None):
        """Why the line cannot be pulled as suggested. ``missing``/``damaged`` with a
        ``quantity`` records a discrepancy (an operator's waits for a manager)."""
        line = self.get_object()
        body = s.UpstockLineExceptionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        line = line_services.line_exception(
            org=self.org,
            line=line,
            reason=data["reason"],
            quantity=data["quantity"],
            note=data["note"],
            tenant=self.tenant,
            actor=request.user,
        )
        return Response(line_answer(line))
