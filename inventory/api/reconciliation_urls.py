"""Routes for the reconciliation report."""

from django.urls import re_path

from inventory.api import reconciliation_views as views

urlpatterns = [
    re_path(r"^stock/reconciliation/?$", views.StockReconciliationApi.as_view(),
            name="stock-reconciliation"),
]
