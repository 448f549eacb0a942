"""The plan DSL validator, models, JSON Schema, hashing and the validate_plan command (docs/plan-dsl.md)."""
from __future__ import annotations

import copy
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from django.core.management import call_command

from campaigns.dsl import (
    ALWAYS_RESOLVING_EVENTS,
    POLICY_EVENTS,
    REAL_EVENTS,
    SELF_FIRING_EVENTS,
    SYNTHETIC_EVENTS,
    TRANSITION_EVENTS,
    EmailSendNode,
    Plan,
    PlanInvalid,
    SendNode,
    SmsSendNode,
    StopNode,
    WaitNode,
    canonical_json,
    parse_plan,
    plan_hash,
    plan_json_schema,
    transition_matches_event,
    validate_plan,
)
from outreach.errors import ApplicationError

EXAMPLE_PATH = Path(__file__).resolve().parent.parent / "examples" / "example_plan.json"
MANAGE_PY = Path(__file__).resolve().parents[2] / "manage.py"
# Node indexes in the example: 0 email_intro, 1 email_hot, 2 email_bump (send), 3 wait_week, 4 stop_replied,
# 5 stop_done. email_intro's transitions: 0 reply, 1 click within P2D, 2 no_open after P3D, 3 no_reply after P5D.


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE_PATH.read_text())


def put(*path: Any, value: Any):
    def mutate(plan: dict) -> None:
        target = plan
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def drop(*path: Any):
    def mutate(plan: dict) -> None:
        target = plan
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def append_node(node: dict):
    def mutate(plan: dict) -> None:
        plan["nodes"].append(node)

    return mutate


def extra_send_nodes(count: int):
    """Adds `count` reachable send nodes chained from a wait node, so only the send-node limit is broken."""

    def mutate(plan: dict) -> None:
        ids = [f"extra_{k}" for k in range(count)]
        for k, node_id in enumerate(ids):
            following = ids[k + 1] if k + 1 < count else "stop_done"
            plan["nodes"].append({
                "id": node_id, "type": "send", "channel": "email",
                "message": {"subject": "s", "text": "t"},
                "transitions": [{"on": "sent", "to": following}],
            })
        plan["nodes"][3]["next"] = ids[0]

    return mutate


def chain_of_nodes(total: int):
    """A plan of `total` nodes: waits chained to a final stop (no send limit involved)."""

    def mutate(plan: dict) -> None:
        ids = [f"n{k}" for k in range(total)]
        plan["startNodeId"] = ids[0]
        plan["nodes"] = [
            {"id": node_id, "type": "wait", "duration": "PT1M", "next": ids[k + 1]}
            for k, node_id in enumerate(ids[:-1])
        ] + [{"id": ids[-1], "type": "stop"}]

    return mutate


def problems_after(mutate) -> list[dict[str, str]]:
    plan = example()
    mutate(plan)
    return validate_plan(plan)


