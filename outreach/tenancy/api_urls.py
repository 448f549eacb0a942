"""/api/v1/api-keys and /api/v1/members."""
from rest_framework.routers import SimpleRouter

from outreach.tenancy.api_views import ApiKeyViewSet, MembershipViewSet

router = SimpleRouter(trailing_slash=False)
router.register("api-keys", ApiKeyViewSet, basename="api-key")
router.register("members", MembershipViewSet, basename="member")

urlpatterns = router.urls
