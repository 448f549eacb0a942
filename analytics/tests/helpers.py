"""Posting SendGrid events through the real ingest path, and reading rollups back."""
from __future__ import annotations

import datetime as dt

import orjson

from analytics.models import CampaignDaily, ContactHourly, DomainDaily, SenderDaily, TenantDaily
from analytics.rollups import rollups_catch_up
from messaging.models import OutboundMessage, WebhookDelivery
from messaging.tests.factories import WebhookDeliveryFactory, sendgrid_event
from messaging.webhooks.processing import webhook_deliveries_process

T0 = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def event(message: OutboundMessage, kind: str, at: dt.datetime, **fields) -> dict:
    return sendgrid_event(message, kind, timestamp=int(at.timestamp()), **fields)


def ingest(events: list[dict]) -> WebhookDelivery:
    """One webhook delivery of these events, processed like the webhooks queue does."""
    delivery = WebhookDeliveryFactory(body=orjson.dumps(events))
    webhook_deliveries_process(delivery_ids=[delivery.id])
    return delivery


def reprocess(delivery: WebhookDelivery) -> None:
    """The same stored delivery processed again (a retry after a lost acknowledgement)."""
    WebhookDelivery.objects.filter(id=delivery.id).update(status=WebhookDelivery.Status.PENDING)
    webhook_deliveries_process(delivery_ids=[delivery.id])


def totals(model=TenantDaily, **filters) -> dict[str, int]:
    rollups_catch_up()
    out: dict[str, int] = {}
    for metric, n in model.objects.filter(**filters).values_list("metric", "n"):
        out[metric] = out.get(metric, 0) + n
    return {k: v for k, v in out.items() if v}


ALL_ROLLUPS = (ContactHourly, CampaignDaily, TenantDaily, SenderDaily, DomainDaily)
