"""The dispatcher: turns due scheduled_actions rows into Celery work (architecture.md, rule 1).

Each pass:
1. claims due pending rows in batches with one statement (`FOR UPDATE SKIP LOCKED`, so any number of
   dispatchers — the beat task and `run_dispatcher` processes — can run at once without taking a row twice),
   marking them `claimed` (claimed_at, attempts + 1), or `held` when a kill switch holds that send;
2. after commit, publishes one Celery message per chunk of ids: sends go straight to delivery
   (`campaign_execution.deliver_messages` with outbound message ids), timers to
   `campaign_execution.run_actions` with action ids;
3. releases held rows whose switch is off again (sends re-timed through next_send_time);
4. recovers leases: a row claimed longer ago than CAMPAIGN_ACTION_LEASE_SECONDS is dispatched again
   (the tasks are idempotent), or finished when its message has left the queue.

Sends are handed out with back-pressure and a fair share (issue 19, README "Sizing delivery"):
- back-pressure: no more sends outstanding (claimed here, not yet heard `sent`) than delivery starts within
  half a lease at the rate it sends now (`send_capacity`, between DISPATCH_MIN_OUTSTANDING_SENDS and
  DISPATCH_MAX_OUTSTANDING_SENDS). When the provider slows down the hand-out slows with it: nothing waits
  in the broker long enough for its lease to expire and be handed out twice. The rest stays `pending`.
- fair share: the room is shared out across the tenants with due sends, equal shares first, then what a
  tenant did not use goes to the others (`claim_due_sends`, water-filling), and no tenant holds more than
  DISPATCH_TENANT_MAX_OUTSTANDING_SENDS: one tenant's burst of 100x the others' does not make them wait.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from campaigns.holds import HELD_SEND_SQL, SendHolds, send_holds
from campaigns.models import ContactCampaign
from campaigns.scheduling import next_send_time
from campaigns.services.outbox import OUTBOX_QUEUED, OUTBOX_TABLE
from outreach import clock
from outreach.publishing import PUBLISH_CHUNK, publish_ids
from outreach.queues import TaskName

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
# A timer that fails this often is parked as `failed` (and logged) instead of being retried forever.
MAX_TIMER_ATTEMPTS = 20

def _claim_sql(due: str) -> str:
    """The claim: the rows `due` selects (and locks) become `claimed`, or `held` when a kill switch holds the send."""
    return f"""
WITH due AS ({due})
UPDATE scheduled_actions sa
SET status = CASE WHEN {HELD_SEND_SQL} THEN 'held' ELSE 'claimed' END,
    claimed_at = CASE WHEN {HELD_SEND_SQL} THEN NULL ELSE %(now)s END,
    attempts = CASE WHEN {HELD_SEND_SQL} THEN sa.attempts ELSE sa.attempts + 1 END
FROM due
WHERE sa.id = due.id
RETURNING sa.id, sa.kind, sa.status, sa.outbound_message_id, sa.tenant_id
"""


_DUE_SQL = """
    SELECT id FROM scheduled_actions
    WHERE status = 'pending' AND due_at <= %(now)s {kinds}
    ORDER BY due_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
"""
_CLAIM_SQL = _claim_sql(_DUE_SQL.format(kinds=""))
_CLAIM_TIMERS_SQL = _claim_sql(_DUE_SQL.format(kinds="AND kind <> 'send'"))
# Each tenant's own due sends, up to its share, in due order (index sa_pending_send_tenant).
_CLAIM_SENDS_SQL = _claim_sql("""
    SELECT x.id FROM unnest(%(tenant_ids)s::bigint[], %(shares)s::int[]) AS t(id, share)
    CROSS JOIN LATERAL (
        SELECT id FROM scheduled_actions
        WHERE tenant_id = t.id AND status = 'pending' AND kind = 'send' AND due_at <= %(now)s
        ORDER BY due_at
        LIMIT t.share
        FOR UPDATE SKIP LOCKED
    ) x
""")
_TENANTS_WITH_DUE_SENDS_SQL = """
    SELECT t.id FROM tenants t
    WHERE EXISTS (SELECT 1 FROM scheduled_actions sa WHERE sa.tenant_id = t.id AND sa.status = 'pending'
                  AND sa.kind = 'send' AND sa.due_at <= %s)
    ORDER BY t.id
