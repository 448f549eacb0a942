"""Emit and deliver outgoing webhooks.

`emit` is what every app calls, in its own transaction, at the point where the thing happens: one
event row and one pending delivery per subscribed endpoint, published to Celery after commit. It never
makes an HTTP call, so a slow or dead receiver never slows the pipeline. `deliver` makes one attempt per
due delivery, records it, and backs off (RETRY_DELAYS) until a day after the event; then it gives up.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests
from django.db import transaction

from outreach import clock
from outreach.publishing import publish_ids_after_commit
from outreach.queues import TaskName
from outreach.webhooks_out.models import EventType, WebhookAttempt, WebhookDeliveryOut, WebhookEndpoint, WebhookEvent
from outreach.webhooks_out.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, sign

REQUEST_TIMEOUT_SECONDS = 5
GIVE_UP_AFTER = dt.timedelta(hours=24)
# After attempt n (1-based) the next one waits RETRY_DELAYS[n-1] (the last repeats): ~13 attempts in a day.
RETRY_DELAYS = tuple(dt.timedelta(seconds=s) for s in (30, 120, 600, 1800, 3600, 7200, 14400))
DUE_BATCH = 200


@dataclass(frozen=True)
class Emitted:
    tenant_id: int
    type: str
    data: dict[str, Any]
    occurred_at: dt.datetime | None = None


def emit(*, tenant_id: int, type: EventType | str, data: dict[str, Any],  # noqa: A002 - the event's type
         occurred_at: dt.datetime | None = None) -> int:
    """Record an event for the tenant's endpoints subscribed to `type` (none subscribed: nothing stored).
    Returns the number of deliveries queued."""
    return emit_many([Emitted(tenant_id=tenant_id, type=str(type), data=data, occurred_at=occurred_at)])


def emit_many(events: Iterable[Emitted]) -> int:
    """`emit` for a batch (the engine's hot path): one endpoint query per tenant, bulk inserts."""
    events = list(events)
    if not events:
        return 0
    subscribed: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for endpoint in WebhookEndpoint.objects.filter(tenant_id__in={e.tenant_id for e in events}, is_active=True) \
            .only("id", "tenant_id", "event_types"):
        for event_type in endpoint.event_types or []:
            subscribed[endpoint.tenant_id][event_type].append(endpoint.pk)
    wanted = [e for e in events if subscribed[e.tenant_id].get(e.type)]
    if not wanted:
        return 0
    now = clock.now()
    rows = WebhookEvent.objects.bulk_create([
        WebhookEvent(tenant_id=e.tenant_id, type=e.type, data=e.data, occurred_at=e.occurred_at or now,
                     created_at=now) for e in wanted])
    deliveries = WebhookDeliveryOut.objects.bulk_create([
        WebhookDeliveryOut(tenant_id=e.tenant_id, event=row, endpoint_id=endpoint_id, next_attempt_at=now)
        for e, row in zip(wanted, rows, strict=True) for endpoint_id in subscribed[e.tenant_id][e.type]])
    publish_ids_after_commit(task_name=TaskName.DELIVER_OUTGOING_WEBHOOKS, ids=[d.pk for d in deliveries])
    return len(deliveries)


def payload(event: WebhookEvent) -> bytes:
    return json.dumps({"id": str(event.event_id), "type": event.type, "created_at": event.created_at.isoformat(),
                       "occurred_at": event.occurred_at.isoformat(), "data": event.data},
                      separators=(",", ":"), default=str).encode()


def deliver(*, delivery_ids: Iterable[int]) -> int:
    """One attempt for each due, pending delivery of `delivery_ids`; returns how many succeeded."""
    succeeded = 0
    for delivery_id in delivery_ids:
        with transaction.atomic():
            delivery = (WebhookDeliveryOut.objects.select_for_update(skip_locked=True)
                        .select_related("event", "endpoint")
                        .filter(pk=delivery_id, status=WebhookDeliveryOut.Status.PENDING,
                                next_attempt_at__lte=clock.now()).first())
            if delivery is None:
                continue  # done, not due yet, or another worker has it
            succeeded += _attempt(delivery)
    return succeeded


def _attempt(delivery: WebhookDeliveryOut) -> bool:
    body = payload(delivery.event)
    now = clock.now()
    headers = {"Content-Type": "application/json", EVENT_ID_HEADER: str(delivery.event.event_id),
               SIGNATURE_HEADER: sign(secret=delivery.endpoint.secret, timestamp=int(now.timestamp()), body=body),
               "User-Agent": "Outreach-Webhooks/1"}
    started = time.monotonic()
    status_code, error = None, ""
    try:
        response = requests.post(delivery.endpoint.url, data=body, headers=headers,
                                 timeout=REQUEST_TIMEOUT_SECONDS, allow_redirects=False)
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    WebhookAttempt.objects.create(delivery=delivery, attempted_at=now, status_code=status_code, error=error,
                                  duration_ms=int((time.monotonic() - started) * 1000))
    delivery.attempts += 1
    delivery.last_status_code = status_code
    delivery.last_error = error
    if not error:
        delivery.status, delivery.delivered_at = WebhookDeliveryOut.Status.SUCCEEDED, now
    else:
        delay = RETRY_DELAYS[min(delivery.attempts, len(RETRY_DELAYS)) - 1]
        delivery.next_attempt_at = now + delay
        if delivery.next_attempt_at > delivery.created_at + GIVE_UP_AFTER:
            delivery.status = WebhookDeliveryOut.Status.FAILED
    delivery.save(update_fields=["attempts", "last_status_code", "last_error", "status", "delivered_at",
                                 "next_attempt_at", "updated_at"])
    return not error


def due_delivery_ids(*, limit: int = DUE_BATCH) -> list[int]:
    return list(WebhookDeliveryOut.objects.filter(status=WebhookDeliveryOut.Status.PENDING,
                                                  next_attempt_at__lte=clock.now())
                .order_by("next_attempt_at").values_list("id", flat=True)[:limit])
