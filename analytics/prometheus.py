"""GET /metrics: the pipeline's health figures for Prometheus (prometheus-client's text format).

Read at scrape time by a custom collector over a registry of its own (not the process-global one, which
would also export this process' Python and GC figures under the same names from every worker). Protected by
a bearer token (METRICS_TOKEN); without one the endpoint answers 404, so an install that never configured
it exposes nothing.
"""
from __future__ import annotations

import hmac
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from analytics.health import pipeline_health

_GAUGES = (
    ("outreach_due_actions_unclaimed", "Scheduled actions due and not yet claimed", "due_actions_unclaimed"),
    ("outreach_due_actions_oldest_age_seconds", "Age of the oldest due unclaimed action",
     "due_actions_oldest_age_seconds"),
    ("outreach_webhook_deliveries_pending", "Stored webhook deliveries not processed yet",
     "webhook_deliveries_pending"),
    ("outreach_webhook_deliveries_oldest_age_seconds", "Age of the oldest pending webhook delivery",
     "webhook_deliveries_oldest_age_seconds"),
    ("outreach_webhook_deliveries_failed", "Webhook deliveries whose processing failed", "webhook_deliveries_failed"),
    ("outreach_outbox_unknown", "Outbound messages in status unknown (ambiguous send)", "outbox_unknown"),
    ("outreach_outbox_sending", "Outbound messages in status sending", "outbox_sending"),
    ("outreach_rollup_pending_facts", "Stored events not yet counted in the rollups", "rollup_pending_facts"),
    ("outreach_rollup_lag_seconds", "Age of the oldest event not yet counted in the rollups", "rollup_lag_seconds"),
)


class PipelineCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        health = pipeline_health()
        for name, help_text, attribute in _GAUGES:
            yield GaugeMetricFamily(name, help_text, value=getattr(health, attribute))
        queues = GaugeMetricFamily("outreach_celery_queue_length", "Messages waiting in a Celery queue "
                                   "(-1: broker unreachable)", labels=["queue"])
        for queue, length in health.celery_queue_lengths.items():
            queues.add_metric([queue], length)
        yield queues


_REGISTRY = CollectorRegistry(auto_describe=False)
_REGISTRY.register(PipelineCollector())


def _authorised(request: HttpRequest) -> bool:
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {settings.METRICS_TOKEN}".encode())


def prometheus_metrics_view(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_TOKEN:
        return HttpResponse("Not found\n", status=404, content_type="text/plain")
    if not _authorised(request):
        response = HttpResponse("A bearer token (METRICS_TOKEN) is needed\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_REGISTRY), content_type=CONTENT_TYPE_LATEST)