"""
# The send rate delivery reaches now: outbox rows settled `sent` in the last RATE_WINDOW (index om_status_updated).
RATE_WINDOW = dt.timedelta(seconds=30)
LEASE_SHARE = 0.5  # what is handed out must start within this share of the lease at the current rate


@dataclass
class DispatchStats:
    claimed: int = 0
    held: int = 0
    released: int = 0
    recovered: int = 0
    finished: int = 0
    messages: int = 0

    def __iadd__(self, other: DispatchStats) -> DispatchStats:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    @property
    def busy(self) -> bool:
        return bool(self.claimed or self.held or self.released or self.recovered or self.finished)


def lease_seconds() -> float:
    return float(settings.CAMPAIGN_ACTION_LEASE_SECONDS)


def _split(rows: list[tuple[Any, ...]]) -> tuple[list[int], list[int], int]:
    """(outbound ids for delivery, action ids for run_actions, held count) of claimed rows."""
    deliver: list[int] = []
    run: list[int] = []
    held = 0
    for action_id, kind, status, outbound_id, _tenant_id in _tenants_taking_turns(rows):
        if status == "held":
            held += 1
        elif kind == "send" and outbound_id is not None:
            deliver.append(outbound_id)
        else:
            run.append(action_id)
    return deliver, run, held


def _tenants_taking_turns(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Claimed rows reordered one tenant after the other (due order within a tenant), so the first Celery
    messages published do not all belong to the tenant with the most due rows."""
    by_tenant: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        by_tenant[row[4]].append(row)
    queues = [list(reversed(q)) for q in by_tenant.values()]
    order: list[tuple[Any, ...]] = []
    while queues:
        order.extend(q.pop() for q in queues)
        queues = [q for q in queues if q]
    return order


def _publish(deliver: list[int], run: list[int], chunk: int) -> int:
    return (publish_ids(task_name=TaskName.DELIVER_MESSAGES, ids=deliver, chunk=chunk)
            + publish_ids(task_name=TaskName.RUN_ACTIONS, ids=run, chunk=chunk))


def _claim(sql: str, params: dict[str, Any], publish_chunk: int) -> tuple[DispatchStats, list[tuple[Any, ...]]]:
    """Run a claim statement in one transaction, publish after commit; its stats and the claimed send rows."""
    stats = DispatchStats()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        deliver, run, held = _split(rows)
        stats.claimed, stats.held = len(rows) - held, held
        if deliver or run:
            def publish() -> None:
                stats.messages += _publish(deliver, run, publish_chunk)

            # After commit: a worker never sees a claim that was rolled back. If the process dies between
            # commit and publish, the lease sweep dispatches the rows again.
            transaction.on_commit(publish, robust=True)  # lost publish: lease recovery re-dispatches
    return stats, [row for row in rows if row[1] == "send" and row[2] == "claimed"]


def claim_due_batch(*, now: dt.datetime, holds: SendHolds, batch_size: int = DEFAULT_BATCH_SIZE,
                    publish_chunk: int = PUBLISH_CHUNK, timers_only: bool = False) -> DispatchStats:
    """Claim up to `batch_size` due rows in one transaction and publish them after commit (in due order,
    sends and timers alike; `timers_only` leaves the sends to `claim_due_sends`)."""
    sql = _CLAIM_TIMERS_SQL if timers_only else _CLAIM_SQL
    return _claim(sql, {"now": now, "limit": batch_size, **holds.sql_params}, publish_chunk)[0]


# --- sends: back-pressure and fair share ---------------------------------------------------------------

def send_capacity(*, sent_per_second: float) -> int:
    """Sends that may be outstanding (handed out, not yet sent): what delivery starts within LEASE_SHARE of
    the lease at the rate it sends now, between the floor (a start, an idle system) and the ceiling."""
    by_rate = int(sent_per_second * lease_seconds() * LEASE_SHARE)
    return max(settings.DISPATCH_MIN_OUTSTANDING_SENDS, min(settings.DISPATCH_MAX_OUTSTANDING_SENDS, by_rate))


@dataclass
class SendRoom:
    """How many more sends this pass may hand out, overall and per tenant."""
    total: int
    outstanding: dict[int, int]

    def tenant_room(self, tenant_id: int) -> int:
        return settings.DISPATCH_TENANT_MAX_OUTSTANDING_SENDS - self.outstanding.get(tenant_id, 0)


