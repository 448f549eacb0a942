"""The campaign plan DSL, version 1.0 (docs/plan-dsl.md): models, validator, JSON Schema, hashing.

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

import copy
import hashlib
import json
import re
import zoneinfo
from collections.abc import Mapping
from datetime import time, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from campaigns.durations import DURATION_PATTERN, duration_problem, parse_duration
from outreach.errors import ApplicationError

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


# --- field types ------------------------------------------------------------------------------------------------

def _fail(message: str) -> PydanticCustomError:
    # The message goes through the context so that braces in user input cannot break the template.
    return PydanticCustomError("plan_rule", "{message}", {"message": message})


_NODE_ID_RE = re.compile(r"[a-z0-9_-]{1,64}\Z")
_HHMM_RE = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]\Z")
_LINE_BREAKS = frozenset("\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def _check_node_id(value: str) -> str:
    if not _NODE_ID_RE.match(value):
        raise _fail(f"node id {value!r} must be 1 to 64 characters of a-z, 0-9, '_' or '-'")
    return value


def _check_hhmm(value: str) -> str:
    if not _HHMM_RE.match(value):
        raise _fail(f"{value!r} is not a 24-hour time HH:MM between 00:00 and 23:59")
    return value


def _check_duration(value: str) -> str:
    problem = duration_problem(value)
    if problem:
        raise _fail(problem)
    return value


# On the system tz path, but not zones a plan could mean: the host's own setting, a tzcode helper file, and
# the "-00" placeholder zone.
_NOT_PLAN_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_PLAN_ZONES


def is_iana_timezone(name: str) -> bool:
    """True for a key of the IANA database (`Europe/Berlin`, `UTC`); false for paths, 'localtime', offsets."""
    return name in _iana_zones()


def _check_timezone(value: str) -> str:
    if not is_iana_timezone(value):
        raise _fail(f"{value!r} is not an IANA time zone name such as 'Europe/Berlin' or 'America/New_York'")
    return value


def _check_one_line(value: str) -> str:
    if any(ch in _LINE_BREAKS for ch in value):
        raise _fail("must be a single line (no line breaks)")
    return value


def _check_not_blank(value: str) -> str:
    if not value.strip():
        raise _fail("must not be blank")
    return value


def _check_send_days(value: list[str]) -> list[str]:
    if not value:
        raise _fail("must name at least one day (leave sendDays out to allow every day)")
    seen: set[str] = set()
    for day in value:
        if day in seen:
            raise _fail(f"{day!r} is listed twice")
        seen.add(day)
    return value


NodeId = Annotated[str, AfterValidator(_check_node_id), Field(json_schema_extra={"pattern": NODE_ID_PATTERN})]
NodeRef = Annotated[str, Field(description="id of a node of this plan")]
Duration = Annotated[
    str,
    AfterValidator(_check_duration),
    Field(
        description="ISO 8601 duration between PT1M and P90D, e.g. PT30M, P3D, P1W, P1DT12H",
        json_schema_extra={"pattern": DURATION_PATTERN},
    ),
]
HHMM = Annotated[str, AfterValidator(_check_hhmm), Field(json_schema_extra={"pattern": HHMM_PATTERN})]


def _text(min_length: int, max_length: int, *, one_line: bool = False) -> Any:
    # Length first (clear pydantic message about characters), then content rules.
    checks = [AfterValidator(_check_one_line)] if one_line else []
    return Annotated[
        str, Field(min_length=min_length, max_length=max_length), *checks, AfterValidator(_check_not_blank)
    ]


# --- models -----------------------------------------------------------------------------------------------------

class _DslModel(BaseModel):
    # strict: no silent coercion (e.g. 5 -> "5"); forbid: a typo must not silently change behaviour.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_absent(cls, data: Any) -> Any:
        # OpenAI strict structured outputs write null for every unused optional key; treat it as absent, so the
        # default applies and the key stays unset (and out of `to_document`). Required keys keep null as an error.
        if isinstance(data, dict) and None in data.values():
            optional = {field.alias or name for name, field in cls.model_fields.items() if not field.is_required()}
            data = {key: value for key, value in data.items() if not (value is None and key in optional)}
        return data


class QuietHours(_DslModel):
    """No send from `start` (inclusive) to `end` (exclusive), local time; wraps midnight when start > end."""

    start: HHMM
    end: HHMM

    @model_validator(mode="after")
    def _start_differs_from_end(self) -> QuietHours:
        if self.start == self.end:
            raise _fail(f"start and end are both {self.start}; quiet hours must not be empty or cover the whole day")
        return self

    @property
    def start_time(self) -> time:
        return time.fromisoformat(self.start)

    @property
    def end_time(self) -> time:
        return time.fromisoformat(self.end)

    @property
    def wraps_midnight(self) -> bool:
        return self.start > self.end


class EmailMessage(_DslModel):
    subject: _text(1, 200, one_line=True)
    text: _text(1, 20_000)
    html: _text(1, 100_000) | None = None


class SmsMessage(_DslModel):
    text: _text(1, 1_600)


class Transition(_DslModel):
    on: EventName
    to: NodeRef
    within: Duration | None = None
    after: Duration | None = None

    @property
    def within_delta(self) -> timedelta | None:
        return parse_duration(self.within) if self.within else None

    @property
    def after_delta(self) -> timedelta | None:
        return parse_duration(self.after) if self.after else None

    def matches(self, event_type: str) -> bool:
        return transition_matches_event(self.on, event_type)


Transitions = Annotated[list[Transition], Field(max_length=MAX_TRANSITIONS_PER_NODE)]


class SendNode(_DslModel):
    """Base of `EmailSendNode` and `SmsSendNode`; test with `isinstance(node, SendNode)`."""

    id: NodeId
    type: Literal["send"]
    channel: Literal["email", "sms"]
    message: EmailMessage | SmsMessage
    transitions: Transitions


class EmailSendNode(SendNode):
    channel: Literal["email"]
    message: EmailMessage


class SmsSendNode(SendNode):
    channel: Literal["sms"]
    message: SmsMessage


class WaitNode(_DslModel):
    id: NodeId
    type: Literal["wait"]
    duration: Duration
    next: NodeRef
    transitions: Transitions = Field(default_factory=list)

    @property
    def duration_delta(self) -> timedelta:
        return parse_duration(self.duration)


class StopNode(_DslModel):
    id: NodeId
    type: Literal["stop"]
    reason: _text(1, 100, one_line=True) = DEFAULT_STOP_REASON


AnySendNode = Annotated[Union[EmailSendNode, SmsSendNode], Field(discriminator="channel")]  # noqa: UP007
Node = Annotated[Union[AnySendNode, WaitNode, StopNode], Field(discriminator="type")]  # noqa: UP007


class Plan(_DslModel):
    """A whole plan. Build it with `parse_plan`: `Plan.model_validate` alone checks the shape, not the graph."""

    version: Literal["1.0"]
    timezone: Annotated[str, AfterValidator(_check_timezone), Field(description="IANA time zone name")]
    quiet_hours: QuietHours | None = Field(default=None, alias="quietHours")
    send_days: Annotated[
        list[WeekdayName],
        AfterValidator(_check_send_days),
        Field(json_schema_extra={"minItems": 1, "maxItems": 7, "uniqueItems": True}),
    ] | None = Field(default=None, alias="sendDays")
    start_node_id: NodeRef = Field(alias="startNodeId")
    nodes: Annotated[list[Node], Field(min_length=1, max_length=MAX_NODES)]

    _by_id: dict[str, SendNode | WaitNode | StopNode] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any) -> None:
        self._by_id.update((node.id, node) for node in self.nodes)

    def node(self, node_id: str) -> SendNode | WaitNode | StopNode:
        """The node with that id; KeyError if the plan has none."""
        return self._by_id[node_id]

    def has_node(self, node_id: str) -> bool:
        return node_id in self._by_id

    @property
    def start_node(self) -> SendNode | WaitNode | StopNode:
        return self._by_id[self.start_node_id]

    @property
    def send_weekdays(self) -> frozenset[int]:
        """Allowed `datetime.weekday()` numbers (0 = Monday); every day when sendDays is absent."""
        days = self.send_days or WEEKDAYS
        return frozenset(WEEKDAYS.index(day) for day in days)

    def to_document(self) -> dict[str, Any]:
        """The plan as JSON-ready data with the DSL's key names (keys the input left out stay out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


