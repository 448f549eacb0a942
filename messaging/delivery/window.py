"""Concurrent delivery of one batch: a sliding window of DELIVERY_CONCURRENCY requests in flight (issue 19).

Why this shape (measured in docs/sendgrid.md, "The send path"): at 150 ms a request, one request after the
other sends ~6 mails/s; 128 in flight per process send ~500/s, bound by the GIL, and two processes ~1,000/s.

- Only this thread (the Celery task's) touches the database, on its one connection; the pool threads
  (`_executor`) make HTTP requests and nothing else. 128 threads on the ORM would be 128 PostgreSQL
  connections a process and two commits a message.
- The first request of the batch goes alone, on this thread, exactly as the sequential path sends it (a
  probe: a 429, a 5xx or a timeout costs one request, not a window of them). Then, whenever at least
  `MIN_WAVE` slots are free (or the rest fits), the next k messages (k <= free slots, so a started request
  never waits for a thread) form a wave: ONE request-start statement (`policy.start_requests`) re-checks
  policy for each of them and marks the ones it allows started, committed, and exactly those are submitted.
  An opt-out, a pause or a stop that lands while a wave is on the wire stops every message of a later wave;
  ids the statement did not return are settled one by one as the sequential path settles a refused start.
- 202s are buffered and written in one statement (`claiming.finish_sent`) every `FLUSH_EVERY` outcomes or
  `FLUSH_SECONDS`; a crash in between leaves the row `sending` with its start marked, which lease recovery
  turns into `unknown` and a webhook event settles as sent: never resent. 429 / 5xx / ambiguous / permanent
  answers go through the same per-row code as the sequential path (`outcomes.on_provider_error`).
- The breaker: the first 429, 5xx or ambiguous answer stops new waves; requests already in flight finish and
  are recorded; the messages not started yet are held `batch_paused:<reason>` as the sequential path holds them.
- Per sender identity, at most DELIVERY_SENDER_CONCURRENCY requests are in flight at once.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
from collections import Counter, deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from django.conf import settings

from messaging.delivery import claiming, outcomes, policy
from messaging.delivery.engine_feed import EngineItem, engine_event
from messaging.delivery.outcomes import Breaker, DeliveryReport
from messaging.delivery.rendering import Thread, thread_for
from messaging.delivery.sending import Prepared, prepare, send_one
from messaging.models import OutboundMessage
from messaging.rate_limits import RateLimitDecision
from messaging.sendgrid.errors import SendGridError
from outreach import clock

logger = logging.getLogger(__name__)

# Fewer, larger statements: each costs a commit (a WAL flush) and a round trip on this one thread, which is
# what bounds a process's rate (docs/sendgrid.md "The send path").
MIN_WAVE = 32  # a wave starts once this many slots are free (or the rest of the batch fits)
FLUSH_EVERY = 128  # buffered 202s written at once...
FLUSH_SECONDS = 0.25  # ...or after this long

_executor: ThreadPoolExecutor | None = None
_executor_key: tuple[int, int] | None = None
_executor_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """This process's request threads (re-made after a fork: a prefork child inherits no live threads)."""
    global _executor, _executor_key
    key = (os.getpid(), settings.DELIVERY_CONCURRENCY)
    with _executor_lock:
        if _executor is None or _executor_key != key:
            _executor = ThreadPoolExecutor(max_workers=settings.DELIVERY_CONCURRENCY, thread_name_prefix="send")
            _executor_key = key
        return _executor


def _request(prepared: Prepared) -> tuple[str | None, SendGridError | None]:
    """In a pool thread: HTTP only, no database."""
    try:
        return prepared.transport.send(prepared.request), None
    except SendGridError as exc:
        return None, exc


