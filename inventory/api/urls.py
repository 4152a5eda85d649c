"""``/api/v1/``: the API root and every subdomain's routes.

Reads come before the stock documents: ``stock/summary`` must never be taken for anything else.
"""

from django.urls import include, re_path

from inventory.api import root

urlpatterns = [
    re_path(r"^$", root.ApiRootView.as_view(), name="api-root"),
    re_path(r"^", include("inventory.api.tenancy.urls")),
    re_path(r"^", include("inventory.api.catalog.urls")),
    re_path(r"^", include("inventory.api.reports.urls")),
    re_path(r"^", include("inventory.api.stock.urls")),
    re_path(r"^", include("inventory.api.sales.urls")),
    re_path(r"^", include("inventory.api.audit.urls")),
]
