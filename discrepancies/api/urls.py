"""Routes of the discrepancies under ``/api/v1/discrepancies``. Every route answers with and
without a trailing slash; ids are digits, so ``policies``, ``bulk`` and ``analytics`` never
read as one."""

from django.urls import re_path

from core.api import OptionalSlashRouter
from discrepancies.api import views

router = OptionalSlashRouter()
router.register("discrepancies/policies", views.VariancePolicyViewSet, basename="variance-policy")
router.register("discrepancies", views.DiscrepancyViewSet, basename="discrepancy")

urlpatterns = [
    re_path(
        r"^discrepancies/analytics/?$", views.AnalyticsApi.as_view(), name="discrepancy-analytics"
    ),
    *router.urls,
]
