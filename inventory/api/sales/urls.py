"""Routes for POS sales, their voids and refunds."""

from core.api import OptionalSlashRouter
from inventory.api.sales import views

router = OptionalSlashRouter()
router.register("sales", views.SaleViewSet, basename="sale")

urlpatterns = router.urls
