"""The bound on ambiguous sends: an `unknown` row no provider event ever settles is closed as failed.

A worker killed after recording a request's start but before the request left leaves its row `unknown`
(lease recovery cannot tell it from a request that went out). SendGrid never heard of that mail, so no event
will settle it and its enrolment would wait forever. SendGrid retries event webhooks for 72 h, so a mail it
accepted has produced an event within SENDGRID_UNKNOWN_SETTLE_HOURS (73 h, clock time: on the demo's fast
clock that is seconds): past that, with no acceptance event stored, the row is `failed` (never resent: it
may still have gone out) and the engine hears `send_failed`, as for a permanent refusal. An acceptance
event that arrives later still settles the row as sent (`webhooks.statuses`, by UNKNOWN_BOUND_REASON_PREFIX).
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import connection

from messaging.delivery import engine_feed
from messaging.delivery.engine_feed import EngineItem
from messaging.delivery.settling import unknown_sends_settle_from_stored
from messaging.webhooks.statuses import SETTLES_UNKNOWN, UNKNOWN_BOUND_REASON_PREFIX
from outreach import clock

logger = logging.getLogger(__name__)

UNKNOWN_BOUND_PAGE_SIZE = 500  # rows one statement closes (and one engine call feeds)
UNKNOWN_BOUND_MAX_PAGES = 20  # up to 10,000 closed a pass (every 20 s), the rest the next pass

# A page: the oldest `unknown` rows past the bound, driven by om_status_updated (status, updated_at): one
# equality, one range, in index order, so only rows past the bound are read. Those with a stored acceptance
# event are settled as sent (`settling`, one statement); the rest are failed in one statement that checks
# again, through me_message_event (outbound_message_id, event_type), that no acceptance event is stored.
_PAST_BOUND_SQL = """
SELECT id FROM outbound_messages WHERE status = 'unknown' AND updated_at < %(cutoff)s
ORDER BY updated_at LIMIT %(limit)s
"""
_CLOSE_SQL = """
UPDATE outbound_messages m SET status = 'failed', status_reason = %(reason)s, next_attempt_at = NULL,
    updated_at = %(now)s
WHERE m.id = ANY(%(ids)s) AND m.status = 'unknown'
  AND NOT EXISTS (SELECT 1 FROM message_events me
                  WHERE me.outbound_message_id = m.id AND me.event_type = ANY(%(types)s))
RETURNING m.id, m.contact_campaign_id, m.node_id, m.node_visit
"""


def unknown_bound_reason(hours: float) -> str:
    return f"{UNKNOWN_BOUND_REASON_PREFIX} within {hours:g} h; never resent"


def _close_page(ids: list[int], *, reason: str, now: dt.datetime) -> list[int]:
    """Fail the page's rows no acceptance event settles; the engine hears `send_failed` (one call)."""
    with connection.cursor() as cursor:
        cursor.execute(_CLOSE_SQL, {"ids": ids, "types": sorted(SETTLES_UNKNOWN), "reason": reason, "now": now})
        rows = cursor.fetchall()
    items: list[EngineItem] = [
        engine_feed.outcome_item(message_id=message_id, contact_campaign_id=cc_id, node_id=node_id,
                                 node_visit=node_visit, event_type="send_failed", occurred_at=now,
                                 detail={"reason": reason})
        for message_id, cc_id, node_id, node_visit in rows
    ]
    # Through the module attribute: looked up at call time.
    engine_feed.feed_engine(items)
    return [row[0] for row in rows]


def unknown_sends_close_unheard(*, hours: float | None = None, page_size: int = UNKNOWN_BOUND_PAGE_SIZE,
                                max_pages: int = UNKNOWN_BOUND_MAX_PAGES) -> dict[str, list[int]]:
    """`unknown` rows older than the bound (clock hours): those with a stored acceptance event -> sent, the
    others -> failed, never resent, the engine hearing `send_failed`. Returns ids by ``settled`` / ``failed``."""
    hours = settings.SENDGRID_UNKNOWN_SETTLE_HOURS if hours is None else hours
    reason = unknown_bound_reason(hours)
    settled: list[int] = []
    failed: list[int] = []
    for _ in range(max_pages):
        now = clock.now()
        with connection.cursor() as cursor:
            cursor.execute(_PAST_BOUND_SQL, {"cutoff": now - dt.timedelta(hours=hours), "limit": page_size})
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            break
        settled.extend(item[1].outbound_message_id for item in unknown_sends_settle_from_stored(message_ids=ids))
        failed.extend(_close_page(ids, reason=reason, now=now))
        if len(ids) < page_size:
            break
    if failed:
        logger.warning("%d ambiguous send(s) heard nothing from the provider in %g h: failed, not resent",
                       len(failed), hours)
    return {"settled": sorted(settled), "failed": sorted(failed)}