@dataclass
class _Window:
    claimed_at: dt.datetime
    threads: dict[int, list[dict]]
    limits: RateLimitDecision
    report: DeliveryReport
    engine_items: list[EngineItem]
    pending: deque[OutboundMessage] = field(default_factory=deque)
    in_flight: dict[Future, Prepared] = field(default_factory=dict)
    per_sender: Counter = field(default_factory=Counter)
    sent: list[tuple[OutboundMessage, str | None, dt.datetime]] = field(default_factory=list)
    breaker: Breaker | None = None
    last_flush: float = field(default_factory=time.monotonic)

    # --- starting waves ---

    def _take(self, free: int) -> list[OutboundMessage]:
        """Up to `free` pending messages, in turn, skipping senders at their cap (they wait their turn)."""
        cap = settings.DELIVERY_SENDER_CONCURRENCY
        wave: list[OutboundMessage] = []
        skipped: list[OutboundMessage] = []
        while self.pending and len(wave) < free:
            message = self.pending.popleft()
            sender = policy.sender_for(message)
            sender_id = sender.id if sender is not None else 0
            if self.per_sender[sender_id] >= cap:
                skipped.append(message)
                continue
            self.per_sender[sender_id] += 1
            wave.append(message)
        self.pending.extendleft(reversed(skipped))
        return wave

    def _release(self, message: OutboundMessage) -> None:
        sender = policy.sender_for(message)
        self.per_sender[sender.id if sender is not None else 0] -= 1

    def _in_window(self, wave: list[OutboundMessage]) -> list[OutboundMessage]:
        """The wave's messages whose send window is still open; the others are held and re-timed."""
        allowed: list[OutboundMessage] = []
        for message in wave:
            verdict = policy.send_window_verdict(message)
            if verdict is None:
                allowed.append(message)
                continue
            self._release(message)  # its reserved rate-limit room is given back after the batch
            outcomes.settle_by_policy(message, verdict, claimed_at=self.claimed_at, report=self.report,
                                      engine_items=self.engine_items)
        return allowed

    def _prepared(self, wave: list[OutboundMessage]) -> list[Prepared]:
        ready: list[Prepared] = []
        for message in wave:
            try:
                ready.append(prepare(message, thread=thread_for(message, self.threads)))
            except Exception:  # noqa: BLE001 - one broken row must not strand the rest of the batch
                # Never started: the row stays `sending` unmarked and lease recovery re-queues it.
                logger.exception("delivery of outbound message %s failed unexpectedly", message.id)
                self.limits.charged.pop(message.id, None)
                self._release(message)
        return ready

    def start_wave(self) -> None:
        free = settings.DELIVERY_CONCURRENCY - len(self.in_flight)
        if self.breaker is not None or not self.pending or free <= 0:
            return
        if self.in_flight and free < min(MIN_WAVE, len(self.pending)):
            return
        ready = self._prepared(self._in_window(self._take(free)))
        # One statement re-checks policy for the whole wave and marks what it allows as started (committed:
        # the connection is in autocommit), before any of these requests goes out.
        started = policy.start_requests([p.start_row() for p in ready], claimed_at=self.claimed_at)
        executor = _pool()
        for prepared in ready:
            if prepared.message.id in started:
                self.in_flight[executor.submit(_request, prepared)] = prepared
                continue
            self._release(prepared.message)
            outcomes.settle_refused_start(prepared.message, claimed_at=self.claimed_at, report=self.report,
                                          engine_items=self.engine_items)

    # --- outcomes ---

    def settle(self, future: Future) -> None:
        prepared = self.in_flight.pop(future)
        message = prepared.message
        self._release(message)
        try:
            provider_message_id, error = future.result()
        except Exception:  # noqa: BLE001 - started: it may have reached SendGrid, its room stays used
            logger.exception("delivery of outbound message %s failed unexpectedly", message.id)
            self.limits.charged.pop(message.id, None)
            return
        if error is None:
            self.sent.append((message, provider_message_id, clock.now()))
            return
        breaker = outcomes.on_provider_error(message, error, claimed_at=self.claimed_at,
                                             attempts=message.attempts + 1, report=self.report,
                                             engine_items=self.engine_items)
        if breaker is not None and self.breaker is None:
            self.trip(breaker)

    def trip(self, breaker: Breaker) -> None:
        """No new waves; what has not started waits, as the sequential path's breaker holds it."""
        self.breaker = breaker
        while self.pending:
            message = self.pending.popleft()
            if claiming.hold(message, claimed_at=self.claimed_at, reason=f"batch_paused:{breaker.reason}",
                             not_before=breaker.not_before):
                self.report.held.append(message.id)

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self.sent:
            return
        rows, self.sent = self.sent, []
        done = claiming.finish_sent([(m.id, pid, at) for m, pid, at in rows], claimed_at=self.claimed_at)
        for message, _, sent_at in rows:
            if message.id in done:
                self.report.sent.append(message.id)
                self.engine_items.append(engine_event(message, "sent", sent_at))

    def due_flush(self) -> bool:
        return len(self.sent) >= FLUSH_EVERY or time.monotonic() - self.last_flush >= FLUSH_SECONDS

    def run(self) -> None:
        while self.pending or self.in_flight:
            self.start_wave()
            if self.in_flight:
                done, _ = wait(list(self.in_flight), timeout=FLUSH_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    self.settle(future)
            if self.due_flush():
                self.flush()
        self.flush()


def _probe(window: _Window, thread: Thread | None = None) -> None:
    """The batch's first message, alone and on this thread (the sequential path's own code)."""
    message = window.pending.popleft()
    try:
        breaker = send_one(message, claimed_at=window.claimed_at, thread=thread or thread_for(message, window.threads),
                           report=window.report, engine_items=window.engine_items)
    except Exception:  # noqa: BLE001 - one broken row must not strand the rest of the batch
        logger.exception("delivery of outbound message %s failed unexpectedly", message.id)
        window.limits.charged.pop(message.id, None)
        return
    if breaker is not None:
        window.trip(breaker)


def _tenants_taking_turns(messages: list[OutboundMessage]) -> list[OutboundMessage]:
    """One tenant's message, then the next tenant's, and so on (id order within a tenant): a batch that mixes a
    tenant's burst with others' mail does not send the others' last."""
    by_tenant: dict[int, deque[OutboundMessage]] = {}
    for message in messages:
        by_tenant.setdefault(message.tenant_id, deque()).append(message)
    queues = list(by_tenant.values())
    order: list[OutboundMessage] = []
    while queues:
        order.extend(q.popleft() for q in queues)
        queues = [q for q in queues if q]
    return order


def send_window(sendable: list[OutboundMessage], limits: RateLimitDecision, *, claimed_at: dt.datetime,
                threads: dict[int, list[dict]], report: DeliveryReport, engine_items: list[EngineItem]) -> None:
    """Send the policy-cleared messages of a batch with up to DELIVERY_CONCURRENCY requests in flight."""
    window = _Window(claimed_at=claimed_at, threads=threads, limits=limits, report=report, engine_items=engine_items)
    for message in _tenants_taking_turns(sendable):
        deferral = limits.deferred.get(message.id)
        if deferral is None:
            window.pending.append(message)
        # Over a cap: deferred to when its window has room, never dropped; no attempt counted.
        elif claiming.hold(message, claimed_at=claimed_at, reason=deferral.reason, not_before=deferral.not_before):
            report.rate_limited.append(message.id)
    try:
        if window.pending:
            _probe(window)
        window.run()
    finally:
        # Should this thread fail, no request of the batch is left running past the task (each is bounded by
        # the request timeout); their rows stay `sending` with their start marked: lease recovery -> unknown.
        wait(list(window.in_flight), timeout=settings.SENDGRID_REQUEST_TIMEOUT_SECONDS + 5)
    # Outcomes arrive in completion order; the report keeps the batch's id order, as the sequential path's.
    for ids in vars(report).values():
        ids.sort()
