"""What analytics hears from messaging: newly stored events and replies, written down as pending facts.

Both listeners run inside the transaction that stores the event (or reply), so the pending fact commits
(or rolls back) with it; the rollup pass counts it later (analytics.rollups). Only what messaging reports
as new arrives here, so a replayed or re-processed event writes nothing.
"""
from __future__ import annotations

from typing import Any

from analytics.models import PendingFact
from outreach import clock
from outreach.db import insert_rows

# The SendGrid events a metric counts (analytics.facts.METRIC_CASE); others are not written down.
COUNTED_EVENTS = frozenset({"processed", "delivered", "deferred", "bounce", "dropped", "open", "click",
                            "unsubscribe", "group_unsubscribe", "spamreport"})


def _detail(event: Any) -> str:
    if event.event_type == "bounce":
        return event.bounce_type
    return "machine" if event.is_machine else ""


def events_stored(*, events: list[Any]) -> None:
    """messaging.interface.events_stored: the new message events of one ingest transaction."""
    now = clock.now()
    rows = [{"tenant_id": e.tenant_id, "message_id": e.message["id"] if e.message else None,
             "kind": e.event_type, "detail": _detail(e), "email": e.email, "occurred_at": e.occurred_at,
             "stored_at": now}
            for e in events if e.tenant_id is not None and e.event_type in COUNTED_EVENTS]
    insert_rows(PendingFact, rows, now=now)


def reply_stored(*, inbound: Any) -> None:
    """messaging.interface.reply_stored: one new inbound message (counted when it is a reply)."""
    if inbound.tenant_id is None or inbound.kind != "reply":
        return
    PendingFact.objects.create(tenant_id=inbound.tenant_id, message_id=inbound.outbound_message_id, kind="reply",
                               detail=inbound.classification, email=inbound.from_email,
                               occurred_at=inbound.received_at, stored_at=clock.now())
