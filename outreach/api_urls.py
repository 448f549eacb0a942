"""/api/v1/: each app owns its own routes."""
from django.urls import include, path

urlpatterns = [
    path("", include("contacts.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("messaging.api.urls")),
    path("", include("outreach.tenancy.api_urls")),
]