# (case id, mutation, exact path, fragment of the message, whether it is the only problem)
RULES = [
    # --- top level -----------------------------------------------------------------------------------------------
    ("version missing", drop("version"), "version", "is required", True),
    ("version other", put("version", value="2.0"), "version", "unsupported version '2.0'", True),
    ("version number", put("version", value=1.0), "version", "unsupported version", True),
    ("timezone missing", drop("timezone"), "timezone", "is required", True),
    ("timezone unknown", put("timezone", value="Mars/Olympus_Mons"), "timezone", "not an IANA time zone", True),
    ("timezone offset", put("timezone", value="+02:00"), "timezone", "not an IANA time zone", True),
    ("timezone localtime", put("timezone", value="localtime"), "timezone", "not an IANA time zone", True),
    ("timezone path", put("timezone", value="../../etc/passwd"), "timezone", "not an IANA time zone", True),
    ("timezone wrong case", put("timezone", value="europe/berlin"), "timezone", "not an IANA time zone", True),
    ("timezone not string", put("timezone", value=5), "timezone", "must be a string", True),
    ("quiet start hour", put("quietHours", "start", value="25:00"), "quietHours.start", "HH:MM", True),
    ("quiet end one digit", put("quietHours", "end", value="7:30"), "quietHours.end", "HH:MM", True),
    ("quiet minute 60", put("quietHours", "start", value="12:60"), "quietHours.start", "HH:MM", True),
    ("quiet 24:00", put("quietHours", "end", value="24:00"), "quietHours.end", "HH:MM", True),
    ("quiet seconds", put("quietHours", "end", value="07:30:00"), "quietHours.end", "HH:MM", True),
    ("quiet start == end", put("quietHours", value={"start": "09:00", "end": "09:00"}), "quietHours",
     "start and end are both 09:00", True),
    ("quiet end missing", put("quietHours", value={"start": "21:00"}), "quietHours.end", "is required", True),
    ("quiet unknown key", put("quietHours", "tz", value="UTC"), "quietHours.tz", "unknown key 'tz'", True),
    ("quiet not object", put("quietHours", value="21:00-07:30"), "quietHours", "must be an object", True),
    ("sendDays empty", put("sendDays", value=[]), "sendDays", "at least one day", True),
    ("sendDays capitalised", put("sendDays", value=["Mon"]), "sendDays[0]", "got 'Mon'", True),
    ("sendDays long name", put("sendDays", value=["mon", "tuesday"]), "sendDays[1]", "got 'tuesday'", True),
    ("sendDays duplicate", put("sendDays", value=["mon", "mon"]), "sendDays", "'mon' is listed twice", True),
    ("sendDays not list", put("sendDays", value="mon"), "sendDays", "must be an array", True),
    ("startNodeId missing", drop("startNodeId"), "startNodeId", "is required", False),
    ("startNodeId unknown", put("startNodeId", value="email_outro"), "startNodeId", "no node has id 'email_outro'",
     True),
    ("nodes missing", drop("nodes"), "nodes", "is required", False),
    ("nodes empty", put("nodes", value=[]), "nodes", "at least 1 item", False),
    ("nodes not list", put("nodes", value={"a": 1}), "nodes", "must be an array", False),
    ("31 nodes", chain_of_nodes(31), "nodes", "at most 30 items", True),
    ("unknown top-level key", put("quiet_hours", value={"start": "21:00", "end": "07:00"}), "quiet_hours",
     "unknown key 'quiet_hours'", True),
    # --- every node -------------------------------------------------------------------------------------------------
    ("node id missing", drop("nodes", 4, "id"), "nodes[4].id", "is required", False),
    ("node id upper case", put("nodes", 4, "id", value="Stop_Replied"), "nodes[4].id", "1 to 64 characters", False),
    ("node id space", put("nodes", 4, "id", value="stop replied"), "nodes[4].id", "1 to 64 characters", False),
    ("node id empty", put("nodes", 4, "id", value=""), "nodes[4].id", "1 to 64 characters", False),
    ("node id 65 chars", put("nodes", 4, "id", value="a" * 65), "nodes[4].id", "1 to 64 characters", False),
    ("node id duplicate", put("nodes", 5, "id", value="stop_replied"), "nodes[5].id",
     "duplicate node id 'stop_replied' (also nodes[4])", False),
    ("node type missing", drop("nodes", 4, "type"), "nodes[4].type", "is required", True),
    ("node type unknown", put("nodes", 4, "type", value="end"), "nodes[4].type", "unknown node type 'end'", True),
    ("node not object", put("nodes", 4, value="stop_replied"), "nodes[4]", "must be an object", False),
    ("node unknown key", put("nodes", 4, "transitions", value=[]), "nodes[4].transitions",
     "unknown key 'transitions'", True),
    # --- send nodes -------------------------------------------------------------------------------------------------
    ("channel missing", drop("nodes", 0, "channel"), "nodes[0].channel", "is required", True),
    ("channel unknown", put("nodes", 0, "channel", value="fax"), "nodes[0].channel", "unknown channel 'fax'", True),
    ("message missing", drop("nodes", 0, "message"), "nodes[0].message", "is required", True),
    ("message not object", put("nodes", 0, "message", value="hi"), "nodes[0].message", "must be an object", True),
    ("subject missing", drop("nodes", 0, "message", "subject"), "nodes[0].message.subject", "is required", True),
    ("subject empty", put("nodes", 0, "message", "subject", value=""), "nodes[0].message.subject",
     "at least 1 character", True),
    ("subject 201 chars", put("nodes", 0, "message", "subject", value="s" * 201), "nodes[0].message.subject",
     "at most 200 characters", True),
    ("subject two lines", put("nodes", 0, "message", "subject", value="Hi\nthere"), "nodes[0].message.subject",
     "single line", True),
    ("subject carriage return", put("nodes", 0, "message", "subject", value="Hi\rthere"),
     "nodes[0].message.subject", "single line", True),
    ("subject blank", put("nodes", 0, "message", "subject", value="   "), "nodes[0].message.subject",
     "must not be blank", True),
    ("text missing", drop("nodes", 0, "message", "text"), "nodes[0].message.text", "is required", True),
    ("text empty", put("nodes", 0, "message", "text", value=""), "nodes[0].message.text", "at least 1 character",
     True),
    ("text 20001 chars", put("nodes", 0, "message", "text", value="t" * 20_001), "nodes[0].message.text",
     "at most 20000 characters", True),
    ("html empty", put("nodes", 0, "message", "html", value=""), "nodes[0].message.html", "at least 1 character",
     True),
    ("message unknown key", put("nodes", 0, "message", "body", value="x"), "nodes[0].message.body",
     "unknown key 'body'", True),
    ("sms with subject", put("nodes", 0, "channel", value="sms"), "nodes[0].message.subject",
     "unknown key 'subject'", True),
    ("sms text 1601 chars", put("nodes", 0, value={
        "id": "email_intro", "type": "send", "channel": "sms", "message": {"text": "x" * 1601},
        "transitions": [{"on": "sent", "to": "email_hot"}, {"on": "no_reply", "after": "P1D", "to": "email_bump"}]}),
     "nodes[0].message.text", "at most 1600 characters", True),
    ("sms text missing", put("nodes", 0, value={
        "id": "email_intro", "type": "send", "channel": "sms", "message": {},
        "transitions": [{"on": "sent", "to": "email_hot"}, {"on": "no_reply", "after": "P1D", "to": "email_bump"}]}),
     "nodes[0].message.text", "is required", True),
    ("send transitions missing", drop("nodes", 1, "transitions"), "nodes[1].transitions", "is required", False),
    ("send transitions empty", put("nodes", 1, "transitions", value=[]), "nodes[1].transitions",
     "fires without the contact doing anything", False),
    ("send waits on the contact only", put("nodes", 1, "transitions", value=[
        {"on": "reply", "to": "stop_done"}, {"on": "click", "within": "P1D", "to": "stop_done"}]),
     "nodes[1].transitions", "fires without the contact doing anything", True),
    ("send waits on delivered only", put("nodes", 1, "transitions", value=[{"on": "delivered", "to": "stop_done"}]),
     "nodes[1].transitions", "fires without the contact doing anything", True),
    ("send times out on no_open only", put("nodes", 1, "transitions", value=[
        {"on": "no_open", "after": "P1D", "to": "stop_done"}]),
     "nodes[1].transitions", "needs a 'sent' or 'no_reply' transition", True),
    ("send times out on no_open and no_click only", put("nodes", 1, "transitions", value=[
        {"on": "reply", "to": "stop_done"}, {"on": "no_open", "after": "P1D", "to": "stop_done"},
        {"on": "no_click", "after": "P2D", "to": "stop_done"}]),
     "nodes[1].transitions", "'no_click' and 'no_open' no longer fire once the contact opens or clicks", True),
    ("21 transitions", put("nodes", 1, "transitions", value=[{"on": "sent", "to": "stop_done"}] * 21),
     "nodes[1].transitions", "at most 20 items", True),
    ("11 send nodes", extra_send_nodes(8), "nodes", "at most 10 send nodes are allowed, found 11", True),
    # --- wait nodes -------------------------------------------------------------------------------------------------
    ("wait duration missing", drop("nodes", 3, "duration"), "nodes[3].duration", "is required", True),
    ("wait duration month", put("nodes", 3, "duration", value="P1M"), "nodes[3].duration", "years or months", True),
    ("wait duration not ISO", put("nodes", 3, "duration", value="7 days"), "nodes[3].duration",
     "not an ISO 8601 duration", True),
    ("wait duration 30 seconds", put("nodes", 3, "duration", value="PT30S"), "nodes[3].duration",
     "at least 1 minute", True),
    ("wait duration 91 days", put("nodes", 3, "duration", value="P91D"), "nodes[3].duration", "at most 90 days",
     True),
    ("wait next missing", drop("nodes", 3, "next"), "nodes[3].next", "is required", False),
    ("wait next unknown", put("nodes", 3, "next", value="stop_never"), "nodes[3].next",
     "no node has id 'stop_never'", False),
    ("wait no_reply", put("nodes", 3, "transitions", value=[{"on": "no_reply", "after": "P1D", "to": "stop_done"}]),
     "nodes[3].transitions[0].on", "can never fire on a wait node", True),
    ("wait sent", put("nodes", 3, "transitions", value=[{"on": "sent", "to": "stop_done"}]),
     "nodes[3].transitions[0].on", "can never fire on a wait node", True),
    ("wait delivered", put("nodes", 3, "transitions", value=[{"on": "delivered", "to": "stop_done"}]),
     "nodes[3].transitions[0].on", "can never fire on a wait node", True),
    # --- stop nodes -------------------------------------------------------------------------------------------------
    ("stop reason empty", put("nodes", 4, "reason", value=""), "nodes[4].reason", "at least 1 character", True),
    ("stop reason two lines", put("nodes", 4, "reason", value="a\nb"), "nodes[4].reason", "single line", True),
    ("stop reason 101 chars", put("nodes", 4, "reason", value="r" * 101), "nodes[4].reason",
     "at most 100 characters", True),
    # --- transitions ------------------------------------------------------------------------------------------------
    ("on missing", drop("nodes", 0, "transitions", 0, "on"), "nodes[0].transitions[0].on", "is required", True),
    ("on unknown", put("nodes", 0, "transitions", 0, "on", value="replied"), "nodes[0].transitions[0].on",
     "unknown event 'replied'", True),
    ("on policy event", put("nodes", 0, "transitions", 0, "on", value="unsubscribe"), "nodes[0].transitions[0].on",
     "handles it by policy", True),
    ("on internal event", put("nodes", 0, "transitions", 0, "on", value="wait_elapsed"),
     "nodes[0].transitions[0].on", "handles it by policy", True),
    ("to missing", drop("nodes", 0, "transitions", 0, "to"), "nodes[0].transitions[0].to", "is required", True),
    ("to unknown", put("nodes", 0, "transitions", 0, "to", value="stop_nowhere"), "nodes[0].transitions[0].to",
     "no node has id 'stop_nowhere'", False),
    ("within on synthetic", put("nodes", 0, "transitions", 2, "within", value="P1D"),
     "nodes[0].transitions[2].within", "real events only", True),
    ("after on real", put("nodes", 0, "transitions", 1, "after", value="P1D"), "nodes[0].transitions[1].after",
     "only allowed on no_open, no_click and no_reply", True),
    ("after on sent", put("nodes", 1, "transitions", value=[{"on": "sent", "after": "P1D", "to": "stop_done"}]),
     "nodes[1].transitions[0].after", "only allowed on no_open", True),
    ("after missing on synthetic", drop("nodes", 0, "transitions", 3, "after"), "nodes[0].transitions[3].after",
     "is required for 'no_reply'", True),
    ("within 91 days", put("nodes", 0, "transitions", 1, "within", value="P91D"), "nodes[0].transitions[1].within",
     "at most 90 days", True),
    ("within 30 seconds", put("nodes", 0, "transitions", 1, "within", value="PT30S"),
     "nodes[0].transitions[1].within", "at least 1 minute", True),
    ("after 59 seconds", put("nodes", 0, "transitions", 3, "after", value="PT59S"), "nodes[0].transitions[3].after",
     "at least 1 minute", True),
    ("after 13 weeks", put("nodes", 0, "transitions", 3, "after", value="P13W"), "nodes[0].transitions[3].after",
     "at most 90 days", True),
    ("after one year", put("nodes", 0, "transitions", 3, "after", value="P1Y"), "nodes[0].transitions[3].after",
     "years or months", True),
    ("transition unknown key", put("nodes", 0, "transitions", 0, "when", value="P1D"),
     "nodes[0].transitions[0].when", "unknown key 'when'", True),
    ("transition not object", put("nodes", 0, "transitions", 0, value="reply"), "nodes[0].transitions[0]",
     "must be an object", True),
    # --- graph ------------------------------------------------------------------------------------------------------
    ("unreachable node", append_node({"id": "orphan", "type": "stop"}), "nodes[6]",
     "'orphan' is not reachable from startNodeId 'email_intro'", True),
    ("cycle through wait", put("nodes", 3, "next", value="email_intro"), "nodes[3].next",
     "creates a cycle: email_intro -> email_bump -> wait_week -> email_intro", True),
    ("self loop", put("nodes", 1, "transitions", 0, "to", value="email_hot"), "nodes[1].transitions[0].to",
     "creates a cycle: email_hot -> email_hot", True),
]


