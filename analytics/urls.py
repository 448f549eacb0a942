"""Operations endpoints of analytics: /metrics (Prometheus, token) and /health/ (load balancers)."""
from django.urls import path

from analytics.health_view import health_view
from analytics.prometheus import prometheus_metrics_view

urlpatterns = [
    path("metrics", prometheus_metrics_view, name="prometheus-metrics"),
    path("health/", health_view, name="health"),
]
