"""/api/v1/ routes for leads, contacts and CSV imports."""
from rest_framework.routers import SimpleRouter

from contacts.api.views import ContactViewSet, ImportJobViewSet, LeadViewSet

router = SimpleRouter(trailing_slash=False)
router.register("leads", LeadViewSet, basename="lead")
router.register("contacts", ContactViewSet, basename="contact")
router.register("imports", ImportJobViewSet, basename="import-job")

urlpatterns = router.urls
