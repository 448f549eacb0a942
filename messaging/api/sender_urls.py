"""/api/v1/sender-identities."""
from rest_framework.routers import SimpleRouter

from messaging.api.senders import SenderIdentityViewSet

router = SimpleRouter(trailing_slash=False)
router.register("sender-identities", SenderIdentityViewSet, basename="sender-identity")

urlpatterns = router.urls
