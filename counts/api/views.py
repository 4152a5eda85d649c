"""Count endpoints under /api/v1/counts/: sessions, passes, lines, variance. Thin views."""

from __future__ import annotations

import csv
import io

import django_filters as filters
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.api import CsvPassthroughRenderer
from core.errors import ValidationFailed
from core.spreadsheet import safe_cell
from counts import selectors
from counts.api import responses as r
from counts.api import serializers as s
from counts.api.responses import variance_row_body
from counts.models import (
    CountLine,
    CountPass,
    CountSession,
    UnresolvedScan,
    VarianceRow,
)
from counts.services import passes as pass_services
from counts.services import sessions as session_services
from inventory.api.base import TenantAPIMixin, item_ref
from inventory.exceptions import UnknownBarcode
from inventory.models import Location, Product
from inventory.tenancy.capabilities import Action


class SessionFilter(filters.FilterSet):
    store = filters.NumberFilter(field_name="store_id")
    status = filters.CharFilter(field_name="status")
    scope = filters.CharFilter(field_name="scope")


class StoreScopedMixin(TenantAPIMixin):
    """Members limited to some stores see only those stores' counts."""

    def visible(self, queryset, store_field: str):
        if self.tenant.store_ids is not None:
            queryset = queryset.filter(**{f"{store_field}__in": self.tenant.store_ids})
        return queryset


