"""Campaign writes: plan versions, the engine's thin shell, enrolment, pause/resume/cancel, send hand-off.

Every service that changes a contact campaign locks its row (`SELECT ... FOR UPDATE`, in id order when
there are many), runs the pure core (campaigns.engine), and writes the new state, the transition records,
the scheduled actions and the outbox rows in one transaction; Celery work is enqueued after commit.
The hot path (`contact_campaigns_handle_events`) does a fixed number of statements per chunk of contact
campaigns, whatever the number of events. Rules and choices: docs/engine.md.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import JSONField, Q
from rest_framework import status as http_status

from campaigns import engine
from campaigns.dsl import POLICY_EVENTS, Plan, PlanInvalid, parse_plan, plan_hash
from campaigns.engine import (
    CancelTimers,
    Decision,
    EngineEvent,
    EngineState,
    RescheduleSend,
    ScheduleTimeout,
    ScheduleWait,
    SendConfirmed,
    SendMessage,
    Stop,
    TransitionRecord,
)
from campaigns.models import Campaign, CampaignPlanVersion, CampaignTransition, ContactCampaign, ScheduledAction
from campaigns.scheduling import next_send_time
from campaigns.selectors import plan_cached, plan_from_json
from messaging.models import OutboundMessage
from outreach import clock
from outreach.errors import ApplicationError
from outreach.tenancy.selectors import global_sending_stopped

log = logging.getLogger(__name__)

DELIVER_TASK = "campaign_execution.deliver_messages"
RUN_ACTIONS_TASK = "campaign_execution.run_actions"
GENERATE_PLANS_TASK = "campaign_creation.generate_plans"
# Contact campaigns per transaction on the hot path: big enough to amortise the statements, small enough
# that row locks are held for milliseconds.
HANDLE_CHUNK = 1000
# Ids per Celery message (architecture.md: batches, not per-item tasks).
PUBLISH_CHUNK = 500
GENERATE_PLANS_CHUNK = 100

_LIVE_STATUSES = (ContactCampaign.Status.PENDING, ContactCampaign.Status.ACTIVE, ContactCampaign.Status.PAUSED)
_OPEN_ACTION_STATUSES = ("pending", "held", "claimed")


@dataclass(frozen=True)
class HandleResult:
    """What one event did to its contact campaign."""

    contact_campaign_id: int
    outcome: str  # engine outcome (moved, stopped, updated, recorded, stale, held) or "missing"
    status: str = ""
    current_node_id: str = ""
    node_visit: int = 0
    transitions: tuple[TransitionRecord, ...] = ()

    @property
    def moved(self) -> bool:
        return self.outcome in (engine.MOVED, engine.STOPPED_OUTCOME)


# --- publishing -------------------------------------------------------------------------------------------------

def publish_ids(*, task_name: str, ids: Sequence[int], chunk: int = PUBLISH_CHUNK) -> int:
    """Send `task_name` with chunks of ids, one Celery message per chunk, over one producer connection."""
    if not ids:
        return 0
    from outreach.celery import app

    messages = 0
    with app.producer_or_acquire() as producer:
        for start in range(0, len(ids), chunk):
            app.send_task(task_name, args=[list(ids[start:start + chunk])], producer=producer)
            messages += 1
    return messages


def _publish_after_commit(task_name: str, ids: Iterable[int]) -> None:
    ids = sorted(set(ids))
    if ids:
        # robust: a broker outage after commit is logged, not raised into a request whose rows are stored;
        # the dispatcher's leases and the stale-work sweeps publish the work again.
        transaction.on_commit(lambda: publish_ids(task_name=task_name, ids=ids), robust=True)


# --- fast SQL -------------------------------------------------------------------------------------------------

def _cursor() -> Any:
    """A cursor with server-side parameter binding, wrapped like Django's own (query logging and counting).

    The project's connections bind parameters client-side, which quotes every array element in Python;
    the hot path sends arrays of thousands of values, which psycopg dumps natively with server-side binding.
    """
    from django.db.backends.postgresql.base import ServerBindingCursor

    connection.ensure_connection()
    raw = ServerBindingCursor(connection.connection)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


_INSERT_PLANS: dict[type, tuple[list[Any], str]] = {}


def _insert_plan(model: type) -> tuple[list[Any], str]:
    """The columns of a model and the INSERT ... SELECT FROM unnest(...) that writes them (built once)."""
    cached = _INSERT_PLANS.get(model)
    if cached is not None:
        return cached
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names, casts, selects = [], [], []
    for i, f in enumerate(fields):
        names.append(connection.ops.quote_name(f.column))
        if isinstance(f, JSONField):
            casts.append("%b::text[]")  # JSON travels as text and is cast per row
            selects.append(f"c{i}::jsonb")
        else:
            casts.append(f"%b::{f.db_type(connection)}[]")
            selects.append(f"c{i}")
    aliases = ", ".join(f"c{i}" for i in range(len(fields)))
    sql = (f"INSERT INTO {model._meta.db_table} ({', '.join(names)}) SELECT {', '.join(selects)} "
           f"FROM unnest({', '.join(casts)}) AS v({aliases})")
    _INSERT_PLANS[model] = (fields, sql)
    return fields, sql


def _insert_rows(model: type, rows: list[dict[str, Any]], *, now: dt.datetime, suffix: str = ""
                 ) -> list[tuple[Any, ...]]:
    """Insert many rows in one statement; `rows` map attnames to values, other fields take their defaults.

    Built from the model's fields, so a column another app adds (with a default) needs no change here.
    """
    if not rows:
        return []
    fields, sql = _insert_plan(model)
    params: list[list[Any]] = []
    for f in fields:
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
            column = [now] * len(rows)
        else:
            default = f.get_default() if f.has_default() or not f.null else None
            column = [r.get(f.attname, default) for r in rows]
        if isinstance(f, JSONField):
            column = [None if v is None else json.dumps(v, cls=f.encoder) for v in column]
        params.append(column)
    with _cursor() as cursor:
        cursor.execute(f"{sql} {suffix}", params)
        return cursor.fetchall() if "RETURNING" in suffix else []


# --- locking and loading ----------------------------------------------------------------------------------------

@dataclass
class _Locked:
    """A locked contact campaign row, as the engine sees it."""

    id: int
    tenant_id: int
    campaign_id: int
    contact_id: int
    channel: str
    plan_version_id: int | None
    plan_hash: str | None
    state: EngineState
    plan: Plan | None = None
    before: EngineState = field(init=False)

    def __post_init__(self) -> None:
        self.before = self.state


_LOCK_SQL = """
SELECT cc.id, cc.tenant_id, cc.campaign_id, cc.contact_id, cc.channel, cc.current_plan_version_id, pv.plan_hash,
       cc.status, cc.current_node_id, cc.node_visit, cc.node_entered_at, cc.node_sent_at, cc.not_before,
       cc.engagement_flags, cc.stop_reason, cc.started_at, cc.finished_at, cc.plan_json IS NOT NULL
