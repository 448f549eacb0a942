"""Settling ambiguous sends from provider events already stored, whatever order they arrived in.

The webhook path settles an `unknown` row when an event proving acceptance arrives (`webhooks.statuses`).
But the events of a mail can arrive while its row is still `sending`: the request was accepted and SendGrid
reported on it before the read timed out, the worker died or the database dropped. Those events are stored
(and linked to the row) yet settle nothing, because the row was not `unknown` yet; when it becomes `unknown`
later (the ambiguous answer, or lease recovery) no event is left to come. So every move into `unknown` looks
at the stored events at once (`unknown_sends_settle_from_stored`), and the stale-send sweep looks again at
every recently-unknown row (an event committed concurrently with the move is seen by the next pass).
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connection

from messaging.delivery import engine_feed
from messaging.delivery.engine_feed import EngineItem
from messaging.webhooks.statuses import SETTLES_UNKNOWN
from outreach import clock

logger = logging.getLogger(__name__)

UNKNOWN_SWEEP_LIMIT = 1000  # recently-unknown rows looked at per pass

# One statement: the earliest stored acceptance event of each candidate, and the conditional move
# unknown -> sent (a row another transaction settled first is not returned twice). Driven by the
# me_message_event (outbound_message_id, event_type) index.
_SETTLE_SQL = """
WITH ev AS (
    SELECT me.outbound_message_id AS id, min(me.occurred_at) AS at,
           min(NULLIF(split_part(me.raw->>'sg_message_id', '.', 1), '')) AS prefix
    FROM message_events me
    WHERE me.outbound_message_id = ANY(%(ids)s) AND me.event_type = ANY(%(types)s)
    GROUP BY me.outbound_message_id
)
UPDATE outbound_messages m SET status = 'sent', sent_at = COALESCE(m.sent_at, ev.at),
    provider_message_id = COALESCE(m.provider_message_id, ev.prefix),
    status_reason = 'settled by a stored provider event', updated_at = %(now)s
FROM ev
WHERE m.id = ev.id AND m.status = 'unknown'
RETURNING m.id, m.contact_campaign_id, m.node_id, m.node_visit, m.sent_at
"""


def unknown_sends_settle_from_stored(*, message_ids: list[int], feed: bool = True) -> list[EngineItem]:
    """`unknown` rows among `message_ids` with a stored acceptance event -> sent; returns their engine
    `sent` items (fed to the engine here unless `feed` is False: the caller feeds them with its batch)."""
    if not message_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_SQL, {"ids": sorted(set(message_ids)), "types": sorted(SETTLES_UNKNOWN),
                                     "now": clock.now()})
        rows = cursor.fetchall()
    items: list[EngineItem] = [
        engine_feed.outcome_item(message_id=message_id, contact_campaign_id=cc_id, node_id=node_id,
                                 node_visit=node_visit, event_type="sent", occurred_at=sent_at,
                                 detail={"settled_by": "stored_event"})
        for message_id, cc_id, node_id, node_visit, sent_at in rows
    ]
    if rows:
        logger.info("settled %d ambiguous send(s) as sent from stored provider events", len(rows))
    if feed:
        # Through the module attribute: looked up at call time.
        engine_feed.feed_engine(items)
    return items


def unknown_sends_settle_recent(*, lookback: dt.timedelta | None = None,
                                limit: int = UNKNOWN_SWEEP_LIMIT) -> list[int]:
    """The sweep's pass: rows that became `unknown` within the lookback (real time, scaled by CLOCK_SPEED like
    the lost-event sweep's) and have a stored acceptance event are settled as sent. Returns their ids."""
    lookback = lookback or settings.LOST_SEND_EVENTS_LOOKBACK
    since = clock.now() - lookback * settings.CLOCK_SPEED
    with connection.cursor() as cursor:
        # om_status_updated (status, updated_at): only recently-unknown rows are read.
        cursor.execute("SELECT id FROM outbound_messages WHERE status = 'unknown' AND updated_at >= %s "
                       "ORDER BY updated_at DESC LIMIT %s", [since, limit])
        ids = [row[0] for row in cursor.fetchall()]
    return sorted(item[1].outbound_message_id for item in unknown_sends_settle_from_stored(message_ids=ids))
