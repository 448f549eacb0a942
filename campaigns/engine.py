"""The campaign engine's pure core: (plan, state, event, now) -> Decision.

No database, no clock, no Celery: everything it needs comes in as arguments and
everything it wants done goes out as data (a new state, transition records and
actions). campaigns.services loads and locks the rows, calls these functions and
writes their results in one transaction. The rules and the choices made where the
spec is silent are in docs/engine.md.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import replace
from functools import lru_cache
from typing import Any

from campaigns.dsl import (
    ENGINE_EVENTS,
    POLICY_EVENTS,
    SYNTHETIC_EVENTS,
    Plan,
    SendNode,
    StopNode,
    WaitNode,
    transition_matches_event,
)
from campaigns.durations import parse_duration
from campaigns.engine_types import (
    ACTIVE,
    CANCELED,
    COMPLETED,
    FAILED,
    FINAL_STATUSES,
    FLAG_CLICK,
    FLAG_OPEN,
    FLAG_REPLY,
    HELD,
    HUMAN_REPLY_EVENTS,
    MAX_RETURN_DATE_AHEAD,
    MESSAGE_EVENTS,
    MOVED,
    PAUSED,
    PENDING,
    RECORDED,
    REPLAN,
    RUNNING_STATUSES,
    SENT_EVIDENCE_EVENTS,
    STALE,
    START,
    STOPPED,
    STOPPED_OUTCOME,
    SYNTHETIC_FLAG,
    UPDATED,
    WAIT_ELAPSED,
    Action,
    CancelTimers,
    Decision,
    EngineEvent,
    EngineState,
    PlanReplaceRefused,
    RescheduleSend,
    ScheduleTimeout,
    ScheduleWait,
    SendConfirmed,
    SendMessage,
    Stop,
    TransitionRecord,
)

# The vocabulary (campaigns.engine_types) is part of the engine's API: `from campaigns.engine import MOVED`.
__all__ = [
    "ACTIVE",
    "Action",
    "CANCELED",
    "COMPLETED",
    "CancelTimers",
    "Decision",
    "EngineEvent",
    "EngineState",
    "FAILED",
    "FINAL_STATUSES",
    "FLAG_CLICK",
    "FLAG_OPEN",
    "FLAG_REPLY",
    "HELD",
    "HUMAN_REPLY_EVENTS",
    "MAX_RETURN_DATE_AHEAD",
    "MESSAGE_EVENTS",
    "MOVED",
    "PAUSED",
    "PENDING",
    "PlanReplaceRefused",
    "RECORDED",
    "REPLAN",
    "RUNNING_STATUSES",
    "RescheduleSend",
    "SENT_EVIDENCE_EVENTS",
    "STALE",
    "START",
    "STOPPED",
    "STOPPED_OUTCOME",
    "SYNTHETIC_FLAG",
    "ScheduleTimeout",
    "ScheduleWait",
    "SendConfirmed",
    "SendMessage",
    "Stop",
    "TransitionRecord",
    "UPDATED",
    "WAIT_ELAPSED",
    "decide",
    "enter_start",
    "operator_stop",
    "replan",
    "send_due_at",
]

# --- helpers ----------------------------------------------------------------------------------------------------

@lru_cache(maxsize=512)
def _duration(text: str) -> dt.timedelta:
    return parse_duration(text)


def _next_send_time(plan: Plan, not_before: dt.datetime) -> dt.datetime:
    from campaigns.scheduling import next_send_time

    return next_send_time(plan, not_before)


def send_due_at(plan: Plan, state: EngineState, now: dt.datetime) -> dt.datetime:
    """When this state's next message may go out: now or the contact's not_before, moved out of quiet hours."""
    earliest = now if state.not_before is None or state.not_before < now else state.not_before
    return _next_send_time(plan, earliest)


def _message_dict(node: SendNode) -> dict[str, Any]:
    return node.message.model_dump(mode="json", exclude_none=True)


def _record(state: EngineState, event: EngineEvent, reason: str, new_state: EngineState | None = None,
            outcome: str = RECORDED, actions: list[Action] | None = None) -> Decision:
    after = new_state or state
    record = TransitionRecord(
        event=event.type, from_node_id=state.current_node_id, to_node_id=after.current_node_id,
        node_visit=after.node_visit, from_status=state.status, to_status=after.status,
        occurred_at=event.occurred_at, reason=reason, detail=_record_detail(event),
    )
    return Decision(after, [record], actions or [], outcome)


def _record_detail(event: EngineEvent) -> dict[str, Any]:
    detail: dict[str, Any] = dict(event.detail) if event.detail else {}
    if event.node_id is not None and event.node_id != "":
        detail.setdefault("node_id", event.node_id)
    if event.node_visit is not None:
        detail.setdefault("node_visit", event.node_visit)
    if event.outbound_message_id is not None:
        detail.setdefault("outbound_message_id", event.outbound_message_id)
    if event.is_machine:
        detail.setdefault("is_machine", True)
    return detail


def _anchor(node: Any, state: EngineState) -> dt.datetime | None:
    """What `within` and a wait node's timers measure from: this node's send, or a wait node's entry."""
    return state.node_entered_at if isinstance(node, WaitNode) else state.node_sent_at


