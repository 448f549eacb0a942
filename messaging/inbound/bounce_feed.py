"""A bounce notice received as mail goes the way of a webhook bounce: the same normalised event, through the
same ingest (message_events row, the outbox row's delivery status, the engine's bounce, suppressions:
messaging.webhooks.address_policy). Nothing is duplicated here but the event's shape."""
from __future__ import annotations

import datetime as dt

from messaging.inbound.bounces import Bounce
from messaging.inbound.matching import InboundMatch


def inbound_bounce_ingest(*, bounce: Bounce, match: InboundMatch, from_email: str, received_at: dt.datetime,
                          delivery_id: int, reference: str) -> None:
    # Imported here: messaging.webhooks.processing imports this package (it calls inbound_delivery_process).
    from messaging.webhooks.events import normalise_event
    from messaging.webhooks.processing import events_ingest

    outbound = match.outbound
    recipient = bounce.recipient or (outbound.to_address if outbound is not None else "") or from_email
    if not recipient:
        return
    event = {
        "event": "bounce",
        # SendGrid's "blocked" bounce type is what the webhook path reads as soft.
        "type": "bounce" if bounce.bounce_type == "hard" else "blocked",
        "email": recipient,
        "timestamp": received_at.timestamp(),
        "reason": f"inbound bounce notice ({bounce.reason}) {bounce.status} {reference}".strip()[:500],
    }
    if outbound is not None and outbound.to_address.strip().lower() == recipient.strip().lower():
        event["outbound_message_id"] = outbound.id
        event["tenant_id"] = outbound.tenant_id
    elif match.tenant_id is not None:
        event["tenant_id"] = match.tenant_id
    events_ingest(events=[normalise_event(event, delivery_id=delivery_id)])
