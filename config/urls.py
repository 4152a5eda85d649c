from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import ops
from inventory.api.root import ApiRootView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("_allauth/", include("allauth.headless.urls")),
    re_path(r"^api/v1$", ApiRootView.as_view()),  # the root without its slash, like every route
    re_path(r"^api/v1/counts/", include("counts.api.urls")),
    re_path(r"^api/v1/upstock/", include("upstock.api.urls")),
    # /api/v1/discrepancies with and without its slash (the list is the resource's root)
    re_path(r"^api/v1/", include("discrepancies.api.urls")),
    # adjustments and write-offs are correction requests (before inventory's stock routes)
    re_path(r"^api/v1/", include("discrepancies.api.corrections")),
    re_path(r"^api/v1/", include("inventory.api.urls")),
    re_path(r"^api/schema/?$", SpectacularAPIView.as_view(), name="schema"),
    re_path(r"^api/docs/?$", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^healthz/?$", ops.healthz, name="healthz"),
    re_path(r"^readyz/?$", ops.readyz, name="readyz"),
    re_path(r"^metrics/?$", ops.metrics, name="metrics"),
    path("", ops.index, name="index"),
    # Last: any other path under /api/ is a JSON 404, also with DEBUG on (where Django would
    # answer its HTML technical 404 page instead of handler404).
    re_path(r"^api/", ops.not_found, name="api-not-found"),
]

handler400 = "core.ops.bad_request"
handler404 = "core.ops.not_found"
handler500 = "core.ops.server_error"