def _concerns_left_node(state: EngineState, event: EngineEvent) -> bool:
    if event.type not in MESSAGE_EVENTS or not event.node_id:
        return False
    if event.node_id != state.current_node_id:
        return True
    return event.node_visit is not None and event.node_visit != state.node_visit


def _policy_stop(event: EngineEvent) -> tuple[str, str] | None:
    """(status, reason) when a policy event ends the campaign, else None (a soft bounce changes nothing)."""
    kind = event.type
    detail = event.detail or {}
    if kind == "bounce" and str(detail.get("bounce_type", "")).lower() != "hard":
        return None
    status = FAILED if kind == "send_failed" else STOPPED
    if detail.get("stop_reason"):
        # The caller knows better (e.g. "unsubscribe:link_click" from messaging.compliance).
        return status, str(detail["stop_reason"])[:100]
    if kind == "bounce":
        return status, "hard_bounce"
    if kind in ("send_failed", "suppressed"):
        return status, _with_detail(kind, detail.get("reason"))
    return status, kind  # unsubscribe, spamreport, dropped, stop_request


def _with_detail(reason: str, extra: Any) -> str:
    return f"{reason}:{extra}"[:100] if extra else reason


def _parse_return_date(value: Any, plan: Plan, now: dt.datetime) -> dt.datetime | None:
    """An out-of-office return date as an instant: a date means the start of that day in the plan's zone.

    None when there is nothing usable: no value, one that is not a date, one in the past, or one more than
    MAX_RETURN_DATE_AHEAD away (also one beyond what a datetime can hold, e.g. 9999-12-31 west of UTC).
    """
    try:
        if isinstance(value, dt.datetime):
            parsed = value
        elif isinstance(value, dt.date):
            parsed = dt.datetime.combine(value, dt.time(0, 0))
        elif isinstance(value, str) and value:
            parsed = dt.datetime.fromisoformat(value)
        else:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zoneinfo.ZoneInfo(plan.timezone))
        back = parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None
    if back <= now or back - now > MAX_RETURN_DATE_AHEAD:
        return None
    return back


def _stop(state: EngineState, event: EngineEvent, now: dt.datetime, status: str, reason: str) -> Decision:
    new_state = replace(state, status=status, stop_reason=reason[:100], finished_at=now)
    actions: list[Action] = [Stop(reason=reason, status=status)]
    decision = _record(state, event, reason, new_state, STOPPED_OUTCOME, actions)
    return decision


# --- entering nodes ---------------------------------------------------------------------------------------------

