"""/api/v1/metrics/ routes."""
from django.urls import path

from analytics.api.views import CampaignMetricsView, DomainMetricsView, SenderMetricsView, TenantMetricsView

urlpatterns = [
    path("metrics/campaigns/<int:campaign_id>", CampaignMetricsView.as_view(), name="metrics-campaign"),
    path("metrics/tenant", TenantMetricsView.as_view(), name="metrics-tenant"),
    path("metrics/senders", SenderMetricsView.as_view(), name="metrics-senders"),
    path("metrics/domains", DomainMetricsView.as_view(), name="metrics-domains"),
]
