"""Routes for stock reads and reports: the stock list, batches, summary, KPIs, shortfalls,
the reconciliation check, the ledger and COGS.

Included before the stock documents' routes so that ``stock/summary`` and ``stock/kpis`` are never
taken for something else. Every route answers with and without a trailing slash.
"""

from django.urls import re_path

from inventory.api.reports import views

urlpatterns = [
    re_path(r"^stock/?$", views.StockListApi.as_view(), name="stock-list"),
    re_path(r"^stock/summary/?$", views.StockSummaryApi.as_view(), name="stock-summary"),
    re_path(r"^stock/kpis/?$", views.StockKpisApi.as_view(), name="stock-kpis"),
    re_path(r"^stock/shortfalls/?$", views.ShortfallListApi.as_view(), name="stock-shortfalls"),
    re_path(
        r"^stock/reconciliation/?$",
        views.StockReconciliationApi.as_view(),
        name="stock-reconciliation",
    ),
    re_path(
        r"^stock/(?P<product_id>[0-9]{1,18})/batches/?$",
        views.StockBatchesApi.as_view(),
        name="stock-batches",
    ),
    re_path(r"^ledger/?$", views.LedgerApi.as_view(), name="ledger"),
    re_path(r"^reports/cogs/?$", views.CogsReportApi.as_view(), name="reports-cogs"),
]