def _enter(plan: Plan, state: EngineState, node_id: str, now: dt.datetime) -> tuple[EngineState, list[Action]]:
    node = plan.node(node_id)
    visit = state.node_visit + 1
    entered = replace(state, current_node_id=node_id, node_visit=visit, node_entered_at=now, node_sent_at=None,
                      engagement_flags=0)
    if isinstance(node, StopNode):
        reason = node.reason or "completed"
        # A stop node is the plan ending as designed: `completed`, with the node's reason kept (docs/engine.md).
        done = replace(entered, status=COMPLETED, stop_reason=reason[:100], finished_at=now)
        return done, [Stop(reason=reason, status=COMPLETED)]
    if isinstance(node, SendNode):
        send = SendMessage(node_id=node_id, visit=visit, channel=node.channel, message=_message_dict(node),
                           due_at=send_due_at(plan, entered, now))
        return entered, [send]
    actions: list[Action] = [ScheduleWait(node_id=node_id, visit=visit, due_at=now + _duration(node.duration))]
    actions.extend(_timeouts(node, node_id, visit, now, now))
    return entered, actions


def _timeouts(node: Any, node_id: str, visit: int, anchor: dt.datetime, now: dt.datetime) -> list[ScheduleTimeout]:
    """One timer per synthetic transition, `after` from the anchor (never in the past)."""
    out: list[ScheduleTimeout] = []
    for index, transition in enumerate(node.transitions):
        if transition.on in SYNTHETIC_EVENTS and transition.after:
            due = anchor + _duration(transition.after)
            out.append(ScheduleTimeout(node_id=node_id, visit=visit, event=transition.on, transition_index=index,
                                       due_at=max(due, now)))
    return out


def _move(plan: Plan, state: EngineState, event: EngineEvent, to_node_id: str, now: dt.datetime,
          reason: str = "") -> Decision:
    leave = CancelTimers(node_id=state.current_node_id, visit=state.node_visit)
    new_state, actions = _enter(plan, state, to_node_id, now)
    if new_state.status in FINAL_STATUSES and not reason:
        reason = new_state.stop_reason
    record = TransitionRecord(
        event=event.type, from_node_id=state.current_node_id, to_node_id=to_node_id,
        node_visit=new_state.node_visit, from_status=state.status, to_status=new_state.status,
        occurred_at=event.occurred_at, reason=reason, detail=_record_detail(event),
    )
    return Decision(new_state, [record], [leave, *actions], MOVED)


def enter_start(plan: Plan, now: dt.datetime, state: EngineState | None = None) -> Decision:
    """Start (or restart) a campaign at the plan's start node; the visit counter keeps counting."""
    before = state or EngineState()
    actions: list[Action] = []
    if before.status in RUNNING_STATUSES and before.current_node_id:
        actions.append(CancelTimers(node_id=before.current_node_id, visit=before.node_visit))
    started = replace(before, status=ACTIVE, started_at=before.started_at or now, stop_reason="", finished_at=None,
                      not_before=before.not_before if before.status in RUNNING_STATUSES else None)
    new_state, entry_actions = _enter(plan, started, plan.start_node_id, now)
    record = TransitionRecord(
        event=START, from_node_id=before.current_node_id, to_node_id=plan.start_node_id,
        node_visit=new_state.node_visit, from_status=before.status, to_status=new_state.status, occurred_at=now,
        reason=new_state.stop_reason if new_state.status in FINAL_STATUSES else "",
    )
    return Decision(new_state, [record], [*actions, *entry_actions], MOVED)


