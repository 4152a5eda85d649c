"""``GET /api/v1/audit``: the audit trail, for admins. Thin: parse the query string (bad values
answer 400 naming the field), narrow a store-limited admin to its stores (plus the
organisation-wide events), call one selector, serialise. One query per page whatever the
number of events."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView

from inventory.api.audit import serializers as s
from inventory.api.base import TenantAPIMixin
from inventory.api.reports.views import LedgerPagination
from inventory.audit.selectors import audit_event_list
from inventory.models import Store
from inventory.tenancy.capabilities import Action


class AuditPagination(LedgerPagination):
    """Keyset pages over ``-id``, as the ledger's: an invalid cursor answers 400 naming
    ``cursor``."""


class AuditEventListApi(TenantAPIMixin, GenericAPIView):
    """What changed, who changed it (and with which device token), newest first.

    Settings, stores and locations, people and their roles, tokens, the catalogue and every
    step of a count. Stock documents are not here: a sale, refund, receipt, move, adjustment or
    write-off is its own record, with its ledger rows (``/ledger``). A store-limited admin sees
    the events of its stores and the organisation-wide ones.
    """

    read_capability = Action.AUDIT_VIEW
    query_class = s.AuditQuery
    serializer_class = s.AuditEventSerializer
    pagination_class = AuditPagination
    filter_backends: list = []

    @extend_schema(parameters=[s.AuditQuery], responses={200: s.AuditEventSerializer(many=True)})
    def get(self, request):
        query = s.AuditQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        store = params.get("store")
        if store is not None and (
            not self.tenant.may_use_store(store) or not Store.objects.filter(pk=store).exists()
        ):
            raise NotFound()
        events = audit_event_list(org=self.org, store_ids=self.tenant.store_ids, **params)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
