"""Routes for stock documents: receipts and moves."""

from django.urls import re_path

from inventory.api.stock import views

urlpatterns = [
    re_path(r"^stock/receipts/?$", views.ReceiptApi.as_view(), name="stock-receipts"),
    re_path(r"^stock/moves/?$", views.MoveApi.as_view(), name="stock-moves"),
]
