"""Telling the engine what became of the sends: once per batch, after the batch.

If that call fails or the worker dies first, the lost-event sweep (`recovery.outbound_messages_feed_lost_events`)
finds the rows whose contact campaign never heard and feeds them again.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

import campaigns.interface
from campaigns.interface import EngineEvent
from messaging.models import OutboundMessage

logger = logging.getLogger(__name__)

# (contact campaign id, event): what the engine's batch entry point takes.
EngineItem = tuple[int | None, EngineEvent]


def outcome_item(*, message_id: int, contact_campaign_id: int | None, node_id: str | None, node_visit: int,
                 event_type: str, occurred_at: dt.datetime, detail: dict | None = None) -> EngineItem:
    """The engine event for an outcome (sent, suppressed, send_failed) of the message with these columns
    (what a statement's RETURNING gives, no model instance needed)."""
    return (contact_campaign_id, EngineEvent(
        type=event_type, occurred_at=occurred_at, node_id=node_id or None, node_visit=node_visit,
        outbound_message_id=message_id, detail=detail or {},
    ))


def engine_event(message: OutboundMessage, event_type: str, occurred_at: dt.datetime,
                 detail: dict | None = None) -> EngineItem:
    """The engine event for an outcome of `message` (sent, suppressed, send_failed)."""
    return outcome_item(message_id=message.id, contact_campaign_id=message.contact_campaign_id,
                        node_id=message.node_id, node_visit=message.node_visit, event_type=event_type,
                        occurred_at=occurred_at, detail=detail)


def feed_engine(items: list[EngineItem]) -> None:
    """One engine call for the batch; if it fails, one call per event, so one bad contact campaign does
    not hold back the others' events. Never raises: what fails is fed again by the lost-event sweep."""
    items = [item for item in items if item[0]]
    if not items:
        return
    # Through the interface module (not a name bound at import): looked up at call time.
    try:
        with transaction.atomic():
            campaigns.interface.contact_campaigns_handle_events(items=items)
    except Exception:  # noqa: BLE001 - one bad contact campaign must not hold back the others' events
        logger.exception("engine batch failed; feeding %d events one by one", len(items))
        for cc_id, event in items:
            try:
                with transaction.atomic():
                    campaigns.interface.contact_campaign_handle_event(contact_campaign_id=cc_id, event=event)
            except Exception:  # noqa: BLE001
                # Not lost: the row's status is committed, and outbound_messages_feed_lost_events feeds
                # this outcome again once it is LOST_SEND_EVENTS_GRACE_SECONDS old (every minute until it sticks).
                logger.exception("engine event %s for contact campaign %s failed; the stale-send sweep "
                                 "feeds it again", event.type, cc_id)