@pytest.mark.parametrize(("mutate", "path", "fragment", "only"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_reports_its_exact_path(mutate, path, fragment, only):
    problems = problems_after(mutate)
    at_path = [p for p in problems if p["path"] == path]
    assert at_path, f"no problem at {path!r}; got {problems}"
    assert any(fragment in p["message"] for p in at_path), problems
    if only:
        assert len(problems) == 1, problems


def test_example_plan_from_the_spec_is_valid():
    assert validate_plan(example()) == []


def test_example_file_is_the_spec_example():
    spec = (Path(__file__).resolve().parents[2] / "docs" / "plan-dsl.md").read_text()
    block = spec.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == example()


@pytest.mark.parametrize("data", [None, [], [example()], "plan", 3, True, 1.5])
def test_input_that_is_not_an_object_is_one_root_problem(data):
    problems = validate_plan(data)
    assert len(problems) == 1
    assert problems[0]["path"] == ""
    assert "must be a JSON object" in problems[0]["message"]


def test_every_problem_is_reported_at_once():
    plan = example()
    plan["version"] = "2.0"
    plan["timezone"] = "Nowhere/Special"
    plan["quietHours"]["end"] = "7:30"
    plan["nodes"][0]["message"]["subject"] = "a\nb"
    plan["nodes"][0]["transitions"][2]["within"] = "P1D"
    plan["nodes"][1]["transitions"][0]["to"] = "ghost"
    plan["nodes"][3]["next"] = "email_intro"
    plan["nodes"].append({"id": "orphan", "type": "stop", "colour": "red"})

    paths = {p["path"] for p in validate_plan(plan)}

    assert {
        "version", "timezone", "quietHours.end", "nodes[0].message.subject", "nodes[0].transitions[2].within",
        "nodes[1].transitions[0].to", "nodes[3].next", "nodes[6]", "nodes[6].colour",
    } <= paths


def test_graph_rules_still_run_when_a_node_has_a_shape_problem():
    plan = example()
    plan["nodes"][2]["message"]["subject"] = ""  # shape problem in one node
    plan["nodes"][3]["next"] = "email_intro"  # cycle elsewhere

    paths = [p["path"] for p in validate_plan(plan)]

    assert paths == ["nodes[2].message.subject", "nodes[3].next"]


def test_problems_are_plain_path_and_message_dicts():
    for problem in validate_plan({"version": "1.0", "nodes": [{"id": "a"}]}):
        assert set(problem) == {"path", "message"}
        assert isinstance(problem["path"], str) and isinstance(problem["message"], str) and problem["message"]


def test_braces_in_user_text_do_not_break_messages():
    plan = example()
    plan["nodes"][0]["id"] = "{bad}"
    assert any(p["path"] == "nodes[0].id" and "'{bad}'" in p["message"] for p in validate_plan(plan))


# --- choices where the spec is silent, each pinned ------------------------------------------------------------------

def minimal_plan(**overrides: Any) -> dict[str, Any]:
    plan = {
        "version": "1.0",
        "timezone": "Europe/Berlin",
        "startNodeId": "hello",
        "nodes": [
            {"id": "hello", "type": "send", "channel": "email", "message": {"subject": "Hi", "text": "Hello"},
             "transitions": [{"on": "sent", "to": "done"}]},
            {"id": "done", "type": "stop"},
        ],
    }
    plan.update(overrides)
    return plan


def test_minimal_plan_without_optional_keys_is_valid_and_gets_defaults():
    plan = parse_plan(minimal_plan())
    assert plan.quiet_hours is None
    assert plan.send_days is None
    assert plan.send_weekdays == frozenset(range(7))
    assert plan.node("done").reason == "completed"


def test_sent_without_after_or_within_is_a_valid_self_firing_transition():
    assert validate_plan(minimal_plan()) == []


def test_a_send_node_that_only_times_out_on_no_open_is_refused_because_an_open_would_strand_it():
    # After a human open the no_open timer does nothing, and no other transition could ever fire: the campaign
    # would stay active on this node for ever. `no_reply` (or `sent`) always resolves: a reply moves or stops.
    plan = minimal_plan()
    plan["nodes"][0]["transitions"] = [{"on": "no_open", "after": "P3D", "to": "done"}]
    problems = validate_plan(plan)
    assert [p["path"] for p in problems] == ["nodes[0].transitions"]
    assert "needs a 'sent' or 'no_reply' transition" in problems[0]["message"]
    assert "'no_open' no longer fire" in problems[0]["message"]
    plan["nodes"][0]["transitions"].append({"on": "no_reply", "after": "P5D", "to": "done"})
    assert validate_plan(plan) == []


def test_a_send_node_with_a_non_string_event_is_reported_not_a_crash():
    plan = minimal_plan()
    plan["nodes"][0]["transitions"] = [{"on": ["sent"], "to": "done"}, {"on": {"x": 1}, "to": "done"}]
    paths = [p["path"] for p in validate_plan(plan)]
    assert paths == ["nodes[0].transitions[0].on", "nodes[0].transitions[1].on", "nodes[0].transitions"]


def test_sent_with_within_is_accepted_because_sent_is_a_real_event():
    plan = minimal_plan()
    plan["nodes"][0]["transitions"][0]["within"] = "PT5M"
    assert validate_plan(plan) == []


def test_null_optional_keys_mean_absent():
    plan = minimal_plan(quietHours=None, sendDays=None)
    plan["nodes"][0]["message"]["html"] = None
    plan["nodes"][0]["transitions"][0].update(within=None, after=None)
    plan["nodes"][1]["reason"] = None
    plan["nodes"].insert(1, {"id": "pause", "type": "wait", "duration": "PT1H", "next": "done", "transitions": None})
    plan["nodes"][0]["transitions"][0]["to"] = "pause"

    parsed = parse_plan(plan)

    assert parsed.node("done").reason == "completed"
    assert parsed.node("pause").transitions == []
    assert plan_hash(plan) == plan_hash(parsed)


def test_sms_send_node_is_accepted_with_text_only():
    plan = minimal_plan()
    plan["nodes"][0] = {"id": "hello", "type": "send", "channel": "sms", "message": {"text": "x" * 1600},
                        "transitions": [{"on": "sent", "to": "done"}]}
    parsed = parse_plan(plan)
    assert isinstance(parsed.node("hello"), SmsSendNode)
    assert isinstance(parsed.node("hello"), SendNode)


def test_types_are_not_coerced():
    plan = minimal_plan()
    plan["nodes"][0]["message"]["text"] = 12345
    assert validate_plan(plan) == [{"path": "nodes[0].message.text", "message": "must be a string, not a number"}]


def test_limits_are_inclusive():
    plan = minimal_plan()
    plan["nodes"][0]["message"] = {"subject": "s" * 200, "text": "t" * 20_000}
    plan["nodes"][0]["transitions"] = [{"on": "no_reply", "after": "PT1M", "to": "done"},
                                       {"on": "click", "within": "P90D", "to": "done"}]
    assert validate_plan(plan) == []
    assert validate_plan(chain_of_nodes_plan(30)) == []
    nine_more = example()
    extra_send_nodes(7)(nine_more)  # 3 + 7 = 10 send nodes
    assert validate_plan(nine_more) == []


def chain_of_nodes_plan(total: int) -> dict[str, Any]:
    plan = example()
    chain_of_nodes(total)(plan)
    return plan


# --- parse_plan and the models --------------------------------------------------------------------------------------

def test_parse_plan_gives_typed_nodes_and_helpers():
    plan = parse_plan(example())
    assert isinstance(plan, Plan)
    assert plan.start_node_id == "email_intro"
    assert isinstance(plan.start_node, EmailSendNode)
    assert isinstance(plan.node("wait_week"), WaitNode)
    assert isinstance(plan.node("stop_done"), StopNode)
    assert plan.node("wait_week").duration_delta.days == 7
    click = plan.start_node.transitions[1]
    assert click.on == "click" and click.within_delta.days == 2 and click.after_delta is None
    assert plan.start_node.transitions[3].after_delta.days == 5
    assert plan.quiet_hours.wraps_midnight
    assert plan.send_weekdays == frozenset({0, 1, 2, 3, 4})
    assert plan.has_node("stop_done") and not plan.has_node("nope")
    with pytest.raises(KeyError):
        plan.node("nope")


def test_parse_plan_round_trips_to_the_same_document():
    assert parse_plan(example()).to_document() == example()


def test_parse_plan_raises_plan_invalid_with_every_problem():
    plan = example()
    plan["version"] = "9"
    plan["startNodeId"] = "ghost"
    with pytest.raises(PlanInvalid) as caught:
        parse_plan(plan)
    assert caught.value.problems == validate_plan(plan)
    assert len(caught.value.problems) == 2
    assert isinstance(caught.value, ApplicationError)
    assert caught.value.as_dict()["meta"]["problems"] == caught.value.problems
    assert "version" in str(caught.value) and "1 more" in str(caught.value)


def test_parsed_plan_is_immutable():
    plan = parse_plan(example())
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its ValidationError for frozen models
        plan.timezone = "UTC"


def test_event_constants_partition_the_transition_events():
    assert REAL_EVENTS.isdisjoint(SYNTHETIC_EVENTS)
    assert REAL_EVENTS | SYNTHETIC_EVENTS == TRANSITION_EVENTS
    assert SELF_FIRING_EVENTS == {"sent", "no_open", "no_click", "no_reply"}
    assert ALWAYS_RESOLVING_EVENTS == {"sent", "no_reply"}
    assert POLICY_EVENTS.isdisjoint(TRANSITION_EVENTS)
    assert len(TRANSITION_EVENTS) == 13


@pytest.mark.parametrize(
    ("on", "event", "matches"),
    [("reply", "reply", True), ("reply", "reply_positive", True), ("reply", "reply_negative", True),
     ("reply", "reply_neutral", True), ("reply", "reply_ooo", False), ("reply_ooo", "reply_ooo", True),
     ("reply_positive", "reply", False), ("reply_positive", "reply_negative", False), ("open", "click", False),
     ("click", "click", True)],
)
def test_human_reply_subtypes_also_match_plain_reply_but_an_out_of_office_does_not(on, event, matches):
    assert transition_matches_event(on, event) is matches


# --- JSON Schema ----------------------------------------------------------------------------------------------------

def test_json_schema_is_a_valid_schema_and_accepts_the_example():
    schema = plan_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(example())


@pytest.mark.parametrize(
    "mutate",
    [put("version", value="2.0"), put("nodes", 0, "colour", value="red"), put("nodes", 4, "type", value="end"),
     put("nodes", 0, "transitions", 0, "on", value="bounce"), put("nodes", 3, "duration", value="P1M"),
     put("quietHours", "start", value="25:00"), put("nodes", 4, "id", value="Bad Id"),
     put("nodes", 0, "message", "subject", value="")],
    ids=["version", "unknown key", "node type", "event", "duration", "time", "node id", "empty subject"],
)
def test_json_schema_rejects_shape_errors_too(mutate):
    plan = example()
    mutate(plan)
    assert not jsonschema.Draft202012Validator(plan_json_schema()).is_valid(plan)


def test_json_schema_is_a_fresh_copy_each_time():
    plan_json_schema()["properties"].clear()
    assert "nodes" in plan_json_schema()["properties"]


def with_explicit_nulls(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """Fills every absent optional key with null, as OpenAI strict mode does (first anyOf option that fits)."""
    if "$ref" in schema:
        return with_explicit_nulls(value, defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in schema:
        for option in schema["anyOf"]:
            filled = with_explicit_nulls(value, option, defs)
            if jsonschema.Draft202012Validator({**option, "$defs": defs}).is_valid(filled):
                return filled
        return value
    if schema.get("type") == "object" and isinstance(value, dict):
        return {key: with_explicit_nulls(value[key], sub, defs) if key in value else None
                for key, sub in schema["properties"].items()}
    if schema.get("type") == "array" and isinstance(value, list):
        return [with_explicit_nulls(item, schema["items"], defs) for item in value]
    return value


def test_strict_schema_suits_openai_structured_outputs_and_round_trips():
    strict = plan_json_schema(strict=True)
    jsonschema.Draft202012Validator.check_schema(strict)
    text = json.dumps(strict)
    for keyword in ('"oneOf"', '"minLength"', '"maxLength"', '"discriminator"', '"default"', '"const"', "(?="):
        assert keyword not in text

    def check(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node["additionalProperties"] is False
                assert set(node["required"]) == set(node["properties"])
            for sub in node.values():
                check(sub)
        elif isinstance(node, list):
            for sub in node:
                check(sub)

    check(strict)
    # A model answer in strict mode carries nulls for unused optional keys; the validator takes them as absent.
    answer = with_explicit_nulls(example(), strict, strict["$defs"])
    assert answer["nodes"][0]["message"]["html"] is None
    jsonschema.Draft202012Validator(strict).validate(answer)
    assert validate_plan(answer) == []
    assert plan_hash(answer) == plan_hash(example())


# --- canonical JSON and hash ----------------------------------------------------------------------------------------

def test_canonical_json_sorts_keys_and_has_no_spaces():
    assert canonical_json({"b": 1, "a": {"d": [1, 2], "c": "x y"}}) == '{"a":{"c":"x y","d":[1,2]},"b":1}'


def test_canonical_json_keeps_unicode_as_utf8_text():
    assert canonical_json({"s": "Grüße"}) == '{"s":"Grüße"}'


def test_plan_hash_is_sha256_of_canonical_json():
    plan = example()
    expected = hashlib.sha256(
        json.dumps(plan, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    assert plan_hash(plan) == expected
    assert len(expected) == 64


def test_plan_hash_ignores_key_order_and_nulls_but_not_content():
    plan = example()
    reordered = json.loads(json.dumps(dict(reversed(list(plan.items())))))
    assert plan_hash(reordered) == plan_hash(plan)
    assert plan_hash(parse_plan(plan)) == plan_hash(plan)
    changed = copy.deepcopy(plan)
    changed["nodes"][0]["message"]["text"] += "!"
    assert plan_hash(changed) != plan_hash(plan)


# --- the validate_plan command --------------------------------------------------------------------------------------

def run_command(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("validate_plan", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_command_prints_ok_and_exits_0_for_a_valid_plan():
    assert run_command(str(EXAMPLE_PATH)) == (0, "OK\n", "")


def test_command_prints_one_json_problem_per_line_and_exits_1(tmp_path):
    plan = example()
    plan["version"] = "2.0"
    plan["nodes"][3]["next"] = "ghost"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))

    code, out, err = run_command(str(path))

    assert code == 1
    assert [json.loads(line) for line in out.splitlines()] == validate_plan(plan)
    assert len(out.splitlines()) == 2


def test_command_reports_a_non_object_plan_as_a_problem(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("[1, 2]")
    code, out, _ = run_command(str(path))
    assert code == 1
    assert json.loads(out) == {"path": "", "message": "a plan must be a JSON object, not an array"}


@pytest.mark.parametrize(
    ("content", "fragment"), [("{not json", "is not valid JSON"), (None, "cannot read"), (b"\xff\xfe{", "cannot read")]
)
def test_command_exits_2_with_one_line_when_the_file_is_not_json(tmp_path, content, fragment):
    path = tmp_path / "plan.json"
    if isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, bytes):
        path.write_bytes(content)

    code, out, err = run_command(str(path))

    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err


def test_command_schema_flag_prints_the_json_schema():
    code, out, _ = run_command("--schema")
    assert code == 0
    assert json.loads(out) == plan_json_schema()


def test_command_exit_code_and_single_error_line_as_a_real_process(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    # One real process (Django start-up is slow on a shared machine); call_command covers the other paths.
    result = subprocess.run(
        [sys.executable, str(MANAGE_PY), "validate_plan", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"{broken} is not valid JSON: Expecting property name enclosed "
                                                  "in double quotes at line 1 column 2"]