# --- validation -------------------------------------------------------------------------------------------------

class PlanInvalid(ApplicationError):
    """A plan that breaks the DSL; `.problems` lists every problem as {"path", "message"}."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        first = problems[0] if problems else {"path": "", "message": "invalid plan"}
        where = f"{first['path']}: " if first["path"] else ""
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid plan: {where}{first['message']}{more}", field="plan", extra={"problems": problems})
        self.problems = problems


def validate_plan(data: Any) -> list[dict[str, str]]:
    """Every problem of a plan, each {"path": "nodes[2].transitions[0].to", "message": "..."}; [] when valid."""
    return _validate(data)[0]


def parse_plan(data: Any) -> Plan:
    """The validated `Plan`; raises `PlanInvalid` with every problem otherwise."""
    if isinstance(data, Plan):
        return data
    problems, plan = _validate(data)
    if problems or plan is None:
        raise PlanInvalid(problems)
    return plan


def _validate(data: Any) -> tuple[list[dict[str, str]], Plan | None]:
    if not isinstance(data, Mapping):
        return [_problem("", f"a plan must be a JSON object, not {_json_type(data)}")], None
    problems: list[dict[str, str]] = []
    plan: Plan | None = None
    try:
        plan = Plan.model_validate(dict(data))
    except ValidationError as exc:
        problems.extend(_problem_from_pydantic(error) for error in exc.errors(include_url=False))
    problems.extend(_semantic_problems(data))
    unique: list[dict[str, str]] = []
    for problem in problems:
        if problem not in unique:
            unique.append(problem)
    return unique, (plan if not unique else None)


def _problem(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _format_path(parts: list[str | int]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


_NODE_TAGS = ("send", "wait", "stop")
_CHANNEL_TAGS = ("email", "sms")


def _strip_union_tags(loc: tuple[str | int, ...]) -> list[str | int]:
    """Drop pydantic's discriminator tags: ('nodes', 0, 'send', 'email', 'message') -> nodes[0].message."""
    parts: list[str | int] = []
    i = 0
    while i < len(loc):
        part = loc[i]
        parts.append(part)
        if len(parts) == 2 and parts[0] == "nodes" and isinstance(part, int):
            if i + 1 < len(loc) and loc[i + 1] in _NODE_TAGS:
                i += 1
                if loc[i] == "send" and i + 1 < len(loc) and loc[i + 1] in _CHANNEL_TAGS:
                    i += 1
        i += 1
    return parts


