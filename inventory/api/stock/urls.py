"""Routes for stock documents: receipts, moves, adjustments and write-offs."""

from django.urls import re_path

from inventory.api.stock import views

urlpatterns = [
    re_path(r"^stock/receipts/?$", views.ReceiptApi.as_view(), name="stock-receipts"),
    re_path(r"^stock/moves/?$", views.MoveApi.as_view(), name="stock-moves"),
    re_path(r"^stock/adjustments/?$", views.AdjustmentApi.as_view(), name="stock-adjustments"),
    re_path(r"^stock/write-offs/?$", views.WriteOffApi.as_view(), name="stock-write-offs"),
]
