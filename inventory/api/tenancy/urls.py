"""Routes for the organisation, stores, locations, people, tokens and sign-in."""

from django.urls import re_path

from core.api import OptionalSlashRouter
from inventory.api.tenancy import views

router = OptionalSlashRouter()
router.register("stores", views.StoreViewSet, basename="store")
router.register("locations", views.LocationViewSet, basename="location")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("tokens", views.ApiTokenViewSet, basename="token")

urlpatterns = [
    re_path(r"^org/?$", views.OrganizationApi.as_view(), name="org"),
    re_path(r"^me/?$", views.MeApi.as_view(), name="me"),
    re_path(r"^auth/token/?$", views.TokenLoginApi.as_view(), name="auth-token"),
    re_path(r"^auth/logout/?$", views.TokenLogoutApi.as_view(), name="auth-logout"),
    *router.urls,
]
