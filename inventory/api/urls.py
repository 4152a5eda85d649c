from django.urls import include, re_path

from core.api import OptionalSlashRouter
from inventory.api import root, views

router = OptionalSlashRouter()
router.register("stores", views.StoreViewSet, basename="store")
router.register("locations", views.LocationViewSet, basename="location")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("products", views.ProductViewSet, basename="product")
router.register("classifications", views.ClassificationMappingViewSet, basename="classification")
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = [
    re_path(r"^$", root.ApiRootView.as_view(), name="api-root"),
    re_path(r"^org/?$", views.OrganizationApi.as_view(), name="org"),
    re_path(r"^me/?$", views.MeApi.as_view(), name="me"),
    re_path(r"^auth/token/?$", views.TokenLoginApi.as_view(), name="auth-token"),
    re_path(r"^auth/logout/?$", views.TokenLogoutApi.as_view(), name="auth-logout"),
    # reads first: "stock/summary" must not be taken for a product id
    re_path(r"^", include("inventory.api.reports.urls")),
    re_path(r"^", include("inventory.api.reconciliation_urls")),
    re_path(r"^", include("inventory.api.stock_urls")),
    *router.urls,
]