def send_room(*, now: dt.datetime) -> SendRoom:
    """The room left for sends: capacity at the current send rate minus what is outstanding."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT tenant_id, count(*) FROM scheduled_actions WHERE status = 'claimed' AND kind = 'send' "
                       "GROUP BY tenant_id")
        outstanding = {tenant_id: n for tenant_id, n in cursor.fetchall()}
        cursor.execute(f"SELECT count(*) FROM {OUTBOX_TABLE} WHERE status = 'sent' AND updated_at > %s",
                       [now - RATE_WINDOW])
        recent = cursor.fetchone()[0]
    capacity = send_capacity(sent_per_second=recent / RATE_WINDOW.total_seconds())
    return SendRoom(total=max(0, capacity - sum(outstanding.values())), outstanding=outstanding)


def claim_due_sends(*, now: dt.datetime, holds: SendHolds, room: SendRoom, limit: int = DEFAULT_BATCH_SIZE,
                    publish_chunk: int = PUBLISH_CHUNK) -> DispatchStats:
    """One round of the fair hand-out: up to min(limit, room) due sends, an equal share per tenant that has
    due sends and room (what one leaves unused, the next round shares out again); `room` is updated."""
    budget = min(limit, room.total)
    if budget <= 0:
        return DispatchStats()
    with connection.cursor() as cursor:
        cursor.execute(_TENANTS_WITH_DUE_SENDS_SQL, [now])
        tenants = [tenant_id for (tenant_id,) in cursor.fetchall() if room.tenant_room(tenant_id) > 0]
    if not tenants:
        return DispatchStats()
    share = max(1, math.ceil(budget / len(tenants)))
    shares = [min(share, room.tenant_room(tenant_id)) for tenant_id in tenants]
    stats, claimed = _claim(_CLAIM_SENDS_SQL, {"now": now, "tenant_ids": tenants, "shares": shares,
                                                **holds.sql_params}, publish_chunk)
    for row in claimed:
        room.outstanding[row[4]] = room.outstanding.get(row[4], 0) + 1
    room.total -= len(claimed)
    return stats


def release_held(*, now: dt.datetime, holds: SendHolds, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """Held rows whose reason is gone go back to pending: sends re-timed from now, timers at their due time."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT sa.id, sa.kind, sa.contact_campaign_id, sa.due_at
            FROM scheduled_actions sa
            JOIN contact_campaigns cc ON cc.id = sa.contact_campaign_id
            WHERE sa.status = 'held' AND cc.status = 'active' AND NOT {HELD_SEND_SQL}
            ORDER BY sa.id
            LIMIT %(limit)s
            FOR UPDATE OF sa SKIP LOCKED
            """,
            {"limit": batch_size, **holds.sql_params},
        )
        rows = cursor.fetchall()
        if not rows:
            return 0
        send_ccs = sorted({cc_id for _, kind, cc_id, _ in rows if kind == "send"})
        windows: dict[int, tuple[Any, dt.datetime | None]] = {}
        if send_ccs:
            for cc_id, plan_json, not_before in ContactCampaign.objects.filter(id__in=send_ccs).values_list(
                    "id", "plan_json", "not_before"):
                windows[cc_id] = (plan_json, not_before)
        ids, dues = [], []
        for action_id, kind, cc_id, due_at in rows:
            if kind == "send":
                plan_json, not_before = windows.get(cc_id, (None, None))
                earliest = max(now, due_at, not_before) if not_before else max(now, due_at)
                # next_send_time reads only timezone / quietHours / sendDays of the dict (cached per shape).
                due_at = next_send_time(plan_json, earliest) if plan_json else earliest
            ids.append(action_id)
            dues.append(due_at)
        cursor.execute(
            """
            UPDATE scheduled_actions sa SET status = 'pending', due_at = v.due, claimed_at = NULL
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, due) WHERE sa.id = v.id
            """,
            [ids, dues],
        )
    return len(rows)


def recover_leases(*, now: dt.datetime, holds: SendHolds, batch_size: int = DEFAULT_BATCH_SIZE,
                   publish_chunk: int = PUBLISH_CHUNK) -> DispatchStats:
    """Rows claimed longer ago than the lease: finish sends whose message left the queue, dispatch the rest again."""
    stats = DispatchStats()
    cutoff = now - dt.timedelta(seconds=lease_seconds())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT sa.id, sa.kind, sa.tenant_id, sa.campaign_id, sa.outbound_message_id, sa.attempts, om.status,
                   cc.status
            FROM scheduled_actions sa
            JOIN contact_campaigns cc ON cc.id = sa.contact_campaign_id
            LEFT JOIN {OUTBOX_TABLE} om ON om.id = sa.outbound_message_id
            WHERE sa.status = 'claimed' AND sa.claimed_at < %s
            ORDER BY sa.claimed_at
            LIMIT %s
            FOR UPDATE OF sa SKIP LOCKED
            """,
            [cutoff, batch_size],
        )
        rows = cursor.fetchall()
        if not rows:
            return stats
        new_status: dict[str, list[int]] = defaultdict(list)
        deliver: list[int] = []
        run: list[int] = []
        for action_id, kind, tenant_id, campaign_id, outbound_id, attempts, om_status, cc_status in rows:
            if kind == "send":
                if om_status != OUTBOX_QUEUED:
                    new_status["done"].append(action_id)  # delivery took it (or it was canceled)
                elif cc_status == "paused" or holds.holds(tenant_id=tenant_id, campaign_id=campaign_id):
                    new_status["held"].append(action_id)
                else:
                    new_status["claimed"].append(action_id)
                    deliver.append(outbound_id)
            elif attempts >= MAX_TIMER_ATTEMPTS:
                log.error("scheduled action %s failed %s times; parked as failed", action_id, attempts)
                new_status["failed"].append(action_id)
            else:
                new_status["claimed"].append(action_id)
                run.append(action_id)
        for status, ids in new_status.items():
            if status == "claimed":
                cursor.execute("UPDATE scheduled_actions SET claimed_at = %s, attempts = attempts + 1 "
                               "WHERE id = ANY(%s)", [now, ids])
            elif status == "held":
                cursor.execute("UPDATE scheduled_actions SET status = 'held', claimed_at = NULL WHERE id = ANY(%s)",
                               [ids])
            else:
                cursor.execute("UPDATE scheduled_actions SET status = %s, finished_at = %s WHERE id = ANY(%s)",
                               [status, now, ids])
        stats.recovered = len(new_status["claimed"])
        stats.finished = len(new_status["done"]) + len(new_status["failed"])
        stats.held = len(new_status["held"])
        if deliver or run:
            def publish() -> None:
                stats.messages += _publish(deliver, run, publish_chunk)

            transaction.on_commit(publish, robust=True)  # lost publish: lease recovery re-dispatches
    if stats.recovered:
        log.warning("re-dispatched %s scheduled actions whose lease expired", stats.recovered)
    return stats


