"""The campaign plan DSL, version 1.0 (docs/plan-dsl.md): models, validator, JSON Schema, hashing.

Modules: `vocabulary` (events, limits, formats), `fields` (field types), `model` (the pydantic models),
`problems` (validation), `schema` (JSON Schema, canonical form, hash). Import from `campaigns.dsl`.

Validation happens in two passes so that every problem is reported at once:

1. shape: the pydantic models below (types, required keys, unknown keys, lengths,
   formats of ids, times, durations, time zones);
2. meaning: cross-field and graph rules (references, reachability, cycles,
   `within`/`after` rules, ...), run on the raw data so that they still report
   what they can when the shape pass has found problems elsewhere.

`validate_plan` returns the problems as `{"path": "nodes[2].transitions[0].to", "message": "..."}`;
`parse_plan` returns a `Plan` or raises `PlanInvalid`.
"""
from __future__ import annotations

from campaigns.dsl.fields import (
    HHMM,
    Duration,
    NodeId,
    NodeRef,
)
from campaigns.dsl.model import (
    AnySendNode,
    EmailMessage,
    EmailSendNode,
    Node,
    Plan,
    PlanMetadata,
    QuietHours,
    SendNode,
    SmsMessage,
    SmsSendNode,
    StopNode,
    Transition,
    Transitions,
    WaitNode,
)
from campaigns.dsl.problems import (
    PlanInvalid,
    parse_plan,
    validate_plan,
)
from campaigns.dsl.schema import (
    canonical_json,
    plan_hash,
    plan_json_schema,
)
from campaigns.dsl.vocabulary import (
    ALWAYS_RESOLVING_EVENTS,
    CLASSIFIED_REPLY_EVENTS,
    DEFAULT_STOP_REASON,
    ENGINE_EVENTS,
    HHMM_PATTERN,
    HUMAN_CLASSIFIED_REPLY_EVENTS,
    INTERNAL_EVENTS,
    MAX_NODES,
    MAX_SEND_NODES,
    MAX_TRANSITIONS_PER_NODE,
    NODE_ID_PATTERN,
    OWN_MESSAGE_EVENTS,
    PLAN_VERSION,
    POLICY_EVENTS,
    REAL_EVENTS,
    REPLY_EVENTS,
    SELF_FIRING_EVENTS,
    SYNTHETIC_EVENT_CANCELLED_BY,
    SYNTHETIC_EVENTS,
    TRANSITION_EVENT_ORDER,
    TRANSITION_EVENTS,
    WEEKDAYS,
    EventName,
    WeekdayName,
    transition_matches_event,
)

__all__ = [
    "ALWAYS_RESOLVING_EVENTS",
    "AnySendNode",
    "CLASSIFIED_REPLY_EVENTS",
    "DEFAULT_STOP_REASON",
    "Duration",
    "ENGINE_EVENTS",
    "EmailMessage",
    "EmailSendNode",
    "EventName",
    "HHMM",
    "HHMM_PATTERN",
    "HUMAN_CLASSIFIED_REPLY_EVENTS",
    "INTERNAL_EVENTS",
    "MAX_NODES",
    "MAX_SEND_NODES",
    "MAX_TRANSITIONS_PER_NODE",
    "NODE_ID_PATTERN",
    "Node",
    "NodeId",
    "NodeRef",
    "OWN_MESSAGE_EVENTS",
    "PLAN_VERSION",
    "POLICY_EVENTS",
    "Plan",
    "PlanMetadata",
    "PlanInvalid",
    "QuietHours",
    "REAL_EVENTS",
    "REPLY_EVENTS",
    "SELF_FIRING_EVENTS",
    "SYNTHETIC_EVENTS",
    "SYNTHETIC_EVENT_CANCELLED_BY",
    "SendNode",
    "SmsMessage",
    "SmsSendNode",
    "StopNode",
    "TRANSITION_EVENTS",
    "TRANSITION_EVENT_ORDER",
    "Transition",
    "Transitions",
    "WEEKDAYS",
    "WaitNode",
    "WeekdayName",
    "canonical_json",
    "parse_plan",
    "plan_hash",
    "plan_json_schema",
    "transition_matches_event",
    "validate_plan",
]