def _problem_from_pydantic(error: Mapping[str, Any]) -> dict[str, str]:
    loc = tuple(error.get("loc", ()))
    parts = _strip_union_tags(loc)
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    value = error.get("input")
    message = str(error.get("msg", "invalid"))

    if kind == "plan_rule":
        message = str(ctx.get("message", message))
    elif kind == "extra_forbidden":
        message = f"unknown key {parts[-1]!r}" if parts else "unknown key"
    elif kind == "missing":
        message = "is required"
    elif kind == "union_tag_not_found":
        # The discriminator itself is absent: report it at the key the user has to add.
        field = "channel" if len(loc) == 3 else "type"
        if parts and parts[-1] == "send":
            parts.pop()
        parts.append(field)
        if field == "type":
            message = "is required: one of 'send', 'wait', 'stop'"
        else:
            message = "is required: one of 'email', 'sms'"
    elif kind == "union_tag_invalid":
        field = "channel" if len(loc) == 3 else "type"
        if parts and parts[-1] == "send":
            parts.pop()
        parts.append(field)
        expected = "'email' or 'sms'" if field == "channel" else "'send', 'wait' or 'stop'"
        message = f"unknown {'channel' if field == 'channel' else 'node type'} {ctx.get('tag')!r}; expected {expected}"
    elif kind == "literal_error" and parts == ["version"]:
        message = f"unsupported version {value!r}; this validator understands version '{PLAN_VERSION}' only"
    elif kind == "literal_error" and parts and parts[-1] == "on":
        if isinstance(value, str) and (value in POLICY_EVENTS or value in INTERNAL_EVENTS):
            message = f"{value!r} cannot be named in a transition: the engine handles it by policy"
        else:
            message = f"unknown event {value!r}; expected one of {', '.join(TRANSITION_EVENT_ORDER)}"
    elif kind == "literal_error":
        message = f"{message}, got {value!r}"
    elif kind in ("model_attributes_type", "model_type", "dict_type"):
        message = f"must be an object, not {_json_type(value)}"
    elif kind == "list_type":
        message = f"must be an array, not {_json_type(value)}"
    elif kind == "string_type":
        message = f"must be a string, not {_json_type(value)}"
    return _problem(_format_path(parts), message)