def dispatch_due(*, batch_size: int = DEFAULT_BATCH_SIZE, max_batches: int | None = None,
                 time_budget: float | None = None, now: dt.datetime | None = None) -> DispatchStats:
    """One dispatcher pass: claim every due row (batch by batch), release held rows, recover leases.

    Stops early after `max_batches` claims or `time_budget` seconds so a beat task never overruns its tick.
    """
    started = time.monotonic()
    holds = send_holds()
    total = DispatchStats()

    def out_of_time(batches: int) -> bool:
        return ((max_batches is not None and batches >= max_batches)
                or (time_budget is not None and time.monotonic() - started > time_budget))

    room = send_room(now=now or clock.now())
    batches = 0
    while room.total > 0:
        stats = claim_due_sends(now=now or clock.now(), holds=holds, room=room, limit=batch_size)
        total += stats
        batches += 1
        if stats.claimed + stats.held == 0 or out_of_time(batches):
            break
    batches = 0
    while True:
        stats = claim_due_batch(now=now or clock.now(), holds=holds, batch_size=batch_size, timers_only=True)
        total += stats
        batches += 1
        if stats.claimed + stats.held < batch_size or out_of_time(batches):
            break
    moment = now or clock.now()
    total.released += release_held(now=moment, holds=holds, batch_size=batch_size)
    total += recover_leases(now=moment, holds=holds, batch_size=batch_size)
    if total.busy:
        log.info("dispatcher: %s", total)
    return total
