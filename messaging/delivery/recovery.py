"""What a dead worker or a failed engine call left behind (beat task ``campaign_execution.recover_stale_sends``).

- Stale claims: rows left in `sending` past the lease (SENDING_LEASE, far above the request timeout: a live
  worker is done by then) are re-queued when the request provably never went out, else marked `unknown`.
- Ambiguous sends: recently-`unknown` rows whose provider events are already stored (they arrived while the
  row was still `sending`) are settled as sent (`settling`); those no event settles within
  SENDGRID_UNKNOWN_SETTLE_HOURS are failed, never resent (`unknown_bound`).
- Lost events: settled rows whose contact campaign never heard the outcome are fed to the engine again.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.db import connection, transaction

import campaigns.interface
from campaigns.interface import EngineEvent
from messaging.delivery import engine_feed
from messaging.delivery.engine_feed import EngineItem
from messaging.delivery.settling import unknown_sends_settle_recent
from messaging.delivery.unknown_bound import unknown_sends_close_unheard
from messaging.models import OutboundMessage
from outreach import clock

logger = logging.getLogger(__name__)

# Lost-event sweep (outbound_messages_feed_lost_events): a settled row whose outcome the engine has not heard
# LOST_SEND_EVENTS_GRACE_SECONDS after (clock time, like the rows' timestamps) is fed again. It looks back
# LOST_SEND_EVENTS_LOOKBACK in REAL time (multiplied by CLOCK_SPEED: the demo's beat still ticks every real
# minute). Only a sweep outage longer than that loses an event for good. It is also what each pass costs:
# one index entry and one primary-key probe per message settled in the window (measured: ~85 ms for the
# 62,000 sends of 6 hours at 3 a second).
LOST_EVENT_PAGE_SIZE = 500  # one engine call per page
LOST_EVENT_MAX_PAGES = 20  # per outcome and pass: up to 10,000 of each fed a minute, the rest the next minute
STALE_CLAIMS_PER_PASS = 1000


def outbound_messages_recover_stale(*, lease: dt.timedelta | None = None) -> dict[str, list[int]]:
    """What a dead worker left behind (beat task ``campaign_execution.recover_stale_sends``, every minute).

    Rows left in `sending` past the lease (the worker died between claim and outcome):

    - ``send_started_at`` empty: the request provably never went out -> back to queued, re-armed now.
    - ``send_started_at`` set: it may have gone out -> ``unknown`` (never resent blindly; a webhook
      event for it settles it as sent, otherwise an operator decides).

    Then recently-`unknown` rows whose acceptance events are already stored (they came while the row was
    still `sending`: the read timed out, the worker or the database went away) are settled as sent
    (``settled``), whatever order the event and the ambiguity arrived in. Then `unknown` rows with no stored
    event past SENDGRID_UNKNOWN_SETTLE_HOURS are failed, never resent (``unheard_failed``, `unknown_bound`).
    Then outcomes the engine never heard (``outbound_messages_feed_lost_events``); each part runs even if an
    earlier one failed: ``refed`` lists the messages whose outcome was fed again.
    """
    unknown: list[int] = []
    requeued: list[int] = []
    settled: list[int] = []
    unheard: list[int] = []
    try:
        unknown, requeued = _recover_stale_claims(lease=lease)
    finally:
        try:
            settled = unknown_sends_settle_recent()
        finally:
            try:
                past_bound = unknown_sends_close_unheard()
                settled, unheard = sorted(settled + past_bound["settled"]), past_bound["failed"]
            finally:
                refed = outbound_messages_feed_lost_events()
    return {"unknown": unknown, "requeued": requeued, "settled": settled, "unheard_failed": unheard,
            "refed": sorted(i for ids in refed.values() for i in ids)}


def _recover_stale_claims(*, lease: dt.timedelta | None) -> tuple[list[int], list[int]]:
    now = clock.now()
    cutoff = now - (lease or settings.SENDING_LEASE)
    requeued: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE outbound_messages SET status = 'unknown', updated_at = %s, "
            "status_reason = 'ambiguous: worker lost after the request started' "
            "WHERE status = 'sending' AND claimed_at < %s AND send_started_at IS NOT NULL RETURNING id",
            [now, cutoff],
        )
        unknown = sorted(row[0] for row in cursor.fetchall())
        cursor.execute(
            "SELECT id FROM outbound_messages WHERE status = 'sending' AND claimed_at < %s "
            "AND send_started_at IS NULL ORDER BY id LIMIT %s",
            [cutoff, STALE_CLAIMS_PER_PASS],
        )
        candidates = [row[0] for row in cursor.fetchall()]
    for message_id in candidates:
        with transaction.atomic():
            moved = OutboundMessage.objects.filter(
                id=message_id, status=OutboundMessage.Status.SENDING, claimed_at__lt=cutoff,
                send_started_at__isnull=True,
            ).update(status=OutboundMessage.Status.QUEUED, claimed_at=None, next_attempt_at=now,
                     status_reason="lease expired before the request started", updated_at=now)
            if moved:
                campaigns.interface.send_action_reschedule(outbound_message_id=message_id, not_before=now,
                                                           reason="lease expired before send")
                requeued.append(message_id)
    if unknown or requeued:
        logger.warning("stale sends: %d marked unknown, %d re-queued", len(unknown), len(requeued))
    return unknown, requeued


# Outcome (row status) -> the engine event delivery feeds for it.
_OUTCOME_EVENTS = {
    OutboundMessage.Status.SENT: "sent",
    OutboundMessage.Status.SUPPRESSED: "suppressed",
    OutboundMessage.Status.FAILED: "send_failed",
}

# Settled messages whose contact campaign is still at that message's node visit without having heard of it:
# the engine call after the batch failed or the worker died before it. (A heard `sent` sets node_sent_at; a
# heard `suppressed` / `send_failed` ends the contact campaign, so it is no longer active or paused.)
#
# Plan: driven from outbound_messages by the om_status_updated (status, updated_at) index, one equality and
# one range, the window being [now - lookback, now - grace): only recently settled rows are read, each joined
# to its contact campaign by primary key (nested loop), then filtered. Not from contact_campaigns: its
# status index leads with tenant_id (no use across tenants), and "active with node_sent_at NULL" is every
# contact campaign whose send is queued, held or waiting, a set unrelated to recency that grows with the
# backlog. Settling bumps updated_at (sent, suppressed, failed, and the webhook's unknown -> sent), later
# updates only move it forward, so every settled row spends the whole lookback inside the window.
# Keyset pages on (updated_at, id): a page of rows the engine keeps refusing cannot starve later ones.
_LOST_EVENTS_SQL = """
    SELECT om.id, om.contact_campaign_id, om.node_id, om.node_visit, om.sent_at, om.updated_at, om.status_reason
    FROM outbound_messages om
    JOIN contact_campaigns cc ON cc.id = om.contact_campaign_id
    WHERE om.status = %(status)s
      AND om.updated_at >= %(after_at)s AND om.updated_at < %(until)s
      AND (om.updated_at, om.id) > (%(after_at)s, %(after_id)s)
      AND cc.status IN ('active', 'paused')
      AND cc.current_node_id = om.node_id AND cc.node_visit = om.node_visit
      AND cc.node_sent_at IS NULL
    ORDER BY om.updated_at, om.id
    LIMIT %(limit)s