def _semantic_problems(data: Mapping[str, Any]) -> list[dict[str, str]]:
    """Cross-field and graph rules, on raw data; values of the wrong shape are skipped (the shape pass reports them)."""
    problems: list[dict[str, str]] = []
    nodes = data.get("nodes")
    if not isinstance(nodes, list):
        return problems

    # ids: first occurrence wins, so later checks still have a graph to look at.
    index_of: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            continue
        node_id = node["id"]
        if node_id in index_of:
            first = index_of[node_id]
            problems.append(_problem(f"nodes[{i}].id", f"duplicate node id {node_id!r} (also nodes[{first}])"))
        else:
            index_of[node_id] = i

    send_count = sum(1 for node in nodes if isinstance(node, Mapping) and node.get("type") == "send")
    if send_count > MAX_SEND_NODES:
        problems.append(_problem("nodes", f"at most {MAX_SEND_NODES} send nodes are allowed, found {send_count}"))

    start = data.get("startNodeId")
    if isinstance(start, str) and start not in index_of:
        problems.append(_problem("startNodeId", f"no node has id {start!r}"))

    # edges[i] = [(path of the reference, index of the target)]
    edges: dict[int, list[tuple[str, int]]] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, Mapping):
            continue
        node_type = node.get("type")
        out: list[tuple[str, int]] = edges.setdefault(i, [])
        if node_type == "wait" and isinstance(node.get("next"), str):
            target = node["next"]
            if target in index_of:
                out.append((f"nodes[{i}].next", index_of[target]))
            else:
                problems.append(_problem(f"nodes[{i}].next", f"no node has id {target!r}"))
        transitions = node.get("transitions")
        if not isinstance(transitions, list):
            continue
        for j, transition in enumerate(transitions):
            if not isinstance(transition, Mapping):
                continue
            path = f"nodes[{i}].transitions[{j}]"
            problems.extend(_transition_problems(path, node_type, transition))
            target = transition.get("to")
            if isinstance(target, str):
                if target in index_of:
                    out.append((f"{path}.to", index_of[target]))
                else:
                    problems.append(_problem(f"{path}.to", f"no node has id {target!r}"))
        if node_type == "send":
            events = {t.get("on") for t in transitions if isinstance(t, Mapping) and isinstance(t.get("on"), str)}
            if not events & ALWAYS_RESOLVING_EVENTS:
                only_open_click = sorted(events & SELF_FIRING_EVENTS)
                why = (f" ({' and '.join(repr(e) for e in only_open_click)} no longer fire once the contact "
                       "opens or clicks, and then nothing would move the campaign on)" if only_open_click else "")
                problems.append(_problem(
                    f"nodes[{i}].transitions",
                    "a send node needs a 'sent' or 'no_reply' transition, one that fires without the contact "
                    f"doing anything, so that the campaign never waits forever and every path ends in a stop "
                    f"node{why}",
                ))

    # Graph rules, on the first node of each id.
    graph_nodes = sorted(set(index_of.values()))
    if isinstance(start, str) and start in index_of:
        reached = {index_of[start]}
        frontier = [index_of[start]]
        while frontier:
            current = frontier.pop()
            for _, target in edges.get(current, []):
                if target not in reached:
                    reached.add(target)
                    frontier.append(target)
        for i in graph_nodes:
            if i not in reached:
                problems.append(_problem(
                    f"nodes[{i}]", f"node {nodes[i]['id']!r} is not reachable from startNodeId {start!r}"
                ))

    problems.extend(_cycle_problems(nodes, graph_nodes, edges))

    # "Every path ends in a stop node" needs no check of its own: with no cycle, every reference
    # resolved, `next` required on wait nodes and a transition required on send nodes, only stop
    # nodes are dead ends.
    return problems


