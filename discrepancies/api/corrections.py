"""Ad-hoc corrections over HTTP: ``/stock/adjustments`` and ``/stock/write-offs``.

They keep the stock documents' request shapes (an adjustment may name its discrepancy ``type``)
and, when the correction posts at once, their answer: 201 with the stock document, 200 with the
very same body on a replay. Above policy nothing moves: 202 ``pending_approval`` with the
request and its discrepancies (a replay answers the same, statuses as they are now). The rules
are the correction service's (``discrepancies.services.corrections``); the views parse and call.
"""

from __future__ import annotations

from django.urls import re_path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from discrepancies.api import correction_serializers as s
from discrepancies.api.correction_responses import PendingCorrectionSerializer, pending_body
from discrepancies.services.corrections import CorrectionAnswer, correction_request
from inventory.api.base import (
    DOCUMENT_ANSWERS,
    TenantAPIMixin,
    created_or_replayed,
    document_body,
    item_ref,
)
from inventory.models import DocumentKind
from inventory.stock import documents
from inventory.tenancy.capabilities import Action

CORRECTION_ANSWERS = {
    **DOCUMENT_ANSWERS,
    202: OpenApiResponse(
        PendingCorrectionSerializer,
        description="Above the variance policy (or beyond what you may approve): nothing "
        "moved; the request waits for another person's approval. A replay answers the same.",
    ),
}


class CorrectionApi(TenantAPIMixin, APIView):
    """Shared by adjustments and write-offs: parse the request's shape, call the service,
    answer the document (201/200) or the pending request (202)."""

    serializer_class: type = s.AdjustmentSerializer
    write_capability = Action.STOCK_ADJUST

    def parse(self, request) -> dict:
        serializer = self.serializer_class(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def request_correction(self, request, data: dict, **kwargs) -> Response:
        answer: CorrectionAnswer = correction_request(
            org=self.org,
            store=data["store"],
            client_ref=data["client_ref"],
            occurred_at=data.get("occurred_at"),
            source_ref=data["source_ref"],
            reason=data["reason"],
            tenant=self.tenant,
            actor=request.user,
            **kwargs,
        )
        if not answer.posted:
            return Response(pending_body(answer), status=status.HTTP_202_ACCEPTED)
        assert answer.document is not None
        return created_or_replayed(document_body(answer.document), answer.created)


class AdjustmentApi(CorrectionApi):
    """Signed corrections with a reason: + goes to the named lot, else the newest batch."""

    serializer_class = s.AdjustmentSerializer

    @extend_schema(request=s.AdjustmentSerializer, responses=CORRECTION_ANSWERS)
    def post(self, request):
        data = self.parse(request)
        lines = [
            documents.AdjustmentLineInput(
                item_ref(ln),
                ln["location"],
                ln["quantity"],
                ln["lot_code"],
                ln.get("expiry_date"),
                ln.get("unit_cost"),
            )
            for ln in data["lines"]
        ]
        return self.request_correction(
            request,
            data,
            kind=DocumentKind.ADJUSTMENT,
            lines=lines,
            discrepancy_type=data["type"],
        )


class WriteOffApi(CorrectionApi):
    """Remove damaged, wasted or expired stock (type and reason required)."""

    serializer_class = s.WriteOffSerializer

    @extend_schema(request=s.WriteOffSerializer, responses=CORRECTION_ANSWERS)
    def post(self, request):
        data = self.parse(request)
        lines = [
            documents.WriteOffLineInput(
                item_ref(ln), ln["location"], ln["quantity"], ln["lot_code"]
            )
            for ln in data["lines"]
        ]
        return self.request_correction(
            request,
            data,
            kind=DocumentKind.WRITE_OFF,
            lines=lines,
            write_off_type=data["type"],
        )


urlpatterns = [
    re_path(r"^stock/adjustments/?$", AdjustmentApi.as_view(), name="stock-adjustments"),
    re_path(r"^stock/write-offs/?$", WriteOffApi.as_view(), name="stock-write-offs"),
]