"""


def _lost_event_items(rows: list[tuple], event_type: str) -> list[EngineItem]:
    items: list[EngineItem] = []
    for message_id, cc_id, node_id, node_visit, sent_at, updated_at, status_reason in rows:
        detail: dict[str, Any] = {"recovered": True}
        if event_type != "sent" and status_reason:
            detail["reason"] = status_reason
        items.append((cc_id, EngineEvent(
            type=event_type, occurred_at=sent_at if event_type == "sent" else updated_at,
            node_id=node_id or None, node_visit=node_visit, outbound_message_id=message_id, detail=detail,
        )))
    return items


def _feed_lost_of_status(status: str, event_type: str, *, since: dt.datetime, until: dt.datetime,
                         page_size: int, max_pages: int) -> list[int]:
    """Keyset pages of one outcome's lost events, one engine call a page; returns the message ids fed."""
    fed: list[int] = []
    after_at, after_id = since, 0
    for _ in range(max_pages):
        with connection.cursor() as cursor:
            cursor.execute(_LOST_EVENTS_SQL, {"status": status, "after_at": after_at, "after_id": after_id,
                                              "until": until, "limit": page_size})
            rows = cursor.fetchall()
        if not rows:
            break
        fed.extend(row[0] for row in rows)
        # Through the module attribute: looked up at call time.
        engine_feed.feed_engine(_lost_event_items(rows, event_type))
        after_at, after_id = rows[-1][5], rows[-1][0]
        if len(rows) < page_size:
            break
    return fed


def outbound_messages_feed_lost_events(*, grace: dt.timedelta | None = None, lookback: dt.timedelta | None = None,
                                       page_size: int = LOST_EVENT_PAGE_SIZE,
                                       max_pages: int = LOST_EVENT_MAX_PAGES) -> dict[str, list[int]]:
    """Feed the engine the `sent` / `suppressed` / `send_failed` it never heard; returns message ids by event.

    Delivery tells the engine once per batch, after the batch (the hot path stays batched); a worker that
    dies or an engine call that fails in between would otherwise leave the node without its timeouts for
    good. Anything settled more than ``grace`` ago (clock time) and at most ``lookback`` ago (real time)
    whose contact campaign has not heard is fed again, in one engine call per page. Feeding twice is
    harmless: the engine records a second `sent` as a duplicate and arms nothing, and a finished contact
    campaign only records a policy event.
    """
    now = clock.now()
    grace = grace if grace is not None else dt.timedelta(seconds=settings.LOST_SEND_EVENTS_GRACE_SECONDS)
    lookback = lookback or settings.LOST_SEND_EVENTS_LOOKBACK
    until = now - grace
    since = now - lookback * settings.CLOCK_SPEED
    fed = {event_type: _feed_lost_of_status(status, event_type, since=since, until=until, page_size=page_size,
                                            max_pages=max_pages)
           for status, event_type in _OUTCOME_EVENTS.items()}
    if any(fed.values()):
        logger.warning("engine had not heard of %s; fed again",
                       ", ".join(f"{len(ids)} {event}" for event, ids in fed.items() if ids))
    return fed
