"""What events say about their messages' rows: the delivery status, and settling ambiguous sends."""
from __future__ import annotations

from django.db import connection

from messaging.models import OutboundMessage
from messaging.webhooks.events import NormalisedEvent
from outreach import clock
from outreach.db import fast_cursor

# Any of these proves SendGrid accepted the message: an `unknown` (ambiguous) send settles as sent.
SETTLES_UNKNOWN = frozenset({"processed", "delivered", "deferred", "bounce", "dropped", "open", "click",
                             "spamreport", "unsubscribe", "group_unsubscribe"})
# The status_reason of a row `delivery.unknown_bound` closed as failed (no event within the bound): an
# acceptance event that still comes settles it as sent, like an `unknown` one.
UNKNOWN_BOUND_REASON_PREFIX = "unknown: no provider event"
# Where a message's delivery stands; a later event only moves it forward.
DELIVERY_RANK = {"": 0, "processed": 1, "deferred": 2, "delivered": 3, "blocked": 4, "bounced": 5, "dropped": 5}


def _delivery_status_of(event: NormalisedEvent) -> str:
    if event.event_type == "bounce":
        return "bounced" if event.bounce_type == "hard" else "blocked"
    if event.event_type in ("processed", "deferred", "delivered", "dropped"):
        return event.event_type
    return ""


_UPDATE_DELIVERY_STATUS_SQL = """
UPDATE outbound_messages AS m SET delivery_status = x.st, updated_at = %b
FROM unnest(%b::bigint[], %b::text[], %b::int[]) AS x(id, st, rk)
WHERE m.id = x.id AND (CASE m.delivery_status WHEN 'processed' THEN 1 WHEN 'deferred' THEN 2
    WHEN 'delivered' THEN 3 WHEN 'blocked' THEN 4 WHEN 'bounced' THEN 5 WHEN 'dropped' THEN 5 ELSE 0 END) < x.rk
"""


def delivery_statuses_update(new_events: list[NormalisedEvent]) -> None:
    """Move each message's delivery status forward to the furthest its new events show (one statement)."""
    best: dict[int, str] = {}
    for event in new_events:
        status = _delivery_status_of(event)
        if not status or event.message is None:
            continue
        mid = event.message["id"]
        if DELIVERY_RANK[status] > DELIVERY_RANK.get(best.get(mid, ""), 0):
            best[mid] = status
    if not best:
        return
    ids = list(best)
    with fast_cursor() as cursor:
        cursor.execute(_UPDATE_DELIVERY_STATUS_SQL,
                       [clock.now(), ids, [best[i] for i in ids], [DELIVERY_RANK[best[i]] for i in ids]])


def _settleable(message: dict) -> bool:
    """`unknown`, or failed by the unknown bound: the mail may have gone out, an event proves it did."""
    return message["status"] == OutboundMessage.Status.UNKNOWN or (
        message["status"] == OutboundMessage.Status.FAILED
        and (message.get("status_reason") or "").startswith(UNKNOWN_BOUND_REASON_PREFIX))


def _first_settling_events(new_events: list[NormalisedEvent]) -> dict[int, NormalisedEvent]:
    """For each `unknown` message the batch reports on, its earliest event proving acceptance."""
    first: dict[int, NormalisedEvent] = {}
    for event in new_events:
        if event.event_type in SETTLES_UNKNOWN and event.message is not None and _settleable(event.message):
            mid = event.message["id"]
            if mid not in first or event.timestamp < first[mid].timestamp:
                first[mid] = event
    return first


def unknown_sends_settle(new_events: list[NormalisedEvent]) -> dict[int, NormalisedEvent]:
    """An ambiguous send that SendGrid reports on was accepted: settle it as sent (an `unknown` row, or one the
    unknown bound failed: the engine then hears a late `sent`, a no-op for an ended enrolment), exactly once
    (the conditional UPDATE returns a row only to the transaction that moved it)."""
    first = _first_settling_events(new_events)
    if not first:
        return {}
    ids = list(first)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE outbound_messages AS m SET status = 'sent', sent_at = COALESCE(m.sent_at, x.at), "
            "provider_message_id = COALESCE(m.provider_message_id, NULLIF(x.prefix, '')), "
            "status_reason = 'settled by a provider event', updated_at = %s "
            "FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS x(id, at, prefix) "
            "WHERE m.id = x.id "
            "AND (m.status = 'unknown' OR (m.status = 'failed' AND starts_with(m.status_reason, %s))) "
            "RETURNING m.id",
            [clock.now(), ids, [first[i].occurred_at for i in ids], [first[i].message_prefix for i in ids],
             UNKNOWN_BOUND_REASON_PREFIX],
        )
        settled = {row[0] for row in cursor.fetchall()}
    for event in new_events:
        if event.message is not None and event.message["id"] in settled:
            event.message["status"] = OutboundMessage.Status.SENT
    return {mid: first[mid] for mid in settled}
