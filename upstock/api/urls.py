"""Upstock routes under /api/v1/upstock/: par levels, runs and their lines."""

from core.api import OptionalSlashRouter
from upstock.api import views

router = OptionalSlashRouter()
router.register("baselines", views.BaselineViewSet, basename="upstock-baseline")
router.register("runs", views.RunViewSet, basename="upstock-run")
router.register("lines", views.LineViewSet, basename="upstock-line")

urlpatterns = router.urls