def _transition_problems(path: str, node_type: Any, transition: Mapping[str, Any]) -> list[dict[str, str]]:
    problems: list[dict[str, str]] = []
    on = transition.get("on")
    if not isinstance(on, str) or on not in TRANSITION_EVENTS:
        return problems  # the shape pass reports it
    within, after = transition.get("within"), transition.get("after")
    if on in SYNTHETIC_EVENTS:
        if within is not None:
            problems.append(_problem(f"{path}.within", f"'within' is allowed on real events only, not on {on!r}"))
        if after is None:
            awaited = SYNTHETIC_EVENT_CANCELLED_BY[on]
            problems.append(_problem(f"{path}.after", f"is required for {on!r}: how long to wait for the {awaited}"))
    elif after is not None:
        problems.append(_problem(
            f"{path}.after", f"'after' is only allowed on no_open, no_click and no_reply, not on {on!r}"
        ))
    if node_type == "wait" and on in OWN_MESSAGE_EVENTS:
        problems.append(_problem(
            f"{path}.on",
            f"{on!r} can never fire on a wait node (it sends no message); use the node's duration and next instead",
        ))
    return problems


def _cycle_problems(
    nodes: list[Any], graph_nodes: list[int], edges: dict[int, list[tuple[str, int]]]
) -> list[dict[str, str]]:
    """One problem per edge that closes a cycle, at the path of that reference."""
    problems: list[dict[str, str]] = []
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph_nodes, white)
    for root in graph_nodes:
        if colour[root] != white:
            continue
        # Iterative DFS: (node, iterator over its edges); `stack_ids` is the current path for the message.
        colour[root] = grey
        stack = [(root, iter(edges.get(root, [])))]
        while stack:
            current, it = stack[-1]
            step = next(it, None)
            if step is None:
                colour[current] = black
                stack.pop()
                continue
            ref_path, target = step
            if colour.get(target) == grey:
                on_path = [index for index, _ in stack]
                loop = on_path[on_path.index(target):] + [target]
                names = " -> ".join(str(nodes[index]["id"]) for index in loop)
                problems.append(_problem(ref_path, f"creates a cycle: {names}; plans must be acyclic"))
            elif colour.get(target) == white:
                colour[target] = grey
                stack.append((target, iter(edges.get(target, []))))
    return problems


# --- JSON Schema ------------------------------------------------------------------------------------------------

def plan_json_schema(*, strict: bool = False) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the plan.

    `strict=False` (default): the faithful schema; every valid plan validates against it. Hand it to
    OpenAI as `response_format={"type": "json_schema", "json_schema": {"name": "plan", "schema": ...,
    "strict": False}}`. `strict=True`: a variant for OpenAI strict structured outputs, which require
    every property to be listed as required (optional ones become nullable), `anyOf` instead of `oneOf`,
    and no length keywords; `validate_plan` treats those nulls as absent keys. Either way the model's
    answer must still go through `validate_plan`, which checks what a schema cannot (graph, bounds).
    """
    schema = copy.deepcopy(_base_schema())
    if strict:
        schema = _strictify(schema)
        schema.pop("$schema", None)  # OpenAI takes the schema's dialect as given
    return schema


@lru_cache(maxsize=1)
def _base_schema() -> dict[str, Any]:
    schema = Plan.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Campaign plan (DSL 1.0)"
    return schema


_STRICT_DROP = {"minLength", "maxLength", "uniqueItems", "default", "discriminator"}


def _strictify(node: Any) -> Any:
    if isinstance(node, list):
        return [_strictify(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _STRICT_DROP:
            continue
        if key == "oneOf":
            out["anyOf"] = _strictify(value)
        elif key == "const":
            out["enum"] = [value]
        elif key in ("properties", "$defs"):
            out[key] = {name: _strictify(sub) for name, sub in value.items()}
        else:
            out[key] = _strictify(value)
    if out.get("type") == "object" and "properties" in out:
        required = set(out.get("required", []))
        for name, sub in out["properties"].items():
            if name not in required and not _allows_null(sub):
                out["properties"][name] = {"anyOf": [sub, {"type": "null"}]}
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


def _allows_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_allows_null(s) for s in schema.get("anyOf", []) if isinstance(s, dict))


# --- canonical form and hash ------------------------------------------------------------------------------------

def _drop_nulls(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_drop_nulls(v) for v in value]
    return value


def canonical_json(plan: Mapping[str, Any] | Plan) -> str:
    """Sorted keys, no spaces, UTF-8 text (not \\u-escaped); null-valued keys are dropped (null means absent)."""
    document = plan.to_document() if isinstance(plan, Plan) else plan
    return json.dumps(_drop_nulls(document), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def plan_hash(plan: Mapping[str, Any] | Plan) -> str:
    """SHA-256 hex digest of the UTF-8 canonical JSON."""
    return hashlib.sha256(canonical_json(plan).encode("utf-8")).hexdigest()
