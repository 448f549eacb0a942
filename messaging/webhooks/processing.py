"""Processing stored webhook deliveries: SendGrid event batches into MessageEvents, the rest of their effects.

Hot path (thousands of events a second), so everything is done per batch of deliveries in
ONE transaction: one deduplicating INSERT ... ON CONFLICT DO NOTHING for the events, one
UPDATE for delivery statuses, one engine call for all transitions. Because the event insert
and the engine feed commit together, a retry after any failure sees the same events as new
again and feeds them exactly once; events already stored are never fed twice.

The steps live in modules of their own: `events` (validation, normalisation), `store` (raw storage,
deduplication), `linking` (events to messages and tenants), `statuses` (delivery status, settling
ambiguous sends), `engine_feed`, `address_policy` (opt-outs and suppressions). This module orchestrates
them and owns the deliveries' own lifecycle (pending -> processed | failed, retries).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, fields

import orjson
from django.db import connection, transaction
from django.db.models import F

from messaging import outgoing_events, stored_events
from messaging.inbound import inbound_delivery_process
from messaging.models import WebhookDelivery
from messaging.webhooks.address_policy import apply_compliance
from messaging.webhooks.engine_feed import engine_feed, engine_items
from messaging.webhooks.events import NormalisedEvent, event_problem, normalise_event
from messaging.webhooks.linking import link_messages, mark_scanner_clicks
from messaging.webhooks.statuses import delivery_statuses_update, unknown_sends_settle
from messaging.webhooks.store import events_insert, events_unique
from outreach import clock

logger = logging.getLogger(__name__)

MAX_PROCESS_ATTEMPTS = 10
# A pending delivery this old (its task was lost, or the worker died mid-transaction: rolled back) is picked up
# by the retry sweep (every 30 s): processed within a minute. Doing one twice is harmless (row locks, dedupe).
PENDING_GRACE = dt.timedelta(seconds=30)
REJECTED_EXCERPT_BYTES = 500


@dataclass
class IngestStats:
    received: int = 0
    new: int = 0
    duplicates: int = 0
    unmatched: int = 0
    engine_events: int = 0
    settled: int = 0
    rejected: int = 0

    def add(self, part: IngestStats) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(part, f.name))


def events_ingest(*, events: list[NormalisedEvent]) -> IngestStats:
    """Normalised events -> message_events, statuses, engine, compliance. Call inside a transaction."""
    stats = IngestStats(received=len(events))
    unique = events_unique(events)
    link_messages(unique)
    mark_scanner_clicks(unique)
    new_keys = events_insert(unique)
    new_events = [e for e in unique if e.dedupe_key in new_keys]
    stats.new = len(new_events)
    stats.duplicates = len(events) - len(new_events)
    stats.unmatched = sum(1 for e in new_events if e.message is None)
    if not new_events:
        return stats
    settled = unknown_sends_settle(new_events)
    stats.settled = len(settled)
    delivery_statuses_update(new_events)
    items = engine_items(new_events, settled)
    if items:
        engine_feed(items)
    stats.engine_events = len(items)
    apply_compliance(new_events)
    outgoing_events.bounced(events=new_events)
    stored_events.events_stored.send(events=new_events)
    return stats


# --------------------------------------------------------------------------------------------
# Deliveries: lock, process, mark; retries
# --------------------------------------------------------------------------------------------

@dataclass
class ProcessReport:
    processed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    events: IngestStats = field(default_factory=IngestStats)


def _lock_event_deliveries(delivery_ids: list[int], *, absorb_pending: int) -> list[tuple[int, bytes]]:
    with connection.cursor() as cursor:
        # SKIP LOCKED: a delivery another worker is processing right now is its business.
        cursor.execute(
            "SELECT id, body FROM webhook_deliveries WHERE id = ANY(%s) AND kind = %s "
            "AND status IN ('pending', 'failed') ORDER BY id FOR UPDATE SKIP LOCKED",
            [delivery_ids, WebhookDelivery.Kind.SENDGRID_EVENTS],
        )
        rows = cursor.fetchall()
        if absorb_pending:
            # Under load, fold other waiting deliveries into this transaction: one commit and one
            # engine pass for several POSTs. Their own tasks then find nothing left to do.
            cursor.execute(
                "SELECT id, body FROM webhook_deliveries WHERE status = 'pending' AND kind = %s "
                "AND NOT (id = ANY(%s)) ORDER BY received_at LIMIT %s FOR UPDATE SKIP LOCKED",
                [WebhookDelivery.Kind.SENDGRID_EVENTS, delivery_ids, absorb_pending],
            )
            rows += cursor.fetchall()
    return rows


def _process_event_deliveries(delivery_ids: list[int], *, absorb_pending: int = 0) -> tuple[list[int], IngestStats]:
    with transaction.atomic():
        rows = _lock_event_deliveries(delivery_ids, absorb_pending=absorb_pending)
        if not rows:
            return [], IngestStats()
        events: list[NormalisedEvent] = []
        rejected: dict[int, list[dict]] = {}
        for delivery_id, body in rows:
            good, bad = _delivery_events(delivery_id, bytes(body))
            events.extend(good)
            if bad:
                rejected[delivery_id] = bad
        stats = events_ingest(events=events)
        stats.rejected = sum(len(bad) for bad in rejected.values())
        locked = sorted(row[0] for row in rows)
        now = clock.now()
        WebhookDelivery.objects.filter(id__in=locked).update(
            status=WebhookDelivery.Status.PROCESSED, processed_at=now, error="", rejected_events=[],
        )
        for delivery_id, bad in rejected.items():
            WebhookDelivery.objects.filter(id=delivery_id).update(rejected_events=bad)
    return locked, stats


def _rejection(index: int, raw: object, reason: str) -> dict:
    """What the admin shows of a rejected event: its place, the reason, and a bounded excerpt (the whole
    original stays in the delivery's body). NULs are escaped by orjson, so the excerpt fits in jsonb."""
    try:
        excerpt = orjson.dumps(raw)[:REJECTED_EXCERPT_BYTES].decode("utf-8", "replace")
    except (TypeError, orjson.JSONEncodeError):
        excerpt = "(not serialisable)"
    return {"index": index, "reason": reason, "event": excerpt}


def _delivery_events(delivery_id: int, body: bytes) -> tuple[list[NormalisedEvent], list[dict]]:
    """A stored batch's events, normalised, and the ones that cannot be stored, each with its reason.

    One bad event (a NUL byte, a wrong type, a timestamp that is no time) must not fail its batch, now or
    on any retry: it is set aside on the delivery (`rejected_events`) and the rest goes on. A body that is
    not an array at all fails the delivery as before (nothing in it can be trusted).
    """
    raws = orjson.loads(body)
    if type(raws) is not list:
        raise ValueError("body is not a JSON array of events")
    check_nul = b"\\u0000" in body  # JSON can carry a NUL only as this escape
    good: list[NormalisedEvent] = []
    bad: list[dict] = []
    for index, raw in enumerate(raws):
        problem = event_problem(raw, check_nul=check_nul)
        if problem is None:
            try:
                good.append(normalise_event(raw, delivery_id=delivery_id))
                continue
            except (TypeError, ValueError, OverflowError) as exc:
                problem = f"cannot be normalised: {exc}"
        logger.warning("webhook delivery %s: event %s rejected: %s", delivery_id, index, problem)
        bad.append(_rejection(index, raw, problem))
    return good, bad


def _mark_failed(delivery_id: int, error: BaseException) -> None:
    WebhookDelivery.objects.filter(id=delivery_id).exclude(status=WebhookDelivery.Status.PROCESSED).update(
        status=WebhookDelivery.Status.FAILED, attempts=F("attempts") + 1,
        error=f"{type(error).__name__}: {error}"[:4000],
    )


def _process_events_alone(delivery_id: int, report: ProcessReport) -> None:
    try:
        done, stats = _process_event_deliveries([delivery_id])
        report.processed.extend(done)
        report.events.add(stats)
    except Exception as exc:  # noqa: BLE001 - left `failed` for the retry sweep
        logger.exception("webhook delivery %s failed", delivery_id)
        _mark_failed(delivery_id, exc)
        report.failed.append(delivery_id)


def _process_events(event_ids: list[int], *, absorb_pending: int, report: ProcessReport) -> None:
    try:
        done, stats = _process_event_deliveries(event_ids, absorb_pending=absorb_pending)
        report.processed.extend(done)
        report.events.add(stats)
    except Exception as exc:  # noqa: BLE001 - isolate the failing delivery below
        if len(event_ids) == 1 and not absorb_pending:
            logger.exception("webhook delivery %s failed", event_ids[0])
            _mark_failed(event_ids[0], exc)
            report.failed.append(event_ids[0])
        else:
            for delivery_id in event_ids:
                _process_events_alone(delivery_id, report)


def _process_inbound(inbound_ids: list[int], report: ProcessReport) -> None:
    for delivery_id in inbound_ids:
        try:
            if inbound_delivery_process(delivery_id=delivery_id):
                report.processed.append(delivery_id)
        except Exception as exc:  # noqa: BLE001
            logger.exception("inbound delivery %s failed", delivery_id)
            _mark_failed(delivery_id, exc)
            report.failed.append(delivery_id)


def webhook_deliveries_process(*, delivery_ids: list[int], absorb_pending: int = 0) -> ProcessReport:
    """Process stored deliveries (both kinds). Event batches go through one transaction (plus up to
    ``absorb_pending`` other waiting event deliveries); if that fails, each requested delivery is
    retried alone so one poison batch cannot hold back the others, and a failing one is left
    `failed` with its error for the retry sweep."""
    report = ProcessReport()
    ids = sorted({int(i) for i in delivery_ids})
    kinds = dict(
        WebhookDelivery.objects.filter(id__in=ids, status__in=["pending", "failed"]).values_list("id", "kind")
    )
    event_ids = [i for i in ids if kinds.get(i) == WebhookDelivery.Kind.SENDGRID_EVENTS]
    inbound_ids = [i for i in ids if kinds.get(i) == WebhookDelivery.Kind.SENDGRID_INBOUND]
    if event_ids:
        _process_events(event_ids, absorb_pending=absorb_pending, report=report)
    if inbound_ids:
        _process_inbound(inbound_ids, report)
    return report


def webhook_deliveries_due_for_retry(*, limit: int = 200) -> list[int]:
    """Pending rows whose task never ran (lost enqueue) and failed rows whose back-off has passed
    (1, 2, 4 ... minutes after receipt), up to MAX_PROCESS_ATTEMPTS; past that an operator looks."""
    now = clock.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "(SELECT id FROM webhook_deliveries WHERE status = 'pending' AND received_at < %s "
            " ORDER BY received_at LIMIT %s) UNION ALL "
            "(SELECT id FROM webhook_deliveries WHERE status = 'failed' AND attempts < %s "
            " AND received_at + make_interval(mins => power(2, LEAST(attempts, 12))::int) < %s "
            " ORDER BY received_at LIMIT %s)",
            [now - PENDING_GRACE, limit, MAX_PROCESS_ATTEMPTS, now, limit],
        )
        return [row[0] for row in cursor.fetchall()]
