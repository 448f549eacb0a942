"""/api/v1/: each app owns its own routes; anything else under /api/v1/ is a JSON 404."""
from django.urls import include, path, re_path

from outreach.api_fallbacks import api_not_found

urlpatterns = [
    path("", include("contacts.api.urls")),
    path("", include("campaigns.api.urls")),
    path("", include("messaging.api.urls")),
    path("", include("outreach.tenancy.api_urls")),
    path("", include("outreach.webhooks_out.api")),
    path("", include("analytics.api.urls")),
    re_path(r"^(?P<unmatched>.*)$", api_not_found),  # last: unknown paths and trailing slashes
]
