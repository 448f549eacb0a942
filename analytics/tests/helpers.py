"""Posting SendGrid events through the real ingest path, and reading rollups back."""
from __future__ import annotations

import datetime as dt

import orjson
from django.db.models import Sum

from analytics.metrics import COUNTS
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
    """The non-zero counts of the rows matching `filters`, summed (after counting what is pending)."""
    rollups_catch_up()
    sums = model.objects.filter(**filters).aggregate(**{name: Sum(name) for name in COUNTS})
    return {name: n for name, n in sums.items() if n}


ALL_ROLLUPS = (ContactHourly, CampaignDaily, TenantDaily, SenderDaily, DomainDaily)
