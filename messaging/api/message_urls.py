"""/api/v1/messages."""
from rest_framework.routers import SimpleRouter

from messaging.api.messages import MessageViewSet

router = SimpleRouter(trailing_slash=False)
router.register("messages", MessageViewSet, basename="message")

urlpatterns = router.urls