FROM contact_campaigns cc
LEFT JOIN campaign_plan_versions pv ON pv.id = cc.current_plan_version_id
WHERE cc.id = ANY(%s)
ORDER BY cc.id
FOR UPDATE OF cc
"""


def _lock(ids: Sequence[int]) -> dict[int, _Locked]:
    """Lock the rows in id order (so concurrent batches never deadlock) and attach their parsed plans."""
    with _cursor() as cursor:
        cursor.execute(_LOCK_SQL, [sorted(set(ids))])
        fetched = cursor.fetchall()
    rows: dict[int, _Locked] = {}
    missing_plans: list[int] = []
    for r in fetched:
        state = EngineState(status=r[7], current_node_id=r[8], node_visit=r[9], node_entered_at=r[10],
                            node_sent_at=r[11], not_before=r[12], engagement_flags=r[13], stop_reason=r[14],
                            started_at=r[15], finished_at=r[16])
        row = _Locked(id=r[0], tenant_id=r[1], campaign_id=r[2], contact_id=r[3], channel=r[4],
                      plan_version_id=r[5], plan_hash=r[6], state=state)
        if r[17]:
            row.plan = plan_cached(known_hash=row.plan_hash) if row.plan_hash else None
            if row.plan is None:
                missing_plans.append(row.id)
        rows[row.id] = row
    if missing_plans:
        for cc_id, plan_json in ContactCampaign.objects.filter(id__in=missing_plans).values_list("id", "plan_json"):
            rows[cc_id].plan = plan_from_json(plan_json=plan_json, known_hash=rows[cc_id].plan_hash)
    return rows


# --- applying decisions -----------------------------------------------------------------------------------------

def _timer_key(cc_id: int, plan_version_id: int | None, action: ScheduleTimeout | ScheduleWait) -> str:
    # The plan version is part of the key so that a replaced plan can re-arm the same node visit's timers.
    if isinstance(action, ScheduleWait):
        return f"{cc_id}:{action.node_id}:{action.visit}:wait:p{plan_version_id or 0}"
    return (f"{cc_id}:{action.node_id}:{action.visit}:timeout:{action.event}:{action.transition_index}"
            f":p{plan_version_id or 0}")


# A timer asked for again (same contact campaign, node visit, transition and plan version) is re-armed: a plan
# switched v1 -> v2 -> v1 reuses the stored v1 version, whose timers v2 canceled. Only a canceled timer comes
# back: one that is done already fired (reviving it would fire its event twice), a live one is kept as it is,
# and sends are never revived (their outbox row was canceled with them). The engine only asks for timers of the
# current node visit, and a revived timer still goes through the node/visit check when it fires.
_REARM_TIMERS = (
    "ON CONFLICT (dedupe_key) DO UPDATE SET status = EXCLUDED.status, due_at = EXCLUDED.due_at, "
    "payload = EXCLUDED.payload, claimed_at = NULL, finished_at = NULL, attempts = 0 "
    "WHERE scheduled_actions.status = 'canceled' AND scheduled_actions.kind <> 'send'"
)


def send_action_key(*, contact_campaign_id: int, node_id: str, node_visit: int) -> str:
    return f"{contact_campaign_id}:{node_id}:{node_visit}:send"


def outbox_dedupe_key(*, tenant_id: int, contact_id: int, campaign_id: int, node_id: str, channel: str,
                      node_visit: int) -> str:
    """tenant:contact:campaign:node:channel, plus the node visit: a restarted plan may enter a node again."""
    return f"{tenant_id}:{contact_id}:{campaign_id}:{node_id}:{channel}:{node_visit}"


class _Work:
    """The writes of one transaction, collected while the engine runs and flushed in a few bulk statements."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.transitions: list[dict[str, Any]] = []
        self.timers: dict[int, list[ScheduleTimeout | ScheduleWait]] = defaultdict(list)
        self.sends: dict[int, list[SendMessage]] = defaultdict(list)
        self.cancels: list[tuple[int, str, int, bool]] = []
        self.stops: dict[int, str] = {}
        self.reschedules: list[tuple[int, str, int, dt.datetime]] = []
        self.confirmed: list[tuple[int, str, int]] = []
        self.touched: dict[int, _Locked] = {}
        self.done_action_ids: list[int] = []
        self.held_action_ids: list[int] = []
        self.deliver_ids: list[int] = []

    def apply(self, row: _Locked, decision: Decision) -> None:
        if decision.new_state != row.state:
            row.state = decision.new_state
            self.touched[row.id] = row
        for record in decision.transitions:
            self.transitions.append({
                "tenant_id": row.tenant_id, "contact_campaign_id": row.id, "from_node_id": record.from_node_id,
                "to_node_id": record.to_node_id, "event": record.event[:32], "node_visit": record.node_visit,
                "from_status": record.from_status, "to_status": record.to_status, "reason": record.reason[:200],
                "detail": _jsonable(record.detail), "occurred_at": record.occurred_at,
            })
        for action in decision.actions:
            if isinstance(action, SendMessage):
                self.sends[row.id].append(action)
            elif isinstance(action, (ScheduleTimeout, ScheduleWait)):
                self.timers[row.id].append(action)
            elif isinstance(action, CancelTimers):
                # Drop what this batch meant to write for that node visit, then cancel what is already stored.
                self.timers[row.id] = [t for t in self.timers[row.id]
                                       if (t.node_id, t.visit) != (action.node_id, action.visit)]
                if action.include_send:
                    self.sends[row.id] = [s for s in self.sends[row.id]
                                          if (s.node_id, s.visit) != (action.node_id, action.visit)]
                self.cancels.append((row.id, action.node_id, action.visit, action.include_send))
            elif isinstance(action, Stop):
                self.timers.pop(row.id, None)
                self.sends.pop(row.id, None)
                self.stops[row.id] = action.reason
            elif isinstance(action, SendConfirmed):
                self.confirmed.append((row.id, action.node_id, action.visit))
            elif isinstance(action, RescheduleSend):
                pending = self.sends.get(row.id, [])
                for i, send in enumerate(pending):
                    if (send.node_id, send.visit) == (action.node_id, action.visit):
                        pending[i] = SendMessage(node_id=send.node_id, visit=send.visit, channel=send.channel,
                                                 message=send.message, due_at=action.due_at, refresh=send.refresh)
                        break
                else:
                    self.reschedules.append((row.id, action.node_id, action.visit, action.due_at))

    # -- flush -----------------------------------------------------------------------------------------------

    def flush(self, rows: dict[int, _Locked]) -> None:
        with _cursor() as cursor:
            self._flush_cancels(cursor)
            self._flush_stops(cursor)
            self._flush_reschedules(cursor)
            self._flush_confirmed(cursor)
        self._flush_new_actions(rows)
        _insert_rows(CampaignTransition, self.transitions, now=self.now)
        self._flush_states()
        self._flush_action_statuses()
        _publish_after_commit(DELIVER_TASK, self.deliver_ids)

    def _flush_cancels(self, cursor: Any) -> None:
        if not self.cancels:
            return
        cc_ids, nodes, visits, with_send = (list(x) for x in zip(*self.cancels, strict=True))
        cursor.execute(
            """
            UPDATE scheduled_actions sa SET status = 'canceled', finished_at = %s
            FROM unnest(%b::bigint[], %b::text[], %b::int[], %b::bool[]) AS v(cc, node, visit, with_send)
            WHERE sa.contact_campaign_id = ANY(%b::bigint[])
              AND sa.contact_campaign_id = v.cc AND sa.node_id = v.node AND sa.node_visit = v.visit
              AND sa.status IN ('pending', 'held', 'claimed') AND (v.with_send OR sa.kind <> 'send')
            """,
            [self.now, cc_ids, nodes, visits, with_send, cc_ids],
        )
        sends = [(c, n, v) for c, n, v, w in self.cancels if w]
        if sends:
            # A message not sent yet when its node is left is never sent late (docs/engine.md).
            cursor.execute(
                """
                UPDATE outbound_messages om SET status = 'canceled', status_reason = 'node left before sending',
                       updated_at = %s
                FROM unnest(%b::bigint[], %b::text[], %b::int[]) AS v(cc, node, visit)
                WHERE om.contact_campaign_id = ANY(%b::bigint[])
                  AND om.contact_campaign_id = v.cc AND om.node_id = v.node AND om.node_visit = v.visit
                  AND om.status = 'queued'
                """,
                [self.now, *(list(x) for x in zip(*sends, strict=True)), [c for c, _, _ in sends]],
            )

    def _flush_stops(self, cursor: Any) -> None:
        if not self.stops:
            return
        ids = list(self.stops)
        cursor.execute(
            "UPDATE scheduled_actions SET status = 'canceled', finished_at = %s "
            "WHERE contact_campaign_id = ANY(%s) AND status IN ('pending', 'held', 'claimed')",
            [self.now, ids],
        )
        cursor.execute(
            """
            UPDATE outbound_messages om SET status = 'canceled', status_reason = left(v.reason, 300), updated_at = %s
            FROM unnest(%b::bigint[], %b::text[]) AS v(cc, reason)
            WHERE om.contact_campaign_id = ANY(%b::bigint[]) AND om.contact_campaign_id = v.cc
              AND om.status = 'queued'
            """,
            [self.now, ids, [f"campaign ended: {self.stops[i]}" for i in ids], ids],
        )

    def _flush_reschedules(self, cursor: Any) -> None:
        if not self.reschedules:
            return
        cc_ids, nodes, visits, dues = (list(x) for x in zip(*self.reschedules, strict=True))
        cursor.execute(
            """
            UPDATE scheduled_actions sa SET due_at = v.due
            FROM unnest(%b::bigint[], %b::text[], %b::int[], %b::timestamptz[]) AS v(cc, node, visit, due)
            WHERE sa.contact_campaign_id = ANY(%b::bigint[])
              AND sa.contact_campaign_id = v.cc AND sa.node_id = v.node AND sa.node_visit = v.visit
              AND sa.kind = 'send' AND sa.status IN ('pending', 'held')
            """,
            [cc_ids, nodes, visits, dues, cc_ids],
        )

    def _flush_confirmed(self, cursor: Any) -> None:
        if not self.confirmed:
            return
        cc_ids, nodes, visits = (list(x) for x in zip(*self.confirmed, strict=True))
        # The message is out: its send action needs no lease sweep any more.
        cursor.execute(
            """
            UPDATE scheduled_actions sa SET status = 'done', finished_at = %s
            FROM unnest(%b::bigint[], %b::text[], %b::int[]) AS v(cc, node, visit)
            WHERE sa.contact_campaign_id = ANY(%b::bigint[])
              AND sa.contact_campaign_id = v.cc AND sa.node_id = v.node AND sa.node_visit = v.visit
              AND sa.kind = 'send' AND sa.status IN ('pending', 'claimed', 'held')
            """,
            [self.now, cc_ids, nodes, visits, cc_ids],
        )

    def _flush_new_actions(self, rows: dict[int, _Locked]) -> None:
        actions: list[dict[str, Any]] = []
        for cc_id, timers in self.timers.items():
            row = rows[cc_id]
            held = row.state.status == ContactCampaign.Status.PAUSED
            for timer in timers:
                is_wait = isinstance(timer, ScheduleWait)
                actions.append({
                    "tenant_id": row.tenant_id, "contact_campaign_id": cc_id, "campaign_id": row.campaign_id,
                    "kind": ScheduledAction.Kind.WAIT if is_wait else ScheduledAction.Kind.TIMEOUT,
                    "node_id": timer.node_id, "node_visit": timer.visit, "event": "" if is_wait else timer.event,
                    "payload": {} if is_wait else {"transition_index": timer.transition_index},
                    "due_at": timer.due_at, "status": "held" if held else "pending",
                    "dedupe_key": _timer_key(cc_id, row.plan_version_id, timer),
                })
        actions.extend(self._send_actions(rows))
        # One row per key: under ON CONFLICT DO UPDATE a statement may not propose the same key twice (PostgreSQL
        # refuses it, even when the update's WHERE is false); the first wins, as it did with DO NOTHING.
        unique: dict[str, dict[str, Any]] = {}
        for action in actions:
            unique.setdefault(action["dedupe_key"], action)
        _insert_rows(ScheduledAction, list(unique.values()), now=self.now, suffix=_REARM_TIMERS)

    def _send_actions(self, rows: dict[int, _Locked]) -> list[dict[str, Any]]:
        wanted = {cc_id: sends for cc_id, sends in self.sends.items() if sends}
        if not wanted:
            return []
        context = _send_context(list(wanted))
        global_stop: bool | None = None
        messages: list[dict[str, Any]] = []
        pairs: list[tuple[_Locked, SendMessage]] = []
        for cc_id, sends in wanted.items():
            row = rows[cc_id]
            ctx = context.get(cc_id)
            if ctx is None:
                continue
            for send in sends:
                message = send.message
                messages.append({
                    "tenant_id": row.tenant_id, "contact_campaign_id": cc_id, "contact_id": row.contact_id,
                    "sender_identity_id": ctx["sender_identity_id"] if send.channel == "email" else None,
                    "channel": send.channel, "node_id": send.node_id, "node_visit": send.visit,
                    "dedupe_key": outbox_dedupe_key(tenant_id=row.tenant_id, contact_id=row.contact_id,
                                                    campaign_id=row.campaign_id, node_id=send.node_id,
                                                    channel=send.channel, node_visit=send.visit),
                    "status": OutboundMessage.Status.QUEUED,
                    "to_address": ctx["phone"] if send.channel == "sms" else ctx["email"],
                    "subject": message.get("subject", "")[:300], "body_text": message.get("text", ""),
                    "body_html": message.get("html", ""),
                })
                pairs.append((row, send))
        if not messages:
            return []
        # The no-op update on conflict returns the id of a row that already existed, so a replayed send
        # points at the one outbox row instead of creating a second.
        returned = _insert_rows(OutboundMessage, messages, now=self.now,
                                suffix="ON CONFLICT (dedupe_key) DO UPDATE SET dedupe_key = EXCLUDED.dedupe_key "
                                       "RETURNING id, dedupe_key")
        ids = {key: pk for pk, key in returned}
        for message, (_, send) in zip(messages, pairs, strict=True):
            if send.refresh:
                OutboundMessage.objects.filter(id=ids[message["dedupe_key"]], status=OutboundMessage.Status.QUEUED
                                               ).update(subject=message["subject"], body_text=message["body_text"],
                                                        body_html=message["body_html"], updated_at=self.now)
        actions: list[dict[str, Any]] = []
        for message, (row, send) in zip(messages, pairs, strict=True):
            message_id = ids[message["dedupe_key"]]
            status, claimed_at, attempts = "pending", None, 0
            if row.state.status == ContactCampaign.Status.PAUSED:
                status = "held"
            elif send.due_at <= self.now:
                if global_stop is None:
                    global_stop = global_sending_stopped()
                if global_stop or context[row.id]["held"]:
                    status = "held"
                else:
                    # Due now: hand it to delivery after commit. It stays `claimed` until its `sent` event (or
                    # the lease sweep seeing it leave the queue) finishes it, so a lost hand-off is retried.
                    status, claimed_at, attempts = "claimed", self.now, 1
                    self.deliver_ids.append(message_id)
            actions.append({
                "tenant_id": row.tenant_id, "contact_campaign_id": row.id, "campaign_id": row.campaign_id,
                "kind": ScheduledAction.Kind.SEND, "node_id": send.node_id, "node_visit": send.visit, "event": "",
                "payload": {"outbound_message_id": message_id}, "outbound_message_id": message_id,
                "due_at": send.due_at, "status": status, "claimed_at": claimed_at, "attempts": attempts,
                "dedupe_key": send_action_key(contact_campaign_id=row.id, node_id=send.node_id,
                                              node_visit=send.visit),
            })
        return actions

    def _flush_states(self) -> None:
        if not self.touched:
            return
        rows = list(self.touched.values())
        cols: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            s = row.state
            cols["id"].append(row.id)
            cols["status"].append(s.status)
            cols["node"].append(s.current_node_id)
            cols["visit"].append(s.node_visit)
            cols["entered"].append(s.node_entered_at)
            cols["sent"].append(s.node_sent_at)
            cols["nb"].append(s.not_before)
            cols["flags"].append(s.engagement_flags)
            cols["reason"].append(s.stop_reason[:100])
            cols["started"].append(s.started_at)
            cols["finished"].append(s.finished_at)
        with _cursor() as cursor:
            cursor.execute(
                """
                UPDATE contact_campaigns cc SET status = v.status, current_node_id = v.node, node_visit = v.visit,
                       node_entered_at = v.entered, node_sent_at = v.sent, not_before = v.nb,
                       engagement_flags = v.flags, stop_reason = v.reason, started_at = v.started,
                       finished_at = v.finished, updated_at = %s
                FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::int[], %b::timestamptz[], %b::timestamptz[],
                            %b::timestamptz[], %b::int[], %b::text[], %b::timestamptz[], %b::timestamptz[])
                     AS v(id, status, node, visit, entered, sent, nb, flags, reason, started, finished)
                WHERE cc.id = v.id
                """,
                [self.now, cols["id"], cols["status"], cols["node"], cols["visit"], cols["entered"], cols["sent"],
                 cols["nb"], cols["flags"], cols["reason"], cols["started"], cols["finished"]],
            )

    def _flush_action_statuses(self) -> None:
        if not (self.held_action_ids or self.done_action_ids):
            return
        with _cursor() as cursor:
            if self.held_action_ids:
                cursor.execute(
                    "UPDATE scheduled_actions SET status = 'held', claimed_at = NULL WHERE id = ANY(%s)",
                    [self.held_action_ids],
                )
            if self.done_action_ids:
                cursor.execute(
                    "UPDATE scheduled_actions SET status = 'done', finished_at = %s WHERE id = ANY(%s)",
                    [self.now, self.done_action_ids],
                )


