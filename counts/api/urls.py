from core.api import OptionalSlashRouter
from counts.api import views

router = OptionalSlashRouter()
router.register("sessions", views.SessionViewSet, basename="count-session")
router.register("passes", views.PassViewSet, basename="count-pass")
router.register("lines", views.LineViewSet, basename="count-line")
router.register("unresolved", views.UnresolvedViewSet, basename="count-unresolved")

urlpatterns = router.urls
