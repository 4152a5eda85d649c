"""Routes for the reconciliation report."""

urlpatterns: list = []