def _send_context(cc_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Address, sender and hold state of each contact campaign about to get a message."""
    with _cursor() as cursor:
        cursor.execute(
            """
            SELECT cc.id, ct.email, ct.phone, c.sender_identity_id,
                   (c.status <> 'active' OR t.sending_paused OR s.id IS NULL OR s.is_paused
                    OR s.status <> 'verified') AS held
            FROM contact_campaigns cc
            JOIN contacts ct ON ct.id = cc.contact_id
            JOIN campaigns c ON c.id = cc.campaign_id
            JOIN tenants t ON t.id = cc.tenant_id
            LEFT JOIN email_sender_identities s ON s.id = c.sender_identity_id
            WHERE cc.id = ANY(%s)
            """,
            [cc_ids],
        )
        return {r[0]: {"email": r[1] or "", "phone": r[2] or "", "sender_identity_id": r[3], "held": bool(r[4])}
                for r in cursor.fetchall()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


# --- events (the hot path) --------------------------------------------------------------------------------------

def contact_campaign_handle_event(*, contact_campaign_id: int, event: EngineEvent) -> HandleResult:
    """Run one event through the engine (see `contact_campaigns_handle_events` for the batch form)."""
    return contact_campaigns_handle_events(items=[(contact_campaign_id, event)])[0]


def contact_campaigns_handle_events(*, items: Sequence[tuple[int, EngineEvent]]) -> list[HandleResult]:
    """Run many events; returns one result per item, in input order.

    Events of one contact campaign are applied in the order given. Contact campaigns are locked in id order,
    HANDLE_CHUNK per transaction, and each chunk costs a fixed handful of statements.
    """
    return _handle_items(list(items), action_ids=None)


def _handle_items(items: list[tuple[int, EngineEvent]], *, action_ids: list[int | None] | None
                  ) -> list[HandleResult]:
    results: list[HandleResult | None] = [None] * len(items)
    by_cc: dict[int, list[int]] = defaultdict(list)
    for index, (cc_id, _) in enumerate(items):
        by_cc[cc_id].append(index)
    cc_ids = sorted(by_cc)
    for start in range(0, len(cc_ids), HANDLE_CHUNK):
        chunk = cc_ids[start:start + HANDLE_CHUNK]
        with transaction.atomic():
            _handle_chunk(chunk, by_cc, items, action_ids, results)
    return [r if r is not None else HandleResult(contact_campaign_id=items[i][0], outcome="missing")
            for i, r in enumerate(results)]


def _handle_chunk(chunk: list[int], by_cc: dict[int, list[int]], items: list[tuple[int, EngineEvent]],
                  action_ids: list[int | None] | None, results: list[HandleResult | None]) -> None:
    now = clock.now()
    rows = _lock(chunk)
    live_actions: set[int] = set()
    if action_ids is not None:
        wanted = [action_ids[i] for cc_id in chunk for i in by_cc[cc_id] if action_ids[i] is not None]
        if wanted:
            with connection.cursor() as cursor:
                # Locked after the contact campaigns (the same order as every other writer), re-checked under lock:
                # a duplicate delivery of the same action ids finds them done and does nothing.
                cursor.execute(
                    "SELECT id FROM scheduled_actions WHERE id = ANY(%s) AND status = 'claimed' ORDER BY id FOR UPDATE",
                    [wanted],
                )
                live_actions = {r[0] for r in cursor.fetchall()}
    work = _Work(now)
    for cc_id in chunk:
        row = rows.get(cc_id)
        for index in by_cc[cc_id]:
            action_id = action_ids[index] if action_ids is not None else None
            if row is None:
                if action_id in live_actions:
                    work.done_action_ids.append(action_id)
                continue
            if action_ids is not None and action_id is not None and action_id not in live_actions:
                results[index] = _result(row, engine.STALE, ())
                continue
            decision = engine.decide(row.plan, row.state, items[index][1], now)
            work.apply(row, decision)
            if action_id is not None:
                (work.held_action_ids if decision.outcome == engine.HELD else work.done_action_ids).append(action_id)
            results[index] = _result(row, decision.outcome, tuple(decision.transitions))
    work.flush(rows)


def _result(row: _Locked, outcome: str, transitions: tuple[TransitionRecord, ...]) -> HandleResult:
    return HandleResult(contact_campaign_id=row.id, outcome=outcome, status=row.state.status,
                        current_node_id=row.state.current_node_id, node_visit=row.state.node_visit,
                        transitions=transitions)


def _apply_one(contact_campaign_id: int, decide: Any) -> tuple[_Locked, Decision]:
    """Lock one contact campaign, run `decide(row, now) -> Decision` on it and write the result."""
    now = clock.now()
    rows = _lock([contact_campaign_id])
    row = rows.get(contact_campaign_id)
    if row is None:
        raise ApplicationError("Contact campaign not found.", status_code=http_status.HTTP_404_NOT_FOUND)
    decision = decide(row, now)
    work = _Work(now)
    work.apply(row, decision)
    work.flush(rows)
    return row, decision


# --- timers run by the dispatcher -------------------------------------------------------------------------------

def scheduled_actions_run(*, action_ids: Sequence[int]) -> dict[str, int]:
    """Run claimed timeout / wait actions through the engine; re-hand claimed sends to delivery.

    Idempotent: each action is re-checked under lock (still `claimed`, and for timers the node visit still
    current); anything else is a no-op. Returns counts for logging.
    """
    counts = {"timers": 0, "sends": 0, "skipped": 0}
    if not action_ids:
        return counts
    rows = list(ScheduledAction.objects.filter(id__in=list(action_ids), status=ScheduledAction.Status.CLAIMED)
                .values_list("id", "contact_campaign_id", "kind", "node_id", "node_visit", "event", "payload",
                             "due_at"))
    counts["skipped"] = len(set(action_ids)) - len(rows)
    timer_items: list[tuple[int, EngineEvent]] = []
    timer_action_ids: list[int | None] = []
    send_ids: list[int] = []
    for action_id, cc_id, kind, node_id, visit, event, payload, due_at in rows:
        if kind == ScheduledAction.Kind.SEND:
            send_ids.append(action_id)
            continue
        event_type = engine.WAIT_ELAPSED if kind == ScheduledAction.Kind.WAIT else event
        detail = {"scheduled_action_id": action_id}
        if isinstance(payload, dict) and "transition_index" in payload:
            detail["transition_index"] = payload["transition_index"]
        timer_items.append((cc_id, EngineEvent(type=event_type, occurred_at=due_at, node_id=node_id,
                                               node_visit=visit, detail=detail)))
        timer_action_ids.append(action_id)
    if timer_items:
        _handle_items(timer_items, action_ids=timer_action_ids)
        counts["timers"] = len(timer_items)
    if send_ids:
        counts["sends"] = _rehand_sends(send_ids)
    return counts


def _rehand_sends(action_ids: list[int]) -> int:
    """Claimed sends: hand still-queued messages to delivery again; finish the others."""
    from campaigns.selectors import send_holds

    holds = send_holds()
    now = clock.now()
    deliver: list[int] = []
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT sa.id, sa.tenant_id, sa.campaign_id, sa.outbound_message_id, om.status, cc.status
            FROM scheduled_actions sa
            JOIN contact_campaigns cc ON cc.id = sa.contact_campaign_id
            LEFT JOIN outbound_messages om ON om.id = sa.outbound_message_id
            WHERE sa.id = ANY(%s) AND sa.status = 'claimed'
            ORDER BY sa.id FOR UPDATE OF sa SKIP LOCKED
            """,
            [action_ids],
        )
        done, held = [], []
        for action_id, tenant_id, campaign_id, om_id, om_status, cc_status in cursor.fetchall():
            if om_status != OutboundMessage.Status.QUEUED:
                done.append(action_id)
            elif cc_status == ContactCampaign.Status.PAUSED or holds.holds(tenant_id=tenant_id,
                                                                           campaign_id=campaign_id):
                held.append(action_id)
            else:
                deliver.append(om_id)
        if done:
            cursor.execute("UPDATE scheduled_actions SET status = 'done', finished_at = %s WHERE id = ANY(%s)",
                           [now, done])
        if held:
            cursor.execute("UPDATE scheduled_actions SET status = 'held', claimed_at = NULL WHERE id = ANY(%s)",
                           [held])
        _publish_after_commit(DELIVER_TASK, deliver)
    return len(deliver)


