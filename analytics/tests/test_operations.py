"""Pipeline health where operators and machines look: /metrics (Prometheus, token), /health/, the admin index."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from analytics.models import PendingFact
from messaging.tests.factories import WebhookDeliveryFactory
from outreach import clock

pytestmark = pytest.mark.django_db


def _stale_fact(seconds: int) -> None:
    PendingFact.objects.create(tenant_id=1, kind="delivered", occurred_at=clock.now(),
                               stored_at=clock.now() - dt.timedelta(seconds=seconds))


def test_metrics_is_off_without_a_token_and_refuses_a_wrong_one(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_metrics_exports_backlogs_lag_and_queue_lengths(client, settings):
    settings.METRICS_TOKEN = "s3cret"
    WebhookDeliveryFactory.create_batch(2)
    _stale_fact(42)
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "outreach_webhook_deliveries_pending 2.0" in text
    assert "outreach_rollup_pending_facts 1.0" in text
    lag = float(re.search(r"^outreach_rollup_lag_seconds (\S+)$", text, re.M).group(1))
    assert 42 <= lag < 100
    assert 'outreach_celery_queue_length{queue="webhooks"}' in text


def test_health_is_200_when_everything_answers(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "broker": "ok",
                                                          "rollup_lag": "ok"}}


def test_health_is_503_naming_the_check_when_rollups_fall_behind_or_the_broker_is_gone(client, settings):
    settings.HEALTH_MAX_ROLLUP_LAG_SECONDS = 60
    _stale_fact(600)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 503 and body["status"] == "failing"
    assert body["checks"]["rollup_lag"].startswith("failed: RuntimeError: rollups 600 s behind")
    assert body["checks"]["broker"].startswith("failed: ConnectionError")
    assert body["checks"]["database"] == "ok"


def test_the_admin_index_shows_the_pipeline(admin_client):
    WebhookDeliveryFactory()
    _stale_fact(30)
    html = admin_client.get("/admin/").content.decode()
    assert "Webhook deliveries pending: 1, failed: 0" in html
    assert re.search(r"Rollup lag: (3\d) s", html)
