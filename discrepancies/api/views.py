"""Discrepancies over HTTP: the list, one discrepancy with its source document, ledger rows
and timeline, the decisions (one or a selection), variance policies and analytics.

Thin: parse (bad values answer 400 naming the field), authorise by the capability matrix,
call one selector or service, serialise. Who may decide what is
``discrepancies.services.decisions``' business; a refusal is its error (409 ``invalid_state``,
403 ``escalation_required`` / ``self_approval``, 400 ``note_required``).
"""

from __future__ import annotations

import csv
import io

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core.api import CsvPassthroughRenderer
from core.errors import NotFound
from core.spreadsheet import safe_cell
from discrepancies import selectors
from discrepancies.analytics import discrepancy_analytics
from discrepancies.api import responses as r
from discrepancies.api import serializers as s
from discrepancies.exceptions import WrongState
from discrepancies.models import Discrepancy, VariancePolicy
from discrepancies.services.decisions import Decision, discrepancies_decide, discrepancy_decide
from discrepancies.services.policies import variance_policy_delete, variance_policy_save
from inventory.api.base import TenantAPIMixin
from inventory.models import Product, Store
from inventory.tenancy.capabilities import Action

MAX_ID = 2**63 - 1


def _pk(value) -> int:
    """A path's id (digits by the route): one past bigint is as missing as any other."""
    pk = int(value)
    if pk > MAX_ID:
        raise NotFound()
    return pk


class DiscrepancyViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """Discrepancies of the caller's stores, for managers and admins (``discrepancy.view``);
    deciding them needs ``variance.approve`` (above the escalation, an admin)."""

    queryset = Discrepancy.objects.none()  # for the schema; requests use the selectors
    read_capability = Action.DISCREPANCY_VIEW
    action_capabilities = {
        "review": Action.VARIANCE_APPROVE,
        "approve": Action.VARIANCE_APPROVE,
        "reject": Action.VARIANCE_APPROVE,
        "bulk": Action.VARIANCE_APPROVE,
    }
    action_query_classes = {"list": s.DiscrepancyQuery}
    filter_backends: list = []
    lookup_value_regex = r"[0-9]+"

    def _get(self, pk) -> selectors.DiscrepancyFields:
        return selectors.discrepancy_get(org=self.org, pk=_pk(pk), store_ids=self.tenant.store_ids)

    def _check_ids(self, params: dict) -> None:
        """A store the caller may not use, or another organisation's store or product,
        answers 404 like a missing one."""
        store = params.get("store")
        if store is not None and (
            not self.tenant.may_use_store(store) or not Store.objects.filter(pk=store).exists()
        ):
            raise NotFound()
        product = params.get("product")
        if product is not None and not Product.objects.filter(pk=product).exists():
            raise NotFound()

    @extend_schema(
        parameters=[s.DiscrepancyQuery], responses={200: r.DiscrepancySerializer(many=True)}
    )
    def list(self, request):
        """Newest first. ``archived=true`` lists the archive instead (closed discrepancies past
        the retention window; each is still readable by id)."""
        query = s.DiscrepancyQuery(data=s.query_data(request.query_params))
        query.is_valid(raise_exception=True)
        params = query.validated_data
        self._check_ids(params)
        rows = selectors.discrepancy_list(
            org=self.org,
            store_ids=self.tenant.store_ids,
            archived=params["archived"],
            status=params.get("status", ()),
            severity=params.get("severity", ()),
            kind=params.get("type", ()),
            source=params.get("source", ()),
            store=params.get("store"),
            product=params.get("product"),
            created_from=params.get("created_from"),
            created_to=params.get("created_to"),
            is_open=params["open"],
            search=params.get("search") or None,
            ordering=params["ordering"],
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([r.discrepancy_body(d) for d in page])

    @extend_schema(responses={200: r.DiscrepancyDetailSerializer})
    def retrieve(self, request, pk=None):
        """One discrepancy (live or archived) with its source document, the ledger rows of its
        correction and its timeline."""
        detail = selectors.discrepancy_detail(org=self.org, discrepancy=self._get(pk))
        return Response(r.detail_body(detail))

    def _decide(self, request, pk, verb: str) -> Response:
        body = s.DiscrepancyDecisionSerializer(data=request.data, context={"action": verb})
        body.is_valid(raise_exception=True)
        found = self._get(pk)
        if selectors.is_archived(found):
            raise WrongState(
                f"An archived discrepancy is closed ({found.status}).",
                fields={"status": [found.status]},
            )
        discrepancy_decide(
            org=self.org,
            discrepancy=found.pk,
            decision=Decision(
                verb, notes=body.validated_data["notes"], mode=body.validated_data.get("mode")
            ),
            tenant=self.tenant,
            actor=request.user,
        )
        return Response(r.discrepancy_body(self._get(pk)))

    @extend_schema(
        request=s.DiscrepancyDecisionSerializer, responses={200: r.DiscrepancySerializer}
    )
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """NEW → UNDER_REVIEW: someone is looking into it."""
        return self._decide(request, pk, "review")

    @extend_schema(
        request=s.DiscrepancyDecisionSerializer, responses={200: r.DiscrepancySerializer}
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Approve: a corrective source posts its correction (a count's at finalise) and ends
        ADJUSTED; an informational one is acknowledged (APPROVED)."""
        return self._decide(request, pk, "approve")

    @extend_schema(
        request=s.DiscrepancyDecisionSerializer, responses={200: r.DiscrepancySerializer}
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Reject: nothing posts (a false positive, a recount pending)."""
        return self._decide(request, pk, "reject")

    @extend_schema(
        request=s.DiscrepancyBulkDecisionSerializer,
        responses={200: r.DiscrepancyBulkResultSerializer},
    )
    @action(detail=False, methods=["post"])
    def bulk(self, request):
        """One decision on a selection (up to 5,000), in one transaction: each row is judged
        by the same rules as one at a time; refused rows are listed with their error and the
        others decided."""
        body = s.DiscrepancyBulkDecisionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        outcome = discrepancies_decide(
            org=self.org,
            ids=data["ids"],
            decision=Decision(data["action"], notes=data["notes"], mode=data.get("mode")),
            tenant=self.tenant,
            actor=request.user,
        )
        return Response(r.bulk_body(outcome))


class VariancePolicyViewSet(TenantAPIMixin, viewsets.GenericViewSet):
    """The organisation's variance policies, one per product category ("" = the default): read
    by managers and admins, set by admins (``org.settings_edit``, as the tolerance bands they
    replace were)."""

    queryset = VariancePolicy.objects.none()
    read_capability = Action.DISCREPANCY_VIEW
    write_capability = Action.ORG_SETTINGS_EDIT
    filter_backends: list = []
    lookup_value_regex = r"[0-9]+"

    def get_object(self) -> VariancePolicy:
        policy = VariancePolicy.objects.filter(org=self.org, pk=_pk(self.kwargs["pk"])).first()
        if policy is None:
            raise NotFound()
        return policy

    @extend_schema(responses={200: r.VariancePolicyAnswerSerializer(many=True)})
    def list(self, request):
        """Paged as every list is (an organisation has a handful: one page)."""
        page = self.paginate_queryset(
            VariancePolicy.objects.filter(org=self.org).order_by("category", "pk")
        )
        return self.get_paginated_response([r.policy_body(p) for p in page])

    @extend_schema(responses={200: r.VariancePolicyAnswerSerializer})
    def retrieve(self, request, pk=None):
        return Response(r.policy_body(self.get_object()))

    def _save(self, request, policy, *, partial: bool = False):
        body = s.VariancePolicySerializer(data=request.data, partial=partial)
        body.is_valid(raise_exception=True)
        return variance_policy_save(
            org=self.org, policy=policy, data=dict(body.validated_data), actor=request.user
        )

    @extend_schema(
        request=s.VariancePolicySerializer, responses={201: r.VariancePolicyAnswerSerializer}
    )
    def create(self, request):
        policy = self._save(request, None)
        return Response(r.policy_body(policy), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.VariancePolicySerializer, responses={200: r.VariancePolicyAnswerSerializer}
    )
    def update(self, request, pk=None):
        return Response(r.policy_body(self._save(request, self.get_object())))

    @extend_schema(
        request=s.VariancePolicySerializer, responses={200: r.VariancePolicyAnswerSerializer}
    )
    def partial_update(self, request, pk=None):
        return Response(r.policy_body(self._save(request, self.get_object(), partial=True)))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        variance_policy_delete(org=self.org, policy=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AnalyticsApi(TenantAPIMixin, GenericAPIView):
    """Discrepancies per month (by status and source), absolute variance in units and value,
    the top products and stores by frequency and by size, and the shrink rate per category,
    for the period's whole UTC days; archived discrepancies count. Admins see every store,
    a store-limited membership its own. ``format=csv`` for a spreadsheet."""

    read_capability = Action.DISCREPANCY_VIEW
    query_class = s.DiscrepancyAnalyticsQuery
    filter_backends: list = []
    pagination_class = None
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CsvPassthroughRenderer]

    @extend_schema(
        parameters=[s.DiscrepancyAnalyticsQuery],
        responses={
            (200, "application/json"): r.DiscrepancyAnalyticsSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="Every figure as a row: a header line, a `section` column.",
            ),
        },
    )
    def get(self, request):
        query = s.DiscrepancyAnalyticsQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        store = params.get("store")
        if store is not None and (
            not self.tenant.may_use_store(store) or not Store.objects.filter(pk=store).exists()
        ):
            raise NotFound()
        report = discrepancy_analytics(
            org=self.org,
            date_from=params["from"],
            date_to=params["to"],
            store_ids=self.tenant.store_ids,
            store=store,
            top=params["top"],
        )
        if request.accepted_renderer.format == "csv":
            return analytics_csv(report)
        return Response(r.analytics_body(report))


def analytics_csv(report: dict) -> HttpResponse:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=r.CSV_COLUMNS, extrasaction="ignore", restval="")
    writer.writeheader()
    for row in r.analytics_csv_rows(report):
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    name = f"discrepancies-{report['from'].isoformat()}-{report['to'].isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