# --- plans ------------------------------------------------------------------------------------------------------

def _locked_model(contact_campaign: ContactCampaign | int) -> ContactCampaign:
    cc_id = contact_campaign if isinstance(contact_campaign, int) else contact_campaign.pk
    try:
        return ContactCampaign.objects.select_for_update(of=("self",)).get(pk=cc_id)
    except ContactCampaign.DoesNotExist:
        raise ApplicationError("Contact campaign not found.", status_code=http_status.HTTP_404_NOT_FOUND) from None


def _refresh(contact_campaign: ContactCampaign) -> ContactCampaign:
    contact_campaign.refresh_from_db()
    return contact_campaign


def contact_campaign_store_plan(*, contact_campaign: ContactCampaign, plan: Any, source: str,
                                source_detail: str = "") -> CampaignPlanVersion:
    """Validate and store a plan version; the same plan again returns the version already stored.

    Raises `PlanInvalid` (an ApplicationError whose `extra["problems"]` lists every problem) for a bad plan.
    The new version becomes the current plan of a contact campaign that has none or has not started;
    a running campaign switches plans only through `contact_campaign_replace_plan`.
    """
    if source not in CampaignPlanVersion.Source.values:
        raise ApplicationError(f"Unknown plan source {source!r}; choose one of "
                               f"{', '.join(CampaignPlanVersion.Source.values)}.", field="source")
    parsed = parse_plan(plan)  # PlanInvalid carries every problem
    with transaction.atomic():
        cc = _locked_model(contact_campaign)
        version = _store_version(cc, parsed, source, source_detail)
        if cc.current_plan_version_id is None or cc.status == ContactCampaign.Status.PENDING:
            _set_current_plan(cc, version)
    contact_campaign.current_plan_version_id = cc.current_plan_version_id
    contact_campaign.plan_json = cc.plan_json
    return version


