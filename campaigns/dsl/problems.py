"""Validation: every problem of a plan at once, as {"path", "message"} (the shape pass, then the meaning pass).

`validate_plan` returns the problems; `parse_plan` returns a `Plan` or raises `PlanInvalid`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import (
    ValidationError,
)

from campaigns.dsl.model import (
    Plan,
)
from campaigns.dsl.vocabulary import (
    ALWAYS_RESOLVING_EVENTS,
    INTERNAL_EVENTS,
    MAX_SEND_NODES,
    OWN_MESSAGE_EVENTS,
    PLAN_VERSION,
    POLICY_EVENTS,
    SELF_FIRING_EVENTS,
    SYNTHETIC_EVENT_CANCELLED_BY,
    SYNTHETIC_EVENTS,
    TRANSITION_EVENT_ORDER,
    TRANSITION_EVENTS,
)
from outreach.errors import ApplicationError

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
