"""``GET /api/v1/``: one index of every top-level resource.

The API's routes come from several routers and URL modules (tenancy and catalog, stock reads,
stock writes, counts, upstock, discrepancies). Each DefaultRouter used to add its own root view
at ``^$``, and the first one included hid the others; now no router has a root
(``OptionalSlashRouter``) and this view lists them all by route name.
"""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

#: name shown in the index -> URL name. Router list routes are ``<basename>-list``.
RESOURCES: dict[str, str] = {
    "me": "me",
    "org": "org",
    "auth/token": "auth-token",
    "auth/logout": "auth-logout",
    "stores": "store-list",
    "locations": "location-list",
    "memberships": "membership-list",
    "products": "product-list",
    "classifications": "classification-list",
    "tokens": "token-list",
    "sales": "sale-list",
    "stock": "stock-list",
    "stock/summary": "stock-summary",
    "stock/kpis": "stock-kpis",
    "stock/shortfalls": "stock-shortfalls",
    "stock/reconciliation": "stock-reconciliation",
    "stock/receipts": "stock-receipts",
    "stock/moves": "stock-moves",
    "stock/adjustments": "stock-adjustments",
    "stock/write-offs": "stock-write-offs",
    "ledger": "ledger",
    "reports/cogs": "reports-cogs",
    "audit": "audit",
    "counts/sessions": "count-session-list",  # passes and lines are reached from a session
    "counts/unresolved": "count-unresolved-list",
    "upstock/baselines": "upstock-baseline-list",  # bulk, import and export under it
    "upstock/runs": "upstock-run-list",  # lines are reached from a run
    "discrepancies": "discrepancy-list",
    "discrepancies/policies": "variance-policy-list",
    "discrepancies/analytics": "discrepancy-analytics",
}


class ApiRootView(APIView):
    """Every top-level resource of the API and its URL."""

    schema = None  # an index, not an operation of the API

    def get(self, request, *args, **kwargs):
        return Response(
            {name: reverse(url_name, request=request) for name, url_name in RESOURCES.items()}
        )