def _store_version(cc: ContactCampaign, parsed: Plan, source: str, source_detail: str) -> CampaignPlanVersion:
    digest = plan_hash(parsed)
    existing = CampaignPlanVersion.objects.filter(contact_campaign=cc, plan_hash=digest).first()
    if existing is not None:
        return existing
    last = (CampaignPlanVersion.objects.filter(contact_campaign=cc).order_by("-version")
            .values_list("version", flat=True).first())
    return CampaignPlanVersion.objects.create(
        tenant_id=cc.tenant_id, contact_campaign=cc, version=(last or 0) + 1, plan_json=parsed.to_document(),
        plan_hash=digest, source=source, source_detail=source_detail,
    )


def _set_current_plan(cc: ContactCampaign, version: CampaignPlanVersion) -> None:
    cc.current_plan_version = version
    cc.plan_json = version.plan_json
    cc.save(update_fields=["current_plan_version", "plan_json", "updated_at"])


def contact_campaign_start(*, contact_campaign: ContactCampaign) -> ContactCampaign:
    """Enter the plan's start node. Idempotent: a contact campaign that is not pending is returned as is."""
    with transaction.atomic():
        cc = _locked_model(contact_campaign)
        if cc.status != ContactCampaign.Status.PENDING:
            return _refresh(contact_campaign)
        if cc.plan_json is None:
            raise ApplicationError("This contact campaign has no plan yet; store one first.", field="plan",
                                   status_code=http_status.HTTP_409_CONFLICT)
        _apply_one(cc.pk, lambda row, now: engine.enter_start(row.plan, now, row.state))
    return _refresh(contact_campaign)


