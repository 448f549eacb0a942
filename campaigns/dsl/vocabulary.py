"""The plan language's vocabulary: its version, the events a transition may name, limits and formats."""
from __future__ import annotations

from typing import Literal

PLAN_VERSION = "1.0"

# --- events -----------------------------------------------------------------------------------------------------

CLASSIFIED_REPLY_EVENTS = frozenset({"reply_positive", "reply_negative", "reply_neutral", "reply_ooo"})
REPLY_EVENTS = frozenset({"reply"}) | CLASSIFIED_REPLY_EVENTS
# The classified replies a person wrote: these, and only these, also match a plain `reply` transition.
HUMAN_CLASSIFIED_REPLY_EVENTS = CLASSIFIED_REPLY_EVENTS - {"reply_ooo"}
# Events that really happen to a message or contact; a transition may add `within` to them.
REAL_EVENTS = frozenset({"sent", "delivered", "open", "click", "meeting_booked"}) | REPLY_EVENTS
# The absence of an engagement for `after`, measured from this node's send.
SYNTHETIC_EVENTS = frozenset({"no_open", "no_click", "no_reply"})
# For each synthetic event, the real event whose absence it means.
SYNTHETIC_EVENT_CANCELLED_BY = {"no_open": "open", "no_click": "click", "no_reply": "reply"}
TRANSITION_EVENTS = REAL_EVENTS | SYNTHETIC_EVENTS
# Events that move a send node on without the contact doing anything (spec: "so that no campaign waits forever").
SELF_FIRING_EVENTS = frozenset({"sent"}) | SYNTHETIC_EVENTS
# What a send node needs at least one of so that it always moves on (docs/plan-dsl.md, "Meaning"): `sent` fires
# once the message is out; `no_reply` fires unless the contact replies, and a human reply always moves or stops
# the campaign. `no_open` / `no_click` alone are not enough: after a human open / click they never fire.
ALWAYS_RESOLVING_EVENTS = frozenset({"sent", "no_reply"})
# Events about this node's own message; a wait node sends nothing, so they can never fire there.
OWN_MESSAGE_EVENTS = frozenset({"sent", "delivered"}) | SYNTHETIC_EVENTS
# Events no plan may name or override; the engine handles them by policy.
POLICY_EVENTS = frozenset(
    {"unsubscribe", "spamreport", "bounce", "dropped", "stop_request", "suppressed", "send_failed"}
)
INTERNAL_EVENTS = frozenset({"wait_elapsed"})
ENGINE_EVENTS = TRANSITION_EVENTS | POLICY_EVENTS | INTERNAL_EVENTS

# Spec order, for messages and the JSON Schema enum.
TRANSITION_EVENT_ORDER = (
    "sent", "delivered", "open", "click", "reply", "reply_positive", "reply_negative", "reply_neutral",
    "reply_ooo", "meeting_booked", "no_open", "no_click", "no_reply",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index == datetime.weekday()

MAX_NODES = 30
MAX_SEND_NODES = 10
MAX_TRANSITIONS_PER_NODE = 20
NODE_ID_PATTERN = r"^[a-z0-9_-]{1,64}$"
HHMM_PATTERN = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
DEFAULT_STOP_REASON = "completed"

EventName = Literal[
    "sent", "delivered", "open", "click", "reply", "reply_positive", "reply_negative", "reply_neutral",
    "reply_ooo", "meeting_booked", "no_open", "no_click", "no_reply",
]
WeekdayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def transition_matches_event(on: str, event_type: str) -> bool:
    """Whether a transition naming `on` matches an event of `event_type`.

    A classified human reply (`reply_positive|negative|neutral`) also matches `reply`; `reply_ooo` matches only
    `reply_ooo`: `reply` is "any human reply" and an out-of-office auto-reply is not one (docs/plan-dsl.md).
    """
    return on == event_type or (on == "reply" and event_type in HUMAN_CLASSIFIED_REPLY_EVENTS)