class SessionViewSet(
    StoreScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    queryset = CountSession.objects.none()
    serializer_class = s.SessionSerializer
    read_capability = Action.STOCK_VIEW
    action_capabilities = {
        "create": Action.COUNT_SESSION_MANAGE,
        "start": Action.COUNT_SESSION_MANAGE,
        "submit": Action.COUNT_SESSION_MANAGE,
        "reconcile": Action.COUNT_SESSION_MANAGE,
        "cancel": Action.COUNT_SESSION_MANAGE,
        "finalize": Action.COUNT_FINALIZE,
        "passes": Action.COUNT_PASS_WORK,
        "variance": Action.STOCK_VIEW,
        "approve": Action.VARIANCE_APPROVE,
        "reject": Action.VARIANCE_APPROVE,
        "variance_row": Action.VARIANCE_APPROVE,
    }
    filterset_class = SessionFilter

    def get_queryset(self):
        return self.visible(
            CountSession.objects.select_related("created_by", "reconciled_by").order_by("-id"),
            "store_id",
        )

    @extend_schema(responses={200: r.SessionDetailSerializer})
    def retrieve(self, request, *args, **kwargs):
        session = self.get_object()
        return Response(
            {**self.get_serializer(session).data, "progress": selectors.session_progress(session)}
        )

    @extend_schema(request=s.SessionCreateSerializer, responses={201: s.SessionSerializer})
    def create(self, request):
        serializer = s.SessionCreateSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        store = data["store"]
        wanted = set(data["scope_locations"])
        found = list(Location.objects.filter(store=store, pk__in=wanted))
        if len(found) != len(wanted):
            raise ValidationFailed(
                fields={"scope_locations": ["Not locations of this store."]},
                code="unknown_location",
            )
        session = session_services.session_create(
            org=self.org,
            store=store,
            scope=data["scope"],
            blind=data["blind"],
            notes=data["notes"],
            scope_locations=found,
            scope_categories=data["scope_categories"],
            actor=request.user,
        )
        return Response(self.get_serializer(session).data, status=status.HTTP_201_CREATED)

    def _transition(self, service):
        session = service(org=self.org, session=self.get_object(), actor=self.request.user)
        return Response(self.get_serializer(session).data)

    @extend_schema(request=None, responses={200: s.SessionSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._transition(session_services.session_start)

    @extend_schema(request=None, responses={200: s.SessionSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        return self._transition(session_services.session_submit)

    @extend_schema(request=None, responses={200: s.SessionSerializer})
    @action(detail=True, methods=["post"])
    def reconcile(self, request, pk=None):
        return self._transition(session_services.session_reconcile)

    @extend_schema(request=None, responses={200: s.SessionSerializer})
    @action(detail=True, methods=["post"], url_path="finalize")
    def finalize(self, request, pk=None):
        return self._transition(session_services.session_finalize)

    @extend_schema(request=None, responses={200: s.SessionSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._transition(session_services.session_cancel)

    @extend_schema(request=s.PassCreateSerializer, responses={201: s.PassSerializer})
    @action(detail=True, methods=["post"])
    def passes(self, request, pk=None):
        session = self.get_object()
        serializer = s.PassCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        location = Location.objects.filter(store_id=session.store_id, pk=data["location"]).first()
        if location is None:
            raise ValidationFailed(
                fields={"location": ["Not a location of this store."]}, code="unknown_location"
            )
        recount_of = None
        if data.get("recount_of"):
            recount_of = CountPass.objects.filter(session=session, pk=data["recount_of"]).first()
            if recount_of is None:
                raise ValidationFailed(fields={"recount_of": ["Not a pass of this session."]})
        count_pass = pass_services.pass_create(
            org=self.org,
            session=session,
            location=location,
            category=data["category"],
            subcategory=data["subcategory"],
            device_id=data["device_id"],
            scan_mode=data["scan_mode"],
            recount_of=recount_of,
            actor=request.user,
        )
        return Response(s.PassSerializer(count_pass).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "ordering",
                str,
                description="-abs_value (default), abs_variance, "
                "variance, value, sku; '-' for descending",
            ),
            OpenApiParameter("format", str, description="csv for a spreadsheet"),
        ],
        responses={
            (200, "application/json"): r.VarianceReportSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="The rows: a header line, then one per row."
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[*api_settings.DEFAULT_RENDERER_CLASSES, CsvPassthroughRenderer],
    )
    def variance(self, request, pk=None):
        """Variance per (location, product), rolled up per product, with totals."""
        session = self.get_object()
        if not selectors.may_see_expected(self.tenant, session):
            raise PermissionDenied(
                "Expected quantities of this count are not shown to your role until it is closed.",
                code="blind_count",
            )
        report = selectors.variance_report(
            session, ordering=request.query_params.get("ordering", "-abs_value")
        )
        if request.accepted_renderer.format == "csv":
            return variance_csv(report)
        return Response(report)

    def _row(self, session, row_pk) -> VarianceRow:
        row = VarianceRow.objects.filter(session=session, pk=row_pk).first()
        if row is None:
            raise NotFound()
        return row

    @extend_schema(request=s.DecisionSerializer, responses={200: r.VarianceRowSerializer})
    @action(detail=True, methods=["post"], url_path=r"variance/(?P<row>\d+)/approve")
    def approve(self, request, pk=None, row=None):
        return self._decide(request, approve=True, row_pk=row)

    @extend_schema(request=s.DecisionSerializer, responses={200: r.VarianceRowSerializer})
    @action(detail=True, methods=["post"], url_path=r"variance/(?P<row>\d+)/reject")
    def reject(self, request, pk=None, row=None):
        return self._decide(request, approve=False, row_pk=row)

    def _decide(self, request, *, approve: bool, row_pk):
        session = self.get_object()
        serializer = s.DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = session_services.variance_decide(
            org=self.org,
            row=self._row(session, row_pk),
            approve=approve,
            tenant=self.tenant,
            mode=serializer.validated_data["mode"],
            reason=serializer.validated_data["reason"],
            actor=request.user,
        )
        return Response(variance_row_body(row))

    @extend_schema(request=s.ReasonSerializer, responses={200: r.VarianceRowSerializer})
    @action(detail=True, methods=["patch"], url_path=r"variance/(?P<row>\d+)")
    def variance_row(self, request, pk=None, row=None):
        """Give a reason for one variance row (shrink, damage, mis-scan...)."""
        session = self.get_object()
        serializer = s.ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        row = session_services.variance_reason_set(
            org=self.org,
            row=self._row(session, row),
            actor=request.user,
            reason=serializer.validated_data["reason"],
        )
        return Response(variance_row_body(row))


CSV_COLUMNS = [
    "location_code",
    "sku",
    "name",
    "category",
    "subcategory",
    "expected",
    "counted",
    "variance",
    "variance_pct",
    "unit_cost",
    "value",
    "status",
    "mode",
    "reason",
    "expected_at",
    "posted_quantity",
    "unposted_quantity",
    "discrepancy",
]


def variance_csv(report: dict) -> HttpResponse:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for row in report["rows"]:
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="count-{report["session"]}-variance.csv"'
    )
    return response


def scan_input(item: dict) -> pass_services.ScanInput:
    """A scan's validated shape as the counts service takes it."""
    return pass_services.ScanInput(
        product=item_ref(item),
        quantity=item["quantity"],
        lot_code=item.get("lot_code", ""),
        client_line_id=item.get("client_line_id", ""),
        captured_at=item.get("captured_at"),
        confidence=item.get("confidence") or "",
        notes=item.get("notes", ""),
        device_id=item.get("device_id", ""),
    )


class PassViewSet(StoreScopedMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = CountPass.objects.none()
    serializer_class = s.PassSerializer
    read_capability = Action.STOCK_VIEW
    action_capabilities = {
        "submit": Action.COUNT_PASS_WORK,
        "void": Action.COUNT_SESSION_MANAGE,
        "bulk": Action.COUNT_PASS_WORK,
    }

    def get_queryset(self):
        return self.visible(
            CountPass.objects.select_related("started_by", "session"), "session__store_id"
        )

    def required_capability(self, request):
        if getattr(self, "action", None) == "lines" and request.method == "POST":
            return Action.COUNT_PASS_WORK
        return super().required_capability(request)

    @extend_schema(responses={200: r.PassDetailSerializer})
    def retrieve(self, request, *args, **kwargs):
        count_pass = self.get_object()
        lines = CountLine.objects.filter(count_pass=count_pass).select_related(
            "product", "captured_by"
        )
        unresolved = UnresolvedScan.objects.filter(count_pass=count_pass, resolved_at__isnull=True)
        return Response(
            {
                **self.get_serializer(count_pass).data,
                "lines": s.LineSerializer(lines, many=True).data,
                "unresolved": s.UnresolvedSerializer(unresolved, many=True).data,
            }
        )

    @extend_schema(request=None, responses={200: s.PassSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        count_pass = pass_services.pass_submit(
            org=self.org, count_pass=self.get_object(), actor=request.user
        )
        return Response(self.get_serializer(count_pass).data)

    @extend_schema(request=None, responses={200: s.PassSerializer})
    @action(detail=True, methods=["post"])
    def void(self, request, pk=None):
        count_pass = pass_services.pass_void(
            org=self.org, count_pass=self.get_object(), actor=request.user
        )
        return Response(self.get_serializer(count_pass).data)

    @extend_schema(methods=["GET"], responses={200: s.LineSerializer(many=True)})
    @extend_schema(
        methods=["POST"],
        request=s.ScanSerializer,
        responses={201: s.LineSerializer, 200: s.LineSerializer},
    )  # 200: a replay
    @action(detail=True, methods=["get", "post"])
    def lines(self, request, pk=None):
        """GET the pass's lines; POST one scan (a repeat adds to its line)."""
        count_pass = self.get_object()
        if request.method == "GET":
            lines = CountLine.objects.filter(count_pass=count_pass).select_related(
                "product", "captured_by"
            )
            page = self.paginate_queryset(lines)
            return self.get_paginated_response(s.LineSerializer(page, many=True).data)
        serializer = s.ScanSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = serializer.validated_data
        result = pass_services.scans_add(
            org=self.org,
            count_pass=count_pass,
            scans=[scan_input(item)],
            actor=request.user,
            device_id=item["device_id"],
        )
        if result.unresolved:
            raw = item["barcode"].strip()
            raise UnknownBarcode(
                f"No product matches '{raw}'.",
                fields={"barcode": ["Unknown barcode: kept for a manager."]},
                barcode=raw,
            )
        ((line, applied),) = result.lines
        return Response(
            s.LineSerializer(line).data,
            status=status.HTTP_201_CREATED if applied else status.HTTP_200_OK,
        )

    @extend_schema(request=s.BulkScanSerializer, responses={201: r.BulkScanResultSerializer})
    @action(detail=True, methods=["post"], url_path="lines/bulk")
    def bulk(self, request, pk=None):
        """Many scans at once (an offline tablet catching up). Unknown codes are kept on the
        pass and listed; replays (same client_line_id) are skipped."""
        count_pass = self.get_object()
        serializer = s.BulkScanSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data["lines"]
        result = pass_services.scans_add(
            org=self.org,
            count_pass=count_pass,
            scans=[scan_input(item) for item in items],
            actor=request.user,
            device_id=serializer.validated_data["device_id"],
        )
        lines = {line.pk for line, _ in result.lines}
        return Response(
            {
                "applied": sum(1 for _, applied in result.lines if applied),
                "replayed": sum(1 for _, applied in result.lines if not applied),
                "lines": s.LineSerializer(
                    CountLine.objects.filter(pk__in=lines).select_related("product", "captured_by"),
                    many=True,
                ).data,
                "unresolved": [
                    {"index": index, "barcode": items[index]["barcode"]}
                    for index, _ in result.unresolved
                ],
            },
            status=status.HTTP_201_CREATED,
        )


class LineViewSet(StoreScopedMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Edit or delete a line while its pass is open."""

    queryset = CountLine.objects.none()
    serializer_class = s.LineSerializer
    read_capability = Action.STOCK_VIEW
    write_capability = Action.COUNT_PASS_WORK

    def get_queryset(self):
        return self.visible(
            CountLine.objects.select_related("product", "captured_by"),
            "count_pass__session__store_id",
        )

    @extend_schema(request=s.LineUpdateSerializer, responses={200: s.LineSerializer})
    def partial_update(self, request, pk=None):
        serializer = s.LineUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        line = pass_services.line_update(
            org=self.org,
            line=self.get_object(),
            actor=request.user,
            quantity=serializer.validated_data.get("quantity"),
            notes=serializer.validated_data.get("notes"),
        )
        return Response(self.get_serializer(line).data)

    @extend_schema(request=s.LineUpdateSerializer, responses={200: s.LineSerializer})
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        pass_services.line_delete(org=self.org, line=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UnresolvedViewSet(StoreScopedMixin, mixins.ListModelMixin, viewsets.GenericViewSet):
    """Scans nothing matched; a manager maps each to a product."""

    queryset = UnresolvedScan.objects.none()
    serializer_class = s.UnresolvedSerializer
    read_capability = Action.STOCK_VIEW
    action_capabilities = {"resolve": Action.COUNT_SESSION_MANAGE}

    def get_queryset(self):
        return self.visible(
            UnresolvedScan.objects.select_related("captured_by").filter(resolved_at__isnull=True),
            "count_pass__session__store_id",
        )

    @extend_schema(request=s.ResolveSerializer, responses={200: s.LineSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        serializer = s.ResolveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = Product.objects.filter(pk=serializer.validated_data["product"]).first()
        if product is None:
            raise ValidationFailed(fields={"product": ["Unknown product."]}, code="unknown_product")
        line = pass_services.unresolved_resolve(
            org=self.org, scan=self.get_object(), product=product, actor=request.user
        )
        return Response(s.LineSerializer(line).data)