def contact_campaign_replace_plan(*, contact_campaign: ContactCampaign, plan: Any, source: str,
                                  restart: bool = False) -> ContactCampaign:
    """Switch a contact campaign to a new plan (docs/plan-dsl.md, "Versions").

    Running: the campaign stays on its current node when the new plan has it (timers re-armed from the
    original send or entry; a message not yet sent takes the new copy); otherwise it is refused (409)
    unless `restart`, which starts the new plan from its start node. Pending: the plan just becomes
    current. Finished: refused.
    """
    if source not in CampaignPlanVersion.Source.values:
        raise ApplicationError(f"Unknown plan source {source!r}.", field="source")
    parsed = parse_plan(plan)
    with transaction.atomic():
        cc = _locked_model(contact_campaign)
        if cc.status in ContactCampaign.FINAL_STATUSES:
            raise ApplicationError(f"This contact campaign is {cc.status}; its plan can no longer change.",
                                   status_code=http_status.HTTP_409_CONFLICT)
        version = _store_version(cc, parsed, source, "")
        if version.pk == cc.current_plan_version_id and not restart:
            return _refresh(contact_campaign)
        old_plan_json = cc.plan_json
        _set_current_plan(cc, version)
        if cc.status == ContactCampaign.Status.PENDING:
            return _refresh(contact_campaign)

        def decide(row: _Locked, now: dt.datetime) -> Decision:
            old = parse_plan(old_plan_json) if old_plan_json is not None else None
            try:
                decision = engine.replan(old, parsed, row.state, now, restart=restart)
            except engine.PlanReplaceRefused as exc:
                raise ApplicationError(str(exc), field="restart", status_code=http_status.HTTP_409_CONFLICT) from exc
            for record in decision.transitions:
                record.detail["plan_version"] = version.version
            return decision

        _apply_one(cc.pk, decide)
    return _refresh(contact_campaign)


# --- operator controls ------------------------------------------------------------------------------------------

def _audit(*, action: str, cc_or_campaign: Any, actor: Any, reason: str) -> None:
    from outreach.tenancy.services import audit_record

    audit_record(action=action, tenant=cc_or_campaign.tenant, actor=actor, target=cc_or_campaign,
                 detail={"reason": reason})


def _operator_record(row: _Locked, now: dt.datetime, *, event: str, new_status: str, reason: str) -> Decision:
    from dataclasses import replace

    new_state = replace(row.state, status=new_status)
    record = TransitionRecord(event=event, from_node_id=row.state.current_node_id,
                              to_node_id=row.state.current_node_id, node_visit=row.state.node_visit,
                              from_status=row.state.status, to_status=new_status, occurred_at=now, reason=reason)
    return Decision(new_state, [record], [], engine.UPDATED)


def contact_campaign_pause(*, contact_campaign: ContactCampaign, reason: str = "", actor: Any = None
                           ) -> ContactCampaign:
    """Freeze one contact campaign: its timers and sends are held (kept, not dropped) until resumed.

    Events still arrive while paused: a reply or an opt-out is never lost (docs/engine.md).
    """
    with transaction.atomic():
        cc = _locked_model(contact_campaign)
        if cc.status == ContactCampaign.Status.PAUSED:
            return _refresh(contact_campaign)
        if cc.status != ContactCampaign.Status.ACTIVE:
            raise ApplicationError(f"Only an active contact campaign can be paused; this one is {cc.status}.",
                                   status_code=http_status.HTTP_409_CONFLICT)
        _apply_one(cc.pk, lambda row, now: _operator_record(row, now, event="paused",
                                                            new_status=ContactCampaign.Status.PAUSED, reason=reason))
        ScheduledAction.objects.filter(contact_campaign_id=cc.pk, status=ScheduledAction.Status.PENDING).update(
            status=ScheduledAction.Status.HELD)
        _audit(action="contact_campaign.pause", cc_or_campaign=cc, actor=actor, reason=reason)
    return _refresh(contact_campaign)


def contact_campaign_resume(*, contact_campaign: ContactCampaign, reason: str = "", actor: Any = None
                            ) -> ContactCampaign:
    """Unfreeze: held sends are re-timed through next_send_time from now; held timers keep their due time
    (one that fell due during the pause fires on the next dispatcher tick)."""
    with transaction.atomic():
        cc = _locked_model(contact_campaign)
        if cc.status == ContactCampaign.Status.ACTIVE:
            return _refresh(contact_campaign)
        if cc.status != ContactCampaign.Status.PAUSED:
            raise ApplicationError(f"Only a paused contact campaign can be resumed; this one is {cc.status}.",
                                   status_code=http_status.HTTP_409_CONFLICT)
        row, _ = _apply_one(cc.pk, lambda row, now: _operator_record(
            row, now, event="resumed", new_status=ContactCampaign.Status.ACTIVE, reason=reason))
        now = clock.now()
        held = ScheduledAction.objects.filter(contact_campaign_id=cc.pk, status=ScheduledAction.Status.HELD)
        held.exclude(kind=ScheduledAction.Kind.SEND).update(status=ScheduledAction.Status.PENDING, claimed_at=None)
        for action in held.filter(kind=ScheduledAction.Kind.SEND):
            # Re-timed from now (or later: a not_before, or a due time still ahead) into an allowed slot.
            earliest = max(now, action.due_at, row.state.not_before or now)
            action.due_at = next_send_time(row.plan, earliest) if row.plan is not None else earliest
            action.status, action.claimed_at = ScheduledAction.Status.PENDING, None
            action.save(update_fields=["due_at", "status", "claimed_at"])
        _audit(action="contact_campaign.resume", cc_or_campaign=cc, actor=actor, reason=reason)
    return _refresh(contact_campaign)


