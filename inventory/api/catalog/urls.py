"""Routes for products (with the scan lookup) and the classification map."""

from core.api import OptionalSlashRouter
from inventory.api.catalog import views

router = OptionalSlashRouter()
router.register("products", views.ProductViewSet, basename="product")
router.register("classifications", views.ClassificationMappingViewSet, basename="classification")

urlpatterns = router.urls
