from django.urls import path

from messaging.api.unsubscribes import (
    SuppressionDomainsView,
    SuppressionsView,
    UnsubscribeLinkView,
    UnsubscribeStatsView,
    UnsubscribeStatusView,
    UnsubscribesView,
)

urlpatterns = [
    path("unsubscribes", UnsubscribesView.as_view(), name="unsubscribes"),
    path("unsubscribes/status", UnsubscribeStatusView.as_view(), name="unsubscribe-status"),
    path("unsubscribes/stats", UnsubscribeStatsView.as_view(), name="unsubscribe-stats"),
    path("unsubscribes/link", UnsubscribeLinkView.as_view(), name="unsubscribe-link"),
    path("suppressions", SuppressionsView.as_view(), name="suppressions"),
    path("suppressions/domains", SuppressionDomainsView.as_view(), name="suppression-domains"),
]
