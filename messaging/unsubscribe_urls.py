from django.urls import path

from messaging.unsubscribe_views import unsubscribe

urlpatterns = [
    path("unsubscribe", unsubscribe, name="unsubscribe"),
]