def contact_campaign_cancel(*, contact_campaign: ContactCampaign, reason: str = "", actor: Any = None
                            ) -> ContactCampaign:
    """End a contact campaign for good: pending actions and messages not yet sent are canceled."""
    with transaction.atomic():
        cc = _locked_model(contact_campaign)
        if cc.status in ContactCampaign.FINAL_STATUSES:
            return _refresh(contact_campaign)
        _apply_one(cc.pk, lambda row, now: engine.operator_stop(
            row.state, now, status=engine.CANCELED, event="canceled", reason=reason or "canceled"))
        _audit(action="contact_campaign.cancel", cc_or_campaign=cc, actor=actor, reason=reason)
    return _refresh(contact_campaign)


def contact_campaigns_stop_for_address(*, tenant_id: int, channel: str, value: str, reason: str,
                                       event_type: str) -> int:
    """Stop every live contact campaign of the tenant that reaches this address (an opt-out, a suppression).

    `event_type` is the policy event recorded (`unsubscribe`, `stop_request`, `spamreport`, ...); `reason` is
    the stop reason kept on the contact campaign. Returns how many contact campaigns stopped.
    """
    if event_type not in POLICY_EVENTS:
        raise ApplicationError(f"{event_type!r} is not a policy event; use one of {', '.join(sorted(POLICY_EVENTS))}.",
                               field="event_type")
    value = (value or "").strip()
    if not value:
        return 0
    if channel == "email":
        address = Q(contact__email=value.lower())
    elif channel == "sms":
        address = Q(contact__phone=value)
    else:
        address = Q(pk__in=[])
    address |= Q(contact__channels__channel=channel, contact__channels__value=value)
    ids = sorted(set(
        ContactCampaign.objects.filter(address, tenant_id=tenant_id, channel=channel, status__in=_LIVE_STATUSES)
        .values_list("id", flat=True)
    ))
    if not ids:
        return 0
    now = clock.now()
    detail: dict[str, Any] = {"stop_reason": reason, "address": value}
    if event_type == "bounce":
        detail["bounce_type"] = "hard"
    results = contact_campaigns_handle_events(items=[(cc_id, EngineEvent(type=event_type, occurred_at=now,
                                                                         detail=detail)) for cc_id in ids])
    return sum(1 for r in results if r.outcome == engine.STOPPED_OUTCOME)


# --- enrolment and whole campaigns ------------------------------------------------------------------------------

def campaign_enrol_contacts(*, campaign: Campaign, contact_ids: Iterable[int], plan: Any = None,
                            channel: str = "email") -> list[ContactCampaign]:
    """Enrol contacts (idempotent: an existing enrolment is returned, not duplicated).

    With `plan`, every new enrolment gets that plan and starts at once; without, the AI planner is asked
    for one plan per contact (campaign_creation.generate_plans, after commit) and they wait as `pending`.
    """
    from contacts.models import Contact

    if campaign.status in (Campaign.Status.CANCELED, Campaign.Status.COMPLETED):
        raise ApplicationError(f"This campaign is {campaign.status}; it takes no new contacts.",
                               status_code=http_status.HTTP_409_CONFLICT)
    wanted = sorted(set(int(i) for i in contact_ids))
    found = set(Contact.objects.filter(tenant_id=campaign.tenant_id, id__in=wanted).values_list("id", flat=True))
    unknown = [i for i in wanted if i not in found]
    if unknown:
        raise ApplicationError(f"Unknown contacts for this tenant: {unknown[:20]}.", field="contact_ids")
    parsed = parse_plan(plan) if plan is not None else None
    with transaction.atomic():
        ContactCampaign.objects.bulk_create(
            [ContactCampaign(tenant_id=campaign.tenant_id, campaign=campaign, contact_id=i, channel=channel)
             for i in wanted],
            batch_size=1000, ignore_conflicts=True,
        )
        enrolments = list(ContactCampaign.objects.filter(campaign=campaign, channel=channel, contact_id__in=wanted)
                          .order_by("id"))
        waiting = [cc for cc in enrolments if cc.status == ContactCampaign.Status.PENDING
                   and cc.current_plan_version_id is None]
        if parsed is not None:
            _store_and_start(waiting, parsed)
        else:
            _publish_after_commit(GENERATE_PLANS_TASK, [cc.pk for cc in waiting])
    if parsed is not None and waiting:
        enrolments = list(ContactCampaign.objects.filter(pk__in=[cc.pk for cc in enrolments]).order_by("id"))
    return enrolments


def _store_and_start(enrolments: list[ContactCampaign], parsed: Plan) -> None:
    """One plan for many new enrolments: versions in bulk, then the engine's start in chunks."""
    if not enrolments:
        return
    digest = plan_hash(parsed)
    document = parsed.to_document()
    ids = [cc.pk for cc in enrolments]
    CampaignPlanVersion.objects.bulk_create(
        [CampaignPlanVersion(tenant_id=cc.tenant_id, contact_campaign_id=cc.pk, version=1, plan_json=document,
                             plan_hash=digest, source=CampaignPlanVersion.Source.MANUAL) for cc in enrolments],
        batch_size=1000, ignore_conflicts=True,
    )
    versions = dict(CampaignPlanVersion.objects.filter(contact_campaign_id__in=ids, plan_hash=digest)
                    .values_list("contact_campaign_id", "id"))
    with _cursor() as cursor:
        cursor.execute(
            """
            UPDATE contact_campaigns cc SET current_plan_version_id = v.version_id, plan_json = %s::jsonb
            FROM unnest(%b::bigint[], %b::bigint[]) AS v(id, version_id)
            WHERE cc.id = v.id AND cc.current_plan_version_id IS NULL
            """,
            [_json_dumps(document), list(versions), list(versions.values())],
        )
    for start in range(0, len(ids), HANDLE_CHUNK):
        chunk = ids[start:start + HANDLE_CHUNK]
        now = clock.now()
        rows = _lock(chunk)
        work = _Work(now)
        for cc_id in chunk:
            row = rows[cc_id]
            if row.state.status == ContactCampaign.Status.PENDING and row.plan is not None:
                work.apply(row, engine.enter_start(row.plan, now, row.state))
        work.flush(rows)


