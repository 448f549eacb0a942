"""The unit of work: the writes of one transaction, collected while the engine runs, flushed in bulk.

The engine (campaigns.engine) decides; `Work.apply` collects its decisions (state changes, transition
records, timers, sends, cancels, stops, reschedules) and `Work.flush` writes them in a fixed handful of
statements, whatever the number of contact campaigns: state, transitions, scheduled actions and the outbox
rows (campaigns.services.outbox) in the caller's transaction, delivery enqueued after commit.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from rest_framework import status as http_status

from campaigns.engine import (
    CancelTimers,
    Decision,
    RescheduleSend,
    ScheduleTimeout,
    ScheduleWait,
    SendConfirmed,
    SendMessage,
    Stop,
)
from campaigns.holds import CONTACT_CAMPAIGN_HELD_SQL
from campaigns.models import CampaignTransition, ContactCampaign, ScheduledAction
from campaigns.services.locking import LockedRow, lock_rows
from campaigns.services.notifications import after_flush
from campaigns.services.outbox import (
    outbox_cancel_for_stops,
    outbox_cancel_node_visits,
    outbox_copy_refresh,
    outbox_dedupe_key,
    outbox_rows_insert,
)
from outreach import clock
from outreach.db import fast_cursor, insert_rows
from outreach.errors import ApplicationError
from outreach.publishing import publish_ids_after_commit
from outreach.queues import TaskName
from outreach.tenancy.selectors import global_sending_stopped


def timer_key(cc_id: int, plan_version_id: int | None, action: ScheduleTimeout | ScheduleWait) -> str:
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


class Work:
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
        self.touched: dict[int, LockedRow] = {}
        self.done_action_ids: list[int] = []
        self.held_action_ids: list[int] = []
        self.deliver_ids: list[int] = []

    def apply(self, row: LockedRow, decision: Decision) -> None:
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

    def flush(self, rows: dict[int, LockedRow]) -> None:
        with fast_cursor() as cursor:
            self._flush_cancels(cursor)
            self._flush_stops(cursor)
            self._flush_reschedules(cursor)
            self._flush_confirmed(cursor)
        self._flush_new_actions(rows)
        insert_rows(CampaignTransition, self.transitions, now=self.now)
        self._flush_states()
        self._flush_action_statuses()
        after_flush(transitions=self.transitions, rows=rows | self.touched)  # webhooks, campaign completion
        publish_ids_after_commit(task_name=TaskName.DELIVER_MESSAGES, ids=self.deliver_ids)

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
        # A message not sent yet when its node is left is never sent late (docs/engine.md).
        outbox_cancel_node_visits(cursor, visits=[(c, n, v) for c, n, v, w in self.cancels if w], now=self.now)

    def _flush_stops(self, cursor: Any) -> None:
        if not self.stops:
            return
        ids = list(self.stops)
        cursor.execute(
            "UPDATE scheduled_actions SET status = 'canceled', finished_at = %s "
            "WHERE contact_campaign_id = ANY(%s) AND status IN ('pending', 'held', 'claimed')",
            [self.now, ids],
        )
        outbox_cancel_for_stops(cursor, stops=self.stops, now=self.now)

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

    def _flush_new_actions(self, rows: dict[int, LockedRow]) -> None:
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
                    "dedupe_key": timer_key(cc_id, row.plan_version_id, timer),
                })
        actions.extend(self._send_actions(rows))
        # One row per key: under ON CONFLICT DO UPDATE a statement may not propose the same key twice (PostgreSQL
        # refuses it, even when the update's WHERE is false); the first wins, as it did with DO NOTHING.
        unique: dict[str, dict[str, Any]] = {}
        for action in actions:
            unique.setdefault(action["dedupe_key"], action)
        insert_rows(ScheduledAction, list(unique.values()), now=self.now, suffix=_REARM_TIMERS)

    def _send_actions(self, rows: dict[int, LockedRow]) -> list[dict[str, Any]]:
        wanted = {cc_id: sends for cc_id, sends in self.sends.items() if sends}
        if not wanted:
            return []
        context = _send_context(list(wanted))
        global_stop: bool | None = None
        messages: list[dict[str, Any]] = []
        pairs: list[tuple[LockedRow, SendMessage]] = []
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
                    "to_address": ctx["phone"] if send.channel == "sms" else ctx["email"],
                    "subject": message.get("subject", "")[:300], "body_text": message.get("text", ""),
                    "body_html": message.get("html", ""),
                })
                pairs.append((row, send))
        if not messages:
            return []
        ids = outbox_rows_insert(rows=messages, now=self.now)
        for message, (_, send) in zip(messages, pairs, strict=True):
            if send.refresh:
                outbox_copy_refresh(message_id=ids[message["dedupe_key"]], subject=message["subject"],
                                    body_text=message["body_text"], body_html=message["body_html"], now=self.now)
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
        with fast_cursor() as cursor:
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
        with fast_cursor() as cursor:
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
    """Address, sender and hold state (campaigns.holds) of each contact campaign about to get a message."""
    with fast_cursor() as cursor:
        cursor.execute(
            f"""
            SELECT cc.id, ct.email, ct.phone, c.sender_identity_id, {CONTACT_CAMPAIGN_HELD_SQL} AS held
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


def apply_one(contact_campaign_id: int, decide: Callable[[LockedRow, dt.datetime], Decision]
              ) -> tuple[LockedRow, Decision]:
    """Lock one contact campaign, run `decide(row, now) -> Decision` on it and write the result."""
    now = clock.now()
    rows = lock_rows([contact_campaign_id])
    row = rows.get(contact_campaign_id)
    if row is None:
        raise ApplicationError("Contact campaign not found.", status_code=http_status.HTTP_404_NOT_FOUND)
    decision = decide(row, now)
    work = Work(now)
    work.apply(row, decision)
    work.flush(rows)
    return row, decision
