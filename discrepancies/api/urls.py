"""Routes under ``/api/v1/discrepancies/``."""

urlpatterns: list = []
