"""Routes for stock writes: sales (void, refunds) and stock documents."""

from django.urls import re_path

from core.api import OptionalSlashRouter
from inventory.api import stock_views as views

router = OptionalSlashRouter()
router.register("sales", views.SaleViewSet, basename="sale")

urlpatterns = [
    re_path(r"^stock/receipts/?$", views.ReceiptApi.as_view(), name="stock-receipts"),
    re_path(r"^stock/moves/?$", views.MoveApi.as_view(), name="stock-moves"),
    re_path(r"^stock/adjustments/?$", views.AdjustmentApi.as_view(), name="stock-adjustments"),
    re_path(r"^stock/write-offs/?$", views.WriteOffApi.as_view(), name="stock-write-offs"),
    *router.urls,
]