def replan(old_plan: Plan | None, new_plan: Plan, state: EngineState, now: dt.datetime, *,
           restart: bool = False) -> Decision:
    """A new plan takes over a running campaign.

    The campaign stays on its current node when the new plan has a node of that id: the node's timers are
    re-armed from the new plan (measured from the original send / entry) and a message not yet sent takes
    the new copy. Without such a node the replacement is refused unless `restart` is asked for, which
    enters the new plan's start node. Paused campaigns are re-armed the same way (their actions are held).
    """
    if restart:
        return enter_start(new_plan, now, state)
    if state.status not in RUNNING_STATUSES:
        raise PlanReplaceRefused(f"the campaign is {state.status}; only a running campaign's plan can be replaced")
    if not new_plan.has_node(state.current_node_id):
        raise PlanReplaceRefused(
            f"the new plan has no node {state.current_node_id!r}, where the campaign is now; "
            "replace it with restart=true to start the new plan from its start node"
        )
    node = new_plan.node(state.current_node_id)
    event = EngineEvent(type=REPLAN, occurred_at=now)
    actions: list[Action] = [CancelTimers(node_id=state.current_node_id, visit=state.node_visit, include_send=False)]
    if isinstance(node, StopNode):
        # The node the campaign is on is now a stop node: the plan ends here.
        new_state = replace(state, status=COMPLETED, stop_reason=node.reason[:100], finished_at=now)
        actions = [Stop(reason=node.reason, status=COMPLETED)]
        return _record(state, event, node.reason, new_state, MOVED, actions)
    if isinstance(node, WaitNode):
        entered = state.node_entered_at or now
        actions.append(ScheduleWait(node_id=node.id, visit=state.node_visit,
                                    due_at=max(entered + _duration(node.duration), now)))
        actions.extend(_timeouts(node, node.id, state.node_visit, entered, now))
    elif state.node_sent_at is not None:
        actions.extend(_timeouts(node, node.id, state.node_visit, state.node_sent_at, now))
    else:
        actions.append(SendMessage(node_id=node.id, visit=state.node_visit, channel=node.channel,
                                   message=_message_dict(node), due_at=send_due_at(new_plan, state, now),
                                   refresh=True))
    return _record(state, event, "kept_node", state, UPDATED, actions)


def operator_stop(state: EngineState, now: dt.datetime, *, status: str, event: str, reason: str) -> Decision:
    """An operator (or a campaign-wide cancel) ends the campaign: `canceled`, or `stopped`."""
    new_state = replace(state, status=status, stop_reason=reason[:100], finished_at=now)
    return _record(state, EngineEvent(type=event, occurred_at=now), reason, new_state, STOPPED_OUTCOME,
                   [Stop(reason=reason, status=status)])


# --- events -----------------------------------------------------------------------------------------------------

def decide(plan: Plan | None, state: EngineState, event: EngineEvent, now: dt.datetime) -> Decision:
    """What `event` does to a contact campaign in `state` running `plan` (None while no plan is written)."""
    kind = event.type
    if kind in SYNTHETIC_EVENTS or kind == WAIT_ELAPSED:
        return _timer(plan, state, event, now)
    if kind not in ENGINE_EVENTS:
        return _record(state, event, "unknown_event")
    if state.status in FINAL_STATUSES:
        return _record(state, event, "campaign_finished")
    if kind in POLICY_EVENTS:
        stop = _policy_stop(event)
        if stop is None:
            return _record(state, event, "soft_bounce")
        return _stop(state, event, now, *stop)
    if state.status not in RUNNING_STATUSES or plan is None or not plan.has_node(state.current_node_id):
        # Pending (no plan yet): only policy events can act on it.
        return _record(state, event, "not_started")
    if event.is_machine and kind in ("open", "click"):
        return _record(state, event, "machine_event")
    if _concerns_left_node(state, event):
        return _record(state, event, "node_left")
    return _real_event(plan, state, event, now)


def _real_event(plan: Plan, state: EngineState, event: EngineEvent, now: dt.datetime) -> Decision:
    kind = event.type
    node = plan.node(state.current_node_id)
    arm_timeouts = False
    new_state = state
    if isinstance(node, SendNode):
        if kind in SENT_EVIDENCE_EVENTS and state.node_sent_at is None:
            # `sent` (or later proof of it, when `sent` is late or lost) anchors `within` and the timeouts.
            sent_at = event.detail.get("sent_at") if kind != "sent" else None
            new_state = replace(new_state, node_sent_at=sent_at or event.occurred_at)
            arm_timeouts = True
        elif kind == "sent":
            return _record(state, event, "duplicate")
    new_state = _with_engagement(new_state, kind)
    new_state, reschedule = _out_of_office(plan, node, new_state, event, now)

    transition = _matching_transition(node, new_state, event)
    if transition is not None:
        decision = _move(plan, new_state, event, transition.to, now)
        # The record's from_status / from_node are the state before this event.
        return Decision(decision.new_state, decision.transitions, [*reschedule, *decision.actions], MOVED)
    if kind in HUMAN_REPLY_EVENTS:
        # A human reply that the plan does not handle ends the campaign: never keep mailing someone who answered.
        return _stop(state, event, now, STOPPED, "replied")

    actions: list[Action] = list(reschedule)
    if arm_timeouts and isinstance(node, SendNode):
        actions.append(SendConfirmed(node_id=node.id, visit=new_state.node_visit))
        actions.extend(_timeouts(node, node.id, new_state.node_visit, new_state.node_sent_at, now))
    reason = "sent" if arm_timeouts else "no_match"
    if new_state == state:
        return _record(state, event, reason)
    return _record(state, event, reason, new_state, UPDATED, actions)


