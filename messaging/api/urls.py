from django.urls import include, path

urlpatterns = [
    path("", include("messaging.api.unsubscribe_urls")),
    path("", include("messaging.api.sender_urls")),
    path("", include("messaging.api.reply_urls")),
    path("", include("messaging.api.message_urls")),
]
