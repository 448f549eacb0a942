"""What becomes of a claimed row: the outcome of a policy verdict or of the provider call.

- policy: cancel -> canceled, suppress -> suppressed (the engine hears `suppressed`), hold -> queued, re-armed;
- 202 -> sent (the engine hears `sent`);
- 400/401/403/413 (permanent) -> failed (the engine hears `send_failed`);
- 429 -> queued until the provider's reset time; the attempt does not count;
- 5xx / refused (transient) -> queued with exponential back-off (1 min doubling to 1 h), failed only once past
  SENDGRID_SEND_MAX_ATTEMPTS counted attempts AND SENDGRID_UNDELIVERABLE_HOURS (24) since its first failure;
  consecutive ones open the provider outage breaker (`outage`): then held `provider_outage`, attempt undone;
- timeout / connection lost AFTER the request went out (ambiguous) -> unknown: never resent blindly; a
  webhook event settles it as sent (one stored before the move, while the row was `sending`, at once:
  `settling`), an operator sees the rest.

After a 429, 5xx or ambiguous error the rest of the batch waits (a `Breaker`) instead of hammering the provider.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.conf import settings

from messaging import compliance, outgoing_events
from messaging.delivery import claiming, outage, settling
from messaging.delivery.engine_feed import EngineItem, engine_event
from messaging.delivery.policy import Verdict, hold_recheck, send_policy
from messaging.models import OutboundMessage
from messaging.sendgrid.errors import SendGridError, SendGridErrorKind
from outreach import clock
from outreach.channels import CHANNEL_EMAIL
from outreach.tenancy.selectors import global_sending_stopped

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 60
BACKOFF_CAP_SECONDS = 3600
AMBIGUOUS_PAUSE = dt.timedelta(minutes=1)  # after an ambiguous error the rest of the batch waits this long
_SENDING = (OutboundMessage.Status.SENDING,)


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    canceled: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    rate_limited: list[int] = field(default_factory=list)
    paused: list[int] = field(default_factory=list)  # held by the provider outage breaker (`outage`)
    unknown: list[int] = field(default_factory=list)
    not_claimed: list[int] = field(default_factory=list)


@dataclass
class Breaker:
    """After a 429, 5xx or ambiguous error the rest of the batch waits instead of hammering SendGrid."""
    reason: str
    not_before: dt.datetime


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)))


# --- policy verdicts -----------------------------------------------------------------------------------

def settle_by_policy(message: OutboundMessage, verdict: tuple[str, str], *, claimed_at: dt.datetime,
                     report: DeliveryReport, engine_items: list[EngineItem],
                     hold_until: dt.datetime | None = None) -> None:
    """Carry out a `send_policy` refusal on a claimed row; the one path for both policy checks."""
    action, reason = verdict
    if action == "cancel":
        if claiming.finish(message, claimed_at=claimed_at, statuses=_SENDING,
                           status=OutboundMessage.Status.CANCELED, status_reason=reason):
            report.canceled.append(message.id)
    elif action == "suppress":
        if claiming.finish(message, claimed_at=claimed_at, statuses=_SENDING,
                           status=OutboundMessage.Status.SUPPRESSED, status_reason=reason):
            report.suppressed.append(message.id)
            engine_items.append(engine_event(message, "suppressed", clock.now(), {"reason": reason}))
    else:
        not_before = hold_until or clock.now() + hold_recheck()
        if claiming.hold(message, claimed_at=claimed_at, reason=reason, not_before=not_before):
            report.held.append(message.id)


def settle_refused_start(message: OutboundMessage, *, claimed_at: dt.datetime, report: DeliveryReport,
                         engine_items: list[EngineItem]) -> None:
    """The request-start statement matched nothing: the claim was taken back, or policy changed since the
    batch-start check. Read this one row again to tell which, and settle it as that check would have."""
    fresh = (
        OutboundMessage.objects.filter(id=message.id, claimed_at=claimed_at, status=OutboundMessage.Status.SENDING)
        .select_related("tenant", "sender_identity", "contact_campaign__campaign__sender_identity")
        .first()
    )
    if fresh is None:
        report.not_claimed.append(message.id)
        return
    block_reason = compliance.send_block_reason(tenant_id=fresh.tenant_id, channel=CHANNEL_EMAIL,
                                                value=fresh.to_address)
    verdict: Verdict = send_policy(message=fresh, global_stop=global_sending_stopped(), block_reason=block_reason)
    hold_until = None
    if verdict is None:
        # What refused the start was undone in between (a pause lifted, a suppression expired): never send
        # on a check the guarded statement did not make; the dispatcher hands it back at once.
        verdict, hold_until = ("hold", "policy_changed_during_batch"), clock.now()
    logger.info("outbound message %s: policy changed during its batch (%s: %s)", message.id, *verdict)
    settle_by_policy(fresh, verdict, claimed_at=claimed_at, report=report, engine_items=engine_items,
                     hold_until=hold_until)


# --- the provider's answer -----------------------------------------------------------------------------

def on_sent(message: OutboundMessage, *, claimed_at: dt.datetime, provider_message_id: str | None,
            report: DeliveryReport, engine_items: list[EngineItem]) -> None:
    now = clock.now()
    # `unknown` too: a lease recovery may have judged us dead while the answer was on its way.
    if claiming.finish(message, claimed_at=claimed_at,
                       statuses=(OutboundMessage.Status.SENDING, OutboundMessage.Status.UNKNOWN),
                       status=OutboundMessage.Status.SENT, sent_at=now, provider_message_id=provider_message_id,
                       status_reason="", last_error="", next_attempt_at=None):
        report.sent.append(message.id)
        engine_items.append(engine_event(message, "sent", now))


def _on_permanent(message: OutboundMessage, exc: SendGridError, *, claimed_at: dt.datetime,
                  report: DeliveryReport, engine_items: list[EngineItem]) -> None:
    logger.warning("message %s refused permanently: %s", message.id, exc)
    if claiming.finish(message, claimed_at=claimed_at, statuses=_SENDING, status=OutboundMessage.Status.FAILED,
                       status_reason=f"http_{exc.status_code}", last_error=exc.message[:4000]):
        report.failed.append(message.id)
        engine_items.append(engine_event(message, "send_failed", clock.now(),
                                         {"status_code": exc.status_code, "reason": exc.message[:300]}))


def _on_rate_limited(message: OutboundMessage, exc: SendGridError, *, claimed_at: dt.datetime,
                     report: DeliveryReport) -> Breaker:
    reset_at = exc.reset_at or clock.now() + dt.timedelta(minutes=1)
    # A 429 is not the message's fault: it does not count towards the retry bound.
    if claiming.hold(message, claimed_at=claimed_at, reason="rate_limited", not_before=reset_at,
                     last_error=exc.message[:4000], undo_attempt=True):
        report.rate_limited.append(message.id)
    return Breaker("rate_limited", reset_at)


def _undeliverable_too_long(message: OutboundMessage, attempts: int, now: dt.datetime) -> bool:
    """The bound past which a transient failure fails the message: SENDGRID_SEND_MAX_ATTEMPTS counted attempts
    AND SENDGRID_UNDELIVERABLE_HOURS since its first failure (hours of being undeliverable, not minutes)."""
    since = message.undeliverable_since or now
    return (attempts >= settings.SENDGRID_SEND_MAX_ATTEMPTS
            and now - since >= dt.timedelta(hours=settings.SENDGRID_UNDELIVERABLE_HOURS))


def _on_transient(message: OutboundMessage, exc: SendGridError, *, claimed_at: dt.datetime, attempts: int,
                  report: DeliveryReport, engine_items: list[EngineItem]) -> Breaker:
    now = clock.now()
    failure = outage.outage_record_failure(str(exc))
    if failure.open:
        # A provider outage: the message is not at fault. Held until the next probe, its attempt undone.
        if claiming.hold(message, claimed_at=claimed_at, reason="provider_outage", not_before=failure.probe_at,
                         last_error=str(exc)[:4000], undo_attempt=True, undeliverable_since=now):
            report.paused.append(message.id)
        if failure.opened_now:
            outgoing_events.sender_paused(messages=[message], probe_at=failure.probe_at, error=str(exc))
        return Breaker("provider_outage", failure.probe_at)
    if _undeliverable_too_long(message, attempts, now):
        if claiming.finish(message, claimed_at=claimed_at, statuses=_SENDING, status=OutboundMessage.Status.FAILED,
                           status_reason="transient_errors_exhausted",
                           last_error=f"gave up after {attempts} attempts; last: {exc}"[:4000]):
            report.failed.append(message.id)
            engine_items.append(engine_event(message, "send_failed", now,
                                             {"status_code": exc.status_code, "reason": str(exc)[:300],
                                              "attempts": attempts}))
        return Breaker("transient_error", now + backoff(1))
    not_before = now + backoff(attempts)
    if claiming.hold(message, claimed_at=claimed_at, reason="transient_error", not_before=not_before,
                     last_error=str(exc)[:4000], undeliverable_since=now):
        report.retrying.append(message.id)
    return Breaker("transient_error", not_before)


def _on_ambiguous(message: OutboundMessage, exc: SendGridError, *, claimed_at: dt.datetime,
                  report: DeliveryReport, engine_items: list[EngineItem]) -> Breaker:
    # The mail may be out. Never resend; webhook events settle it, those already stored at once (they may
    # have arrived while the row was still `sending`).
    logger.error("message %s: ambiguous send outcome, marked unknown: %s", message.id, exc)
    if claiming.finish(message, claimed_at=claimed_at, statuses=_SENDING, status=OutboundMessage.Status.UNKNOWN,
                       status_reason="ambiguous: no answer after the request was sent", last_error=str(exc)[:4000]):
        settled = settling.unknown_sends_settle_from_stored(message_ids=[message.id], feed=False)
        (report.sent if settled else report.unknown).append(message.id)
        engine_items.extend(settled)
    return Breaker("after_ambiguous_error", clock.now() + AMBIGUOUS_PAUSE)


def on_provider_error(message: OutboundMessage, exc: SendGridError, *, claimed_at: dt.datetime, attempts: int,
                      report: DeliveryReport, engine_items: list[EngineItem]) -> Breaker | None:
    """Settle the row by the kind of failure; a Breaker when the rest of the batch should wait."""
    if exc.kind == SendGridErrorKind.PERMANENT:
        _on_permanent(message, exc, claimed_at=claimed_at, report=report, engine_items=engine_items)
        return None
    if exc.kind == SendGridErrorKind.RATE_LIMITED:
        return _on_rate_limited(message, exc, claimed_at=claimed_at, report=report)
    if exc.kind == SendGridErrorKind.TRANSIENT:
        return _on_transient(message, exc, claimed_at=claimed_at, attempts=attempts, report=report,
                             engine_items=engine_items)
    return _on_ambiguous(message, exc, claimed_at=claimed_at, report=report, engine_items=engine_items)