def _with_engagement(state: EngineState, kind: str) -> EngineState:
    """The node visit's engagement bits after an open, a click or a human reply."""
    flags = state.engagement_flags
    if kind == "open":
        flags |= FLAG_OPEN
    elif kind == "click":
        flags |= FLAG_OPEN | FLAG_CLICK  # a click proves the message was opened, images or not
    elif kind in HUMAN_REPLY_EVENTS:
        flags |= FLAG_OPEN | FLAG_REPLY
    return state if flags == state.engagement_flags else replace(state, engagement_flags=flags)


def _out_of_office(plan: Plan, node: Any, state: EngineState, event: EngineEvent, now: dt.datetime
                   ) -> tuple[EngineState, list[Action]]:
    """An out-of-office reply with a believable return date: nothing is sent before it (a send not yet
    out is moved)."""
    if event.type != "reply_ooo":
        return state, []
    back = _parse_return_date((event.detail or {}).get("return_date"), plan, now)
    if back is None or (state.not_before is not None and back <= state.not_before):
        return state, []
    state = replace(state, not_before=back)
    if isinstance(node, SendNode) and state.node_sent_at is None:
        return state, [RescheduleSend(node_id=node.id, visit=state.node_visit, due_at=send_due_at(plan, state, now))]
    return state, []


def _matching_transition(node: Any, state: EngineState, event: EngineEvent) -> Any:
    """The node's first transition on this (real) event, within its `within` window when it has one."""
    anchor = _anchor(node, state)
    for transition in node.transitions:
        if transition.on in SYNTHETIC_EVENTS or not transition_matches_event(transition.on, event.type):
            continue
        if transition.within and anchor is not None and event.occurred_at > anchor + _duration(transition.within):
            continue
        return transition
    return None


def _timer(plan: Plan | None, state: EngineState, event: EngineEvent, now: dt.datetime) -> Decision:
    """A timer fired: a synthetic no_* event or a wait node's end. Stale or pre-empted timers do nothing."""
    if state.status not in RUNNING_STATUSES or plan is None:
        return Decision(state, [], [], STALE)
    if event.node_id != state.current_node_id or event.node_visit != state.node_visit:
        return Decision(state, [], [], STALE)
    if state.status == PAUSED:
        return Decision(state, [], [], HELD)
    if not plan.has_node(state.current_node_id):
        return Decision(state, [], [], STALE)
    node = plan.node(state.current_node_id)
    if event.type == WAIT_ELAPSED:
        if not isinstance(node, WaitNode):
            return Decision(state, [], [], STALE)
        return _move(plan, state, event, node.next, now)
    if isinstance(node, StopNode):
        return Decision(state, [], [], STALE)
    if state.engagement_flags & SYNTHETIC_FLAG[event.type]:
        # The contact did open / click / reply to this node's message: the silence this timer waits for never came.
        return Decision(state, [], [], STALE)
    transition = _timer_transition(node, event)
    if transition is None:
        return Decision(state, [], [], STALE)
    return _move(plan, state, event, transition.to, now)


def _timer_transition(node: Any, event: EngineEvent) -> Any:
    index = (event.detail or {}).get("transition_index")
    transitions = node.transitions
    if isinstance(index, int) and 0 <= index < len(transitions) and transitions[index].on == event.type:
        # The timer names its transition: with two no_reply transitions of different `after`, the one that
        # elapsed fires, whatever the list order.
        return transitions[index]
    for transition in transitions:
        if transition.on == event.type:
            return transition
    return None