def _json_dumps(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def campaign_pause(*, campaign: Campaign, actor: Any = None, reason: str = "") -> Campaign:
    """Hold every due send of the campaign (the dispatcher keeps them `held`); events are still handled."""
    return _campaign_set_status(campaign, Campaign.Status.PAUSED, actor, reason, allowed=(Campaign.Status.ACTIVE,))


def campaign_resume(*, campaign: Campaign, actor: Any = None, reason: str = "") -> Campaign:
    """Activate (from paused or draft); the dispatcher releases held sends, re-timed, on its next tick."""
    return _campaign_set_status(campaign, Campaign.Status.ACTIVE, actor, reason,
                                allowed=(Campaign.Status.PAUSED, Campaign.Status.DRAFT))


def _campaign_set_status(campaign: Campaign, new_status: str, actor: Any, reason: str,
                         allowed: tuple[str, ...]) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status == new_status:
            return locked
        if locked.status not in allowed:
            raise ApplicationError(f"This campaign is {locked.status}; it cannot become {new_status}.",
                                   status_code=http_status.HTTP_409_CONFLICT)
        locked.status = new_status
        locked.save(update_fields=["status", "updated_at"])
        _audit(action=f"campaign.{'pause' if new_status == Campaign.Status.PAUSED else 'resume'}",
               cc_or_campaign=locked, actor=actor, reason=reason)
    campaign.status = new_status
    return locked


def campaign_cancel(*, campaign: Campaign, actor: Any = None, reason: str = "") -> Campaign:
    """Cancel the campaign and every live enrolment (chunked, locked in id order); nothing more is sent."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status == Campaign.Status.CANCELED:
            return locked
        locked.status = Campaign.Status.CANCELED
        locked.save(update_fields=["status", "updated_at"])
        _audit(action="campaign.cancel", cc_or_campaign=locked, actor=actor, reason=reason)
    ids = list(ContactCampaign.objects.filter(campaign_id=campaign.pk, status__in=_LIVE_STATUSES)
               .order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), HANDLE_CHUNK):
        chunk = ids[start:start + HANDLE_CHUNK]
        with transaction.atomic():
            now = clock.now()
            rows = _lock(chunk)
            work = _Work(now)
            for cc_id in chunk:
                row = rows.get(cc_id)
                if row is not None and row.state.status not in engine.FINAL_STATUSES:
                    work.apply(row, engine.operator_stop(row.state, now, status=engine.CANCELED, event="canceled",
                                                         reason=reason or "campaign canceled"))
            work.flush(rows)
    campaign.status = Campaign.Status.CANCELED
    return locked


# --- delivery's hook --------------------------------------------------------------------------------------------

def send_action_reschedule(*, outbound_message_id: int, not_before: dt.datetime, reason: str
                           ) -> ScheduledAction | None:
    """(Re)arm the send of a still-queued message for `not_before` or later, moved out of quiet hours.

    For delivery: a 429's reset time, or a kill switch found on at send time. The message must be back in
    `queued` (delivery releases its claim first); otherwise nothing happens and None is returned.

    Only while the campaign is still on the message's node visit: a message that was `sending` when its
    node was left (leaving cancels only `queued` rows) or its campaign ended is canceled here instead, and
    None is returned, so it is never sent late (docs/engine.md). A `canceled` send action is never revived
    (its message is canceled too); a `done` one only while its node visit is current (see below).
    """
    message = OutboundMessage.objects.filter(pk=outbound_message_id).values(
        "contact_campaign_id", "node_id", "node_visit", "status", "tenant_id").first()
    if message is None or message["contact_campaign_id"] is None:
        return None
    cc_id = message["contact_campaign_id"]
    with transaction.atomic():
        rows = _lock([cc_id])
        row = rows.get(cc_id)
        status = OutboundMessage.objects.filter(pk=outbound_message_id).values_list("status", flat=True).first()
        if row is None or status != OutboundMessage.Status.QUEUED:
            return None
        now = clock.now()
        if row.state.status in engine.FINAL_STATUSES:
            cancel_reason = f"campaign ended: {row.state.status}"
        elif (row.state.current_node_id, row.state.node_visit) != (message["node_id"], message["node_visit"]):
            cancel_reason = "node left before sending"
        else:
            cancel_reason = ""
        if cancel_reason:
            # Under the campaign lock, so no node change can slip in between; the row would otherwise
            # stay `queued` with no live send action.
            OutboundMessage.objects.filter(pk=outbound_message_id, status=OutboundMessage.Status.QUEUED).update(
                status=OutboundMessage.Status.CANCELED, status_reason=cancel_reason[:300], updated_at=now)
            log.info("held outbound message %s canceled, not re-armed: %s", outbound_message_id, cancel_reason)
            return None
        earliest = max(not_before, now)
        if row.state.not_before is not None:
            earliest = max(earliest, row.state.not_before)
        due = next_send_time(row.plan, earliest) if row.plan is not None else earliest
        key = send_action_key(contact_campaign_id=cc_id, node_id=message["node_id"],
                              node_visit=message["node_visit"])
        live_status = ScheduledAction.Status.HELD if row.state.status == ContactCampaign.Status.PAUSED \
            else ScheduledAction.Status.PENDING
        payload = {"outbound_message_id": outbound_message_id, "rescheduled": reason[:200]}
        action = ScheduledAction.objects.filter(dedupe_key=key).first()
        if action is None:
            action = ScheduledAction.objects.create(
                dedupe_key=key, tenant_id=row.tenant_id, contact_campaign_id=cc_id, campaign_id=row.campaign_id,
                kind=ScheduledAction.Kind.SEND, node_id=message["node_id"], node_visit=message["node_visit"],
                due_at=due, status=live_status, outbound_message_id=outbound_message_id, payload=payload)
        elif action.status == ScheduledAction.Status.CANCELED:
            # Canceled on purpose: never revived, and its message is not left queued with no send action.
            OutboundMessage.objects.filter(pk=outbound_message_id, status=OutboundMessage.Status.QUEUED).update(
                status=OutboundMessage.Status.CANCELED, status_reason="send action canceled", updated_at=now)
            log.info("held outbound message %s canceled: its send action %s was canceled",
                     outbound_message_id, action.id)
            return None
        else:
            # pending / held / claimed, or `done` by a lease sweep that found the row `sending` (it was
            # mid-batch): the campaign is still on this node visit and the row is queued and unsent, so
            # re-arming is the only way it is ever sent; the row's own claim keeps it to one send.
            action.due_at, action.status, action.claimed_at, action.finished_at = due, live_status, None, None
            action.outbound_message_id, action.payload = outbound_message_id, payload
            action.save(update_fields=["due_at", "status", "claimed_at", "finished_at", "outbound_message_id",
                                       "payload"])
    log.info("send of outbound message %s rescheduled to %s: %s", outbound_message_id, due.isoformat(), reason)
    return action


__all__ = [
    "HandleResult", "PlanInvalid", "campaign_cancel", "campaign_enrol_contacts", "campaign_pause", "campaign_resume",
    "contact_campaign_cancel", "contact_campaign_handle_event", "contact_campaign_pause",
    "contact_campaign_replace_plan", "contact_campaign_resume", "contact_campaign_start",
    "contact_campaign_store_plan", "contact_campaigns_handle_events", "contact_campaigns_stop_for_address",
    "publish_ids", "scheduled_actions_run", "send_action_reschedule",
]
