"""A batch of queued outbox rows: claim, check policy, reserve rate-limit room, send, tell the engine once."""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import QuerySet

from messaging.delivery import claiming, engine_feed, outage, outcomes, policy, window
from messaging.delivery.engine_feed import EngineItem
from messaging.delivery.outcomes import Breaker, DeliveryReport
from messaging.delivery.rendering import thread_for, threads_for
from messaging.delivery.sending import rate_limit_candidate, send_one
from messaging.models import OutboundMessage
from messaging.rate_limits import RateLimitDecision, send_rate_limits_release, send_rate_limits_reserve
from outreach import clock
from outreach.tenancy.selectors import global_sending_stopped

logger = logging.getLogger(__name__)


def _claimed_messages(claimed: list[int]) -> QuerySet[OutboundMessage]:
    return (
        OutboundMessage.objects.filter(id__in=claimed)
        .select_related("tenant", "contact", "sender_identity", "contact_campaign__campaign__sender_identity")
        .order_by("id")
    )


def _apply_policy(messages: list[OutboundMessage], *, global_stop: bool, blocks: dict[tuple[int, str], str],
                  claimed_at: dt.datetime, report: DeliveryReport,
                  engine_items: list[EngineItem]) -> list[OutboundMessage]:
    """Settle what policy refuses; returns the messages it lets through."""
    sendable: list[OutboundMessage] = []
    for message in messages:
        try:
            verdict = policy.send_policy(message=message, global_stop=global_stop,
                                         block_reason=blocks.get((message.tenant_id, message.to_address)))
            if verdict is None:
                sendable.append(message)
                continue
            outcomes.settle_by_policy(message, verdict, claimed_at=claimed_at, report=report,
                                      engine_items=engine_items)
        except Exception:  # noqa: BLE001 - one broken row must not strand the rest of the batch
            # The row stays `sending`; lease recovery re-queues it if the request never started,
            # or marks it unknown if it did.
            logger.exception("delivery of outbound message %s failed unexpectedly", message.id)
    return sendable


def _hold_during_outage(sendable: list[OutboundMessage], gate: outage.Gate, *, claimed_at: dt.datetime,
                        report: DeliveryReport) -> list[OutboundMessage]:
    """An open breaker holds the whole batch until its next probe (no request, no attempt); otherwise all go
    (a half-open probe is simply the batch's first request, which delivery always sends alone)."""
    if gate.hold_until is None:
        return sendable
    for message in sendable:
        if claiming.hold(message, claimed_at=claimed_at, reason="provider_outage", not_before=gate.hold_until):
            report.paused.append(message.id)
    return []


def _send_all(sendable: list[OutboundMessage], limits: RateLimitDecision, *, claimed_at: dt.datetime,
              threads: dict[int, list[dict]],
              report: DeliveryReport, engine_items: list[EngineItem]) -> None:
    breaker: Breaker | None = None
    for message in sendable:
        try:
            deferral = limits.deferred.get(message.id)
            if deferral is not None:
                # Over a cap: deferred to when its window has room, never dropped; no attempt counted.
                if claiming.hold(message, claimed_at=claimed_at, reason=deferral.reason,
                                 not_before=deferral.not_before):
                    report.rate_limited.append(message.id)
                continue
            if breaker is not None:
                if claiming.hold(message, claimed_at=claimed_at, reason=f"batch_paused:{breaker.reason}",
                                 not_before=breaker.not_before):
                    report.held.append(message.id)
                continue
            breaker = send_one(message, claimed_at=claimed_at, thread=thread_for(message, threads), report=report,
                               engine_items=engine_items)
        except Exception:  # noqa: BLE001 - one broken row must not strand the rest of the batch
            logger.exception("delivery of outbound message %s failed unexpectedly", message.id)
            # It may have reached SendGrid: its reserved room stays used.
            limits.charged.pop(message.id, None)


def outbound_messages_deliver(*, outbound_message_ids: list[int]) -> DeliveryReport:
    """Claim, check policy, render and send a batch of queued messages; tell the engine once."""
    report = DeliveryReport()
    ids = sorted({int(i) for i in outbound_message_ids})
    if not ids:
        return report
    claimed_at = clock.now()
    claimed = claiming.claim(ids, claimed_at)
    report.not_claimed = sorted(set(ids) - set(claimed))
    if not claimed:
        return report
    messages = list(_claimed_messages(claimed))
    global_stop = global_sending_stopped()
    blocks = policy.batch_block_reasons(messages)
    threads = threads_for(messages)
    engine_items: list[EngineItem] = []
    sendable = _apply_policy(messages, global_stop=global_stop, blocks=blocks, claimed_at=claimed_at, report=report,
                             engine_items=engine_items)
    # The provider outage breaker (every worker's view): while open, nothing is sent and nothing counts.
    sendable = _hold_during_outage(sendable, outage.outage_gate(), claimed_at=claimed_at, report=report)
    # Rate limits after policy (a suppressed or held message must not use up room) and before any
    # request: one Redis round trip for the whole batch.
    limits = send_rate_limits_reserve(candidates=[rate_limit_candidate(m) for m in sendable])
    # Many requests in flight at once (window: the same guarantees, issue 19), or one after the other.
    send = window.send_window if settings.DELIVERY_CONCURRENCY > 1 and len(sendable) > 1 else _send_all
    send(sendable, limits, claimed_at=claimed_at, threads=threads, report=report, engine_items=engine_items)
    # Room reserved for messages that did not go out (429/5xx/breaker holds, refusals) is given back;
    # sent and unknown (may have gone out) ones keep it.
    gone = set(report.sent) | set(report.unknown)
    send_rate_limits_release(decision=limits, message_ids=[i for i in limits.charged if i not in gone])
    if report.sent:
        outage.outage_record_success()  # once a batch: the provider answers (closes an open breaker)
    # Through the module attribute: looked up at call time.
    engine_feed.feed_engine(engine_items)
    return report
