from rest_framework.routers import SimpleRouter

from messaging.api.replies import ReplyViewSet

router = SimpleRouter(trailing_slash=False)
router.register("replies", ReplyViewSet, basename="reply")

urlpatterns = router.urls
