"""Routes for stock reads and reports (stock list, batches, summary, KPIs, ledger, COGS)."""

urlpatterns: list = []
