"""Feeding the engine from webhook events: one call per batch, in event order, inside the batch's transaction.

Because the event insert and the engine feed commit together, a retry after any failure sees the same events
as new again and feeds them exactly once; events already stored are never fed twice.
"""
from __future__ import annotations

from typing import Any

import campaigns.interface
from campaigns.interface import EngineEvent
from messaging.webhooks.events import NormalisedEvent

# SendGrid event -> engine event type (others only update the delivery status or nothing).
ENGINE_EVENT = {
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "dropped": "dropped",
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
# Order of engine events with equal timestamps.
ENGINE_ORDER = {"sent": 0, "delivered": 1, "open": 2, "click": 3}

# (timestamp, order, message id, (contact campaign id, event)): sorted on the first three.
_Keyed = tuple[float, int, int, tuple[int, EngineEvent]]


def _settled_items(settled: dict[int, NormalisedEvent]) -> list[_Keyed]:
    """A `sent` for each ambiguous send an event settled (its contact campaign never heard one)."""
    keyed: list[_Keyed] = []
    for mid, event in settled.items():
        message = event.message
        if message and message["contact_campaign_id"]:
            keyed.append((event.timestamp, ENGINE_ORDER["sent"], mid, (message["contact_campaign_id"], EngineEvent(
                type="sent", occurred_at=event.occurred_at, node_id=message["node_id"] or None,
                node_visit=message["node_visit"], outbound_message_id=mid, detail={"settled_by": event.event_type},
            ))))
    return keyed


def _detail(engine_type: str, event: NormalisedEvent) -> dict[str, Any]:
    if engine_type == "bounce":
        return {"bounce_type": event.bounce_type, "reason": event.reason[:300]}
    if engine_type == "dropped":
        return {"reason": event.reason[:300]}
    if engine_type == "click":
        return {"url": event.url[:500]}
    return {}


def engine_items(new_events: list[NormalisedEvent], settled: dict[int, NormalisedEvent]
                 ) -> list[tuple[int, EngineEvent]]:
    """The engine events of the batch's new events (and settled sends), in time order."""
    keyed = _settled_items(settled)
    for event in new_events:
        engine_type = ENGINE_EVENT.get(event.event_type)
        message = event.message
        if engine_type is None or message is None or not message["contact_campaign_id"]:
            continue
        keyed.append((event.timestamp, ENGINE_ORDER.get(engine_type, 9), message["id"], (
            message["contact_campaign_id"],
            EngineEvent(type=engine_type, occurred_at=event.occurred_at, node_id=message["node_id"] or None,
                        node_visit=message["node_visit"], outbound_message_id=message["id"],
                        is_machine=event.is_machine, detail=_detail(engine_type, event)),
        )))
    keyed.sort(key=lambda item: item[:3])
    return [item[3] for item in keyed]


def engine_feed(items: list[tuple[int, EngineEvent]]) -> None:
    """One engine call for the batch; raises with it (the batch's transaction rolls back and is retried)."""
    # Through the interface module (not a name bound at import): looked up at call time.
    campaigns.interface.contact_campaigns_handle_events(items=items)
