"""The engine's vocabulary: contact campaign statuses, events, state, actions and decisions.

Plain data, shared by the pure core (campaigns.engine, which re-exports every name here) and the services
that write its decisions. No database, no clock.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from campaigns.dsl import REPLY_EVENTS

# Contact campaign statuses (the values of ContactCampaign.Status; the core does not import models).
PENDING = "pending"
ACTIVE = "active"
PAUSED = "paused"
COMPLETED = "completed"
STOPPED = "stopped"
CANCELED = "canceled"
FAILED = "failed"
FINAL_STATUSES = frozenset({COMPLETED, STOPPED, CANCELED, FAILED})
RUNNING_STATUSES = frozenset({ACTIVE, PAUSED})

WAIT_ELAPSED = "wait_elapsed"
START = "start"  # the event name recorded for entering the start node
REPLAN = "plan_replaced"  # recorded when a new plan version takes over

# A human reply: any reply but the out-of-office auto-reply.
HUMAN_REPLY_EVENTS = REPLY_EVENTS - {"reply_ooo"}
# Events about one message; when they name a node the campaign has left, they move nothing.
MESSAGE_EVENTS = frozenset({"sent", "delivered", "open", "click"})
# Proof that this node's message went out, so its timeouts can be armed even if `sent` is missing or late.
SENT_EVIDENCE_EVENTS = frozenset({"sent", "delivered", "open", "click"})

# An out-of-office return date further ahead than this is not believed (a typo, a template gone wrong, a hostile
# caller): the auto-reply then counts as one without a return date. The events API and the reply classifier
# apply the same bound.
MAX_RETURN_DATE_AHEAD = dt.timedelta(days=180)

# Engagement bits of the current node visit (ContactCampaign.engagement_flags).
FLAG_OPEN = 1
FLAG_CLICK = 2
FLAG_REPLY = 4
SYNTHETIC_FLAG = {"no_open": FLAG_OPEN, "no_click": FLAG_CLICK, "no_reply": FLAG_REPLY}

# Outcomes (HandleResult.outcome): what the event did.
MOVED = "moved"  # entered another node (possibly a stop node)
STOPPED_OUTCOME = "stopped"  # halted by a policy event or an unhandled human reply
UPDATED = "updated"  # same node, but the state changed (engagement, sent time, not_before)
RECORDED = "recorded"  # recorded, nothing changed
STALE = "stale"  # a timer for a node visit already left, or a duplicate timer: a no-op, not recorded
HELD = "held"  # a timer for a paused contact campaign: keep it for the resume


@dataclass(frozen=True)
class EngineEvent:
    """Something that happened to a contact campaign (see docs/internal-interfaces.md)."""

    type: str
    occurred_at: dt.datetime
    node_id: str | None = None
    node_visit: int | None = None
    outbound_message_id: int | None = None
    is_machine: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineState:
    """The part of a ContactCampaign row the engine reads and writes."""

    status: str = PENDING
    current_node_id: str = ""
    node_visit: int = 0
    node_entered_at: dt.datetime | None = None
    node_sent_at: dt.datetime | None = None
    not_before: dt.datetime | None = None
    engagement_flags: int = 0
    stop_reason: str = ""
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


@dataclass(frozen=True)
class TransitionRecord:
    """One row for campaign_transitions (append-only history); from == to when nothing moved."""

    event: str
    from_node_id: str
    to_node_id: str
    node_visit: int
    from_status: str
    to_status: str
    occurred_at: dt.datetime
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


# --- actions ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SendMessage:
    """Create the outbox row for this node visit and hand it to delivery at `due_at`.

    `refresh`: the node was kept by a plan replacement; a still-queued message takes the new plan's copy.
    """

    node_id: str
    visit: int
    channel: str
    message: dict[str, Any]
    due_at: dt.datetime
    refresh: bool = False


@dataclass(frozen=True)
class ScheduleTimeout:
    """A synthetic no_open / no_click / no_reply for transition `transition_index` of the node visit."""

    node_id: str
    visit: int
    event: str
    transition_index: int
    due_at: dt.datetime


@dataclass(frozen=True)
class ScheduleWait:
    node_id: str
    visit: int
    due_at: dt.datetime


@dataclass(frozen=True)
class RescheduleSend:
    """Move the not-yet-sent message of this node visit to `due_at` (e.g. after an out-of-office reply)."""

    node_id: str
    visit: int
    due_at: dt.datetime


@dataclass(frozen=True)
class SendConfirmed:
    """This node visit's message is out (`sent`, or later proof of it): its send action is finished."""

    node_id: str
    visit: int


@dataclass(frozen=True)
class CancelTimers:
    """Cancel the pending timers of a node visit; with `include_send`, also its not-yet-sent message."""

    node_id: str
    visit: int
    include_send: bool = True


@dataclass(frozen=True)
class Stop:
    """The campaign is over: cancel every pending action and every message not yet sent."""

    reason: str
    status: str


Action = SendMessage | ScheduleTimeout | ScheduleWait | RescheduleSend | SendConfirmed | CancelTimers | Stop


@dataclass(frozen=True)
class Decision:
    new_state: EngineState
    transitions: list[TransitionRecord]
    actions: list[Action]
    outcome: str

    @property
    def changed(self) -> bool:
        return self.outcome in (MOVED, STOPPED_OUTCOME, UPDATED)


class PlanReplaceRefused(Exception):
    """The new plan has no node the campaign could stay on (see `replan`)."""
