"""The engine's pure core on the spec's example plan: every branch, policy, stale timers, properties."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns import engine
from campaigns.dsl import parse_plan
from campaigns.engine import (
    CancelTimers,
    EngineEvent,
    EngineState,
    RescheduleSend,
    ScheduleTimeout,
    ScheduleWait,
    SendMessage,
    Stop,
    decide,
    enter_start,
)
from campaigns.scheduling import send_window
from campaigns.tests.factories import example_plan

PLAN = parse_plan(example_plan())
# Monday 2 March 2026, 09:00 in Los Angeles: a send may go out at once.
T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def ev(kind: str, at: dt.datetime, node: str | None = None, visit: int | None = None, **kw) -> EngineEvent:
    return EngineEvent(type=kind, occurred_at=at, node_id=node, node_visit=visit, **kw)


def started() -> EngineState:
    return enter_start(PLAN, T0).new_state


def sent_intro() -> EngineState:
    return decide(PLAN, started(), ev("sent", T0, "email_intro", 1), T0).new_state


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def at_node(node: str, visit: int = 2, *, sent_at: dt.datetime | None = T0, entered: dt.datetime = T0
            ) -> EngineState:
    return EngineState(status="active", current_node_id=node, node_visit=visit, node_entered_at=entered,
                       node_sent_at=sent_at, started_at=T0)


# --- start and send ---------------------------------------------------------------------------------------------

def test_start_enters_the_start_node_and_asks_for_its_message_now_when_allowed():
    decision = enter_start(PLAN, T0)
    assert decision.new_state.status == "active"
    assert (decision.new_state.current_node_id, decision.new_state.node_visit) == ("email_intro", 1)
    [send] = of(decision.actions, SendMessage)
    assert send.due_at == T0 and send.node_id == "email_intro" and send.visit == 1
    assert send.message["subject"] == "Quick idea for Acme's onboarding"
    assert decision.transitions[0].event == "start" and decision.transitions[0].to_node_id == "email_intro"
    assert not of(decision.actions, ScheduleTimeout)  # timeouts wait for the send


def test_a_send_due_in_quiet_hours_moves_to_the_end_of_quiet_hours():
    night = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)  # Monday 22:00 in Los Angeles
    [send] = of(enter_start(PLAN, night).actions, SendMessage)
    assert send.due_at == dt.datetime(2026, 3, 3, 15, 30, tzinfo=dt.UTC)  # Tuesday 07:30 PST


def test_sent_arms_one_timeout_per_synthetic_transition_measured_from_the_send():
    sent_at = T0 + dt.timedelta(hours=2)
    decision = decide(PLAN, started(), ev("sent", sent_at, "email_intro", 1), sent_at)
    assert decision.new_state.node_sent_at == sent_at
    timeouts = of(decision.actions, ScheduleTimeout)
    assert [(t.event, t.transition_index, t.due_at) for t in timeouts] == [
        ("no_open", 2, sent_at + 3 * DAY), ("no_reply", 3, sent_at + 5 * DAY)]


def test_a_duplicate_sent_is_recorded_and_arms_nothing():
    decision = decide(PLAN, sent_intro(), ev("sent", T0 + DAY, "email_intro", 1), T0 + DAY)
    assert decision.outcome == engine.RECORDED and decision.actions == []
    assert decision.new_state == sent_intro()
    assert decision.transitions[0].reason == "duplicate"


def test_delivered_without_sent_anchors_the_timeouts():
    decision = decide(PLAN, started(), ev("delivered", T0 + dt.timedelta(minutes=5), "email_intro", 1), T0)
    assert decision.new_state.node_sent_at == T0 + dt.timedelta(minutes=5)
    assert len(of(decision.actions, ScheduleTimeout)) == 2


# --- email_intro's branches -------------------------------------------------------------------------------------

def test_reply_goes_to_stop_replied_and_completes_with_reason_replied():
    decision = decide(PLAN, sent_intro(), ev("reply", T0 + DAY, "email_intro", 1), T0 + DAY)
    state = decision.new_state
    assert (state.current_node_id, state.status, state.stop_reason) == ("stop_replied", "completed", "replied")
    assert state.finished_at == T0 + DAY
    assert CancelTimers("email_intro", 1) in decision.actions
    assert Stop(reason="replied", status="completed") in decision.actions
    assert decision.transitions[0].to_status == "completed"


@pytest.mark.parametrize("kind", ["reply_positive", "reply_negative", "reply_neutral"])
def test_a_classified_reply_also_matches_a_plain_reply_transition(kind):
    state = decide(PLAN, sent_intro(), ev(kind, T0 + DAY, "email_intro", 1), T0 + DAY).new_state
    assert state.current_node_id == "stop_replied"


def test_click_within_two_days_of_the_send_goes_to_email_hot():
    decision = decide(PLAN, sent_intro(), ev("click", T0 + 2 * DAY, "email_intro", 1), T0 + 2 * DAY)
    assert decision.outcome == engine.MOVED
    assert (decision.new_state.current_node_id, decision.new_state.node_visit) == ("email_hot", 2)
    [send] = of(decision.actions, SendMessage)
    assert send.node_id == "email_hot" and send.visit == 2
    assert decision.actions[0] == CancelTimers("email_intro", 1)


def test_click_after_two_days_moves_nothing_but_counts_as_engagement():
    later = T0 + 2 * DAY + dt.timedelta(minutes=1)
    decision = decide(PLAN, sent_intro(), ev("click", later, "email_intro", 1), later)
    state = decision.new_state
    assert state.current_node_id == "email_intro" and decision.outcome == engine.UPDATED
    assert state.engagement_flags & engine.FLAG_CLICK and state.engagement_flags & engine.FLAG_OPEN
    # The contact opened (a click proves it): no_open stays silent, no_reply still fires.
    no_open = decide(PLAN, state, ev("no_open", T0 + 3 * DAY, "email_intro", 1,
                                     detail={"transition_index": 2}), T0 + 3 * DAY)
    assert no_open.outcome == engine.STALE and no_open.new_state == state
    no_reply = decide(PLAN, state, ev("no_reply", T0 + 5 * DAY, "email_intro", 1,
                                      detail={"transition_index": 3}), T0 + 5 * DAY)
    assert no_reply.new_state.current_node_id == "email_bump"


def test_a_late_event_counts_by_when_it_happened_not_when_it_arrived():
    # The click happened inside the window but reached us after it.
    decision = decide(PLAN, sent_intro(), ev("click", T0 + DAY, "email_intro", 1), T0 + 4 * DAY)
    assert decision.new_state.current_node_id == "email_hot"


def test_no_open_after_three_days_goes_to_email_bump():
    decision = decide(PLAN, sent_intro(), ev("no_open", T0 + 3 * DAY, "email_intro", 1,
                                             detail={"transition_index": 2}), T0 + 3 * DAY)
    assert decision.new_state.current_node_id == "email_bump"
    assert decision.transitions[0].event == "no_open"


def test_no_reply_after_an_open_goes_to_email_bump():
    opened = decide(PLAN, sent_intro(), ev("open", T0 + DAY, "email_intro", 1), T0 + DAY).new_state
    assert decide(PLAN, opened, ev("no_open", T0 + 3 * DAY, "email_intro", 1, detail={"transition_index": 2}),
                  T0 + 3 * DAY).outcome == engine.STALE
    moved = decide(PLAN, opened, ev("no_reply", T0 + 5 * DAY, "email_intro", 1, detail={"transition_index": 3}),
                   T0 + 5 * DAY)
    assert moved.new_state.current_node_id == "email_bump"


def test_a_machine_open_never_matches_and_never_counts_as_engagement():
    decision = decide(PLAN, sent_intro(), ev("open", T0 + DAY, "email_intro", 1, is_machine=True), T0 + DAY)
    assert decision.outcome == engine.RECORDED and decision.new_state == sent_intro()
    assert decision.transitions[0].reason == "machine_event"
    machine_click = decide(PLAN, sent_intro(), ev("click", T0 + DAY, "email_intro", 1, is_machine=True), T0 + DAY)
    assert machine_click.new_state.current_node_id == "email_intro"
    fired = decide(PLAN, decision.new_state, ev("no_open", T0 + 3 * DAY, "email_intro", 1,
                                                detail={"transition_index": 2}), T0 + 3 * DAY)
    assert fired.new_state.current_node_id == "email_bump"


# --- later nodes ------------------------------------------------------------------------------------------------

def test_email_hot_without_reply_stops_done():
    state = at_node("email_hot")
    decision = decide(PLAN, state, ev("no_reply", T0 + 4 * DAY, "email_hot", 2, detail={"transition_index": 0}),
                      T0 + 4 * DAY)
    assert (decision.new_state.current_node_id, decision.new_state.status) == ("stop_done", "completed")
    assert decision.new_state.stop_reason == "completed"


def test_an_unhandled_human_reply_stops_with_reason_replied():
    decision = decide(PLAN, at_node("email_hot"), ev("reply_neutral", T0 + DAY, "email_hot", 2), T0 + DAY)
    assert (decision.new_state.status, decision.new_state.stop_reason) == ("stopped", "replied")
    assert decision.new_state.current_node_id == "email_hot"
    assert decision.outcome == engine.STOPPED_OUTCOME
    assert Stop(reason="replied", status="stopped") in decision.actions


def test_a_reply_to_an_earlier_message_is_still_a_reply():
    # Replies are campaign-wide: answering the intro while the bump is current must not be ignored.
    decision = decide(PLAN, at_node("email_hot"), ev("reply", T0 + DAY, "email_intro", 1), T0 + DAY)
    assert decision.new_state.status == "stopped"


def test_an_out_of_office_reply_is_not_a_human_reply_and_sets_not_before():
    state = at_node("email_hot", sent_at=None)  # its message is not out yet
    decision = decide(PLAN, state, ev("reply_ooo", T0, "email_intro", 1, detail={"return_date": "2026-03-16"}), T0)
    new = decision.new_state
    assert new.status == "active" and new.current_node_id == "email_hot"
    assert new.not_before == dt.datetime(2026, 3, 16, 7, 0, tzinfo=dt.UTC)  # midnight PDT
    [reschedule] = of(decision.actions, RescheduleSend)
    # Monday 16 March, midnight is quiet: the send moves to 07:30 PDT.
    assert reschedule.due_at == dt.datetime(2026, 3, 16, 14, 30, tzinfo=dt.UTC)
    assert not new.engagement_flags & engine.FLAG_REPLY


def test_an_out_of_office_reply_does_not_end_the_example_plan_as_replied():
    # `reply` is "any human reply"; an auto-reply is not one (spec: "a human reply (not reply_ooo)"), so the
    # example plan's `reply -> stop_replied` does not match it: the campaign stays, its next send pushed back.
    decision = decide(PLAN, sent_intro(), ev("reply_ooo", T0 + DAY, "email_intro", 1,
                                             detail={"return_date": "2026-03-16"}), T0 + DAY)
    new = decision.new_state
    assert (new.status, new.current_node_id, new.stop_reason) == ("active", "email_intro", "")
    assert new.not_before == dt.datetime(2026, 3, 16, 7, 0, tzinfo=dt.UTC)
    assert decision.transitions[0].reason == "no_match"
    assert not of(decision.actions, Stop)


@pytest.mark.parametrize("return_date", [
    "9999-12-31T23:00:00-12:00", "9999-12-31", dt.date(9999, 12, 31), dt.datetime.max,  # once an OverflowError
    "2999-01-01", "2026-08-30",  # more than 180 days ahead: once parked the contact for centuries
    "2026-03-01", "2026-03-02T08:00:00-08:00",  # already past
    "soon", 42, None, "",
])
def test_an_out_of_office_return_date_out_of_range_counts_as_none(return_date):
    state = at_node("email_hot", sent_at=None)
    decision = decide(PLAN, state, ev("reply_ooo", T0, detail={"return_date": return_date}), T0)
    assert decision.new_state == state
    assert decision.outcome == engine.RECORDED and decision.transitions[0].reason == "no_match"
    assert not of(decision.actions, RescheduleSend)


def test_an_out_of_office_return_date_180_days_ahead_is_still_honoured():
    state = at_node("email_hot", sent_at=None)
    decision = decide(PLAN, state, ev("reply_ooo", T0, detail={"return_date": "2026-08-29"}), T0)
    assert decision.new_state.not_before == dt.datetime(2026, 8, 29, 7, 0, tzinfo=dt.UTC)  # midnight PDT


def test_an_out_of_office_reply_matches_an_explicit_reply_ooo_transition():
    plan = example_plan()
    plan["nodes"][0]["transitions"].insert(1, {"on": "reply_ooo", "to": "email_bump"})
    decision = decide(parse_plan(plan), sent_intro(), ev("reply_ooo", T0 + DAY, "email_intro", 1), T0 + DAY)
    assert decision.new_state.current_node_id == "email_bump"


def test_not_before_holds_back_the_next_node_send():
    state = replace(sent_intro(), not_before=T0 + 10 * DAY)
    decision = decide(PLAN, state, ev("no_open", T0 + 3 * DAY, "email_intro", 1, detail={"transition_index": 2}),
                      T0 + 3 * DAY)
    [send] = of(decision.actions, SendMessage)
    assert send.due_at == T0 + 10 * DAY  # Thursday 12 March, 10:00 PDT: allowed


def test_email_bump_then_wait_week_then_stop_done():
    bump = at_node("email_bump")
    waiting = decide(PLAN, bump, ev("no_reply", T0 + 4 * DAY, "email_bump", 2, detail={"transition_index": 0}),
                     T0 + 4 * DAY)
    assert waiting.new_state.current_node_id == "wait_week" and waiting.new_state.node_visit == 3
    [wait] = of(waiting.actions, ScheduleWait)
    assert wait.due_at == T0 + 11 * DAY and (wait.node_id, wait.visit) == ("wait_week", 3)
    done = decide(PLAN, waiting.new_state, ev("wait_elapsed", T0 + 11 * DAY, "wait_week", 3), T0 + 11 * DAY)
    assert (done.new_state.current_node_id, done.new_state.status) == ("stop_done", "completed")


def test_a_reply_while_waiting_goes_to_stop_replied():
    state = at_node("wait_week", 3, sent_at=None)
    decision = decide(PLAN, state, ev("reply", T0 + DAY, "email_bump", 2), T0 + DAY)
    assert decision.new_state.current_node_id == "stop_replied"


def test_events_for_a_node_already_left_are_recorded_and_move_nothing():
    state = at_node("email_bump")
    for kind in ("sent", "delivered", "open", "click"):
        decision = decide(PLAN, state, ev(kind, T0 + DAY, "email_intro", 1), T0 + DAY)
        assert decision.outcome == engine.RECORDED and decision.new_state == state
        assert decision.transitions[0].reason == "node_left"
        assert decision.transitions[0].from_node_id == decision.transitions[0].to_node_id == "email_bump"


# --- timers -----------------------------------------------------------------------------------------------------

def test_a_stale_timer_is_a_no_op_without_a_record():
    state = at_node("email_bump", 2)
    for event in (ev("no_open", T0, "email_intro", 1, detail={"transition_index": 2}),
                  ev("no_reply", T0, "email_bump", 1, detail={"transition_index": 0}),
                  ev("wait_elapsed", T0, "wait_week", 2)):
        decision = decide(PLAN, state, event, T0)
        assert decision.outcome == engine.STALE
        assert (decision.new_state, decision.transitions, decision.actions) == (state, [], [])


def test_a_timer_of_a_finished_campaign_does_nothing():
    done = replace(at_node("stop_done", 3), status="completed")
    assert decide(PLAN, done, ev("no_reply", T0, "stop_done", 3), T0).outcome == engine.STALE


def test_a_timer_of_a_paused_campaign_is_held_for_the_resume():
    paused = replace(sent_intro(), status="paused")
    decision = decide(PLAN, paused, ev("no_open", T0, "email_intro", 1, detail={"transition_index": 2}), T0)
    assert decision.outcome == engine.HELD and decision.new_state == paused


def test_the_timer_names_its_transition_so_the_elapsed_one_fires():
    plan = parse_plan({
        "version": "1.0", "timezone": "UTC", "startNodeId": "a",
        "nodes": [
            {"id": "a", "type": "send", "channel": "email", "message": {"subject": "s", "text": "t"},
             "transitions": [{"on": "no_reply", "after": "P5D", "to": "late"},
                             {"on": "no_reply", "after": "P2D", "to": "early"}]},
            {"id": "late", "type": "stop", "reason": "late"},
            {"id": "early", "type": "stop", "reason": "early"},
        ],
    })
    state = decide(plan, enter_start(plan, T0).new_state, ev("sent", T0, "a", 1), T0).new_state
    decision = decide(plan, state, ev("no_reply", T0 + 2 * DAY, "a", 1, detail={"transition_index": 1}), T0)
    assert decision.new_state.current_node_id == "early"


# --- policy -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kind", "detail", "status", "reason"), [
    ("unsubscribe", {}, "stopped", "unsubscribe"),
    ("spamreport", {}, "stopped", "spamreport"),
    ("bounce", {"bounce_type": "hard"}, "stopped", "hard_bounce"),
    ("dropped", {}, "stopped", "dropped"),
    ("stop_request", {}, "stopped", "stop_request"),
    ("suppressed", {"reason": "unsubscribed"}, "stopped", "suppressed:unsubscribed"),
    ("send_failed", {"reason": "invalid address"}, "failed", "send_failed:invalid address"),
])
def test_policy_events_stop_at_once_whatever_the_node(kind, detail, status, reason):
    for state in (sent_intro(), at_node("wait_week", 3, sent_at=None), replace(sent_intro(), status="paused")):
        decision = decide(PLAN, state, ev(kind, T0 + DAY, "email_intro", 1, detail=detail), T0 + DAY)
        assert (decision.new_state.status, decision.new_state.stop_reason) == (status, reason)
        assert Stop(reason=reason, status=status) in decision.actions
        assert decision.transitions[0].reason == reason


def test_a_policy_event_stops_a_campaign_whose_plan_is_not_written_yet():
    decision = decide(None, EngineState(), ev("unsubscribe", T0), T0)
    assert decision.new_state.status == "stopped"


def test_a_soft_bounce_changes_nothing():
    decision = decide(PLAN, sent_intro(), ev("bounce", T0, "email_intro", 1, detail={"bounce_type": "soft"}), T0)
    assert decision.new_state == sent_intro() and decision.outcome == engine.RECORDED


def test_events_after_the_end_are_recorded_and_change_nothing():
    done = decide(PLAN, sent_intro(), ev("reply", T0, "email_intro", 1), T0).new_state
    for kind in ("click", "unsubscribe", "reply"):
        decision = decide(PLAN, done, ev(kind, T0 + DAY, "email_intro", 1), T0 + DAY)
        assert decision.new_state == done and decision.actions == []
        assert decision.transitions[0].reason == "campaign_finished"


# --- plan replacement -------------------------------------------------------------------------------------------

def _plan_with_intro_no_open_after(after: str) -> dict:
    data = example_plan()
    data["nodes"][0]["transitions"][2]["after"] = after
    return data


def test_replan_keeps_the_node_and_rearms_its_timers_from_the_original_send():
    new_plan = parse_plan(_plan_with_intro_no_open_after("P1D"))
    decision = engine.replan(PLAN, new_plan, sent_intro(), T0 + dt.timedelta(hours=1))
    assert decision.new_state == sent_intro()
    assert decision.actions[0] == CancelTimers("email_intro", 1, include_send=False)
    assert [(t.event, t.due_at) for t in of(decision.actions, ScheduleTimeout)] == [
        ("no_open", T0 + DAY), ("no_reply", T0 + 5 * DAY)]


def test_replan_of_a_node_not_sent_yet_refreshes_its_message():
    data = example_plan()
    data["nodes"][0]["message"]["subject"] = "A better subject"
    decision = engine.replan(PLAN, parse_plan(data), started(), T0)
    [send] = of(decision.actions, SendMessage)
    assert send.refresh and send.message["subject"] == "A better subject" and send.visit == 1


def test_replan_without_the_current_node_is_refused_unless_restarted():
    data = example_plan()
    data["startNodeId"] = "first"
    data["nodes"][0]["id"] = "first"
    new_plan = parse_plan(data)
    with pytest.raises(engine.PlanReplaceRefused):
        engine.replan(PLAN, new_plan, sent_intro(), T0)
    restarted = engine.replan(PLAN, new_plan, sent_intro(), T0, restart=True)
    assert (restarted.new_state.current_node_id, restarted.new_state.node_visit) == ("first", 2)
    assert restarted.actions[0] == CancelTimers("email_intro", 1)


# --- properties -------------------------------------------------------------------------------------------------

EVENT_TYPES = ["sent", "delivered", "open", "click", "reply", "reply_positive", "reply_negative", "reply_neutral",
               "reply_ooo", "meeting_booked", "no_open", "no_click", "no_reply", "wait_elapsed", "unsubscribe",
               "bounce", "dropped", "spamreport", "stop_request", "suppressed", "send_failed", "processed"]
NODE_IDS = [None, "email_intro", "email_hot", "email_bump", "wait_week", "stop_done"]

events_strategy = st.lists(
    st.tuples(st.sampled_from(EVENT_TYPES), st.sampled_from(NODE_IDS), st.integers(0, 6), st.booleans(),
              st.integers(0, 20 * 24 * 60), st.sampled_from([None, "hard", "soft"])),
    max_size=25,
)


def _assert_step_consistent(before, decision, now, window) -> None:
    """The invariants one engine step keeps, whatever the event."""
    state = decision.new_state
    assert state.node_visit >= before.node_visit
    if before.status in engine.FINAL_STATUSES:
        # Final statuses are absorbing: nothing moves, nothing is scheduled.
        assert state == before and decision.actions == []
    if state.status == "active":
        assert PLAN.has_node(state.current_node_id)
        assert PLAN.node(state.current_node_id).type != "stop"
    if state.status in engine.FINAL_STATUSES and before.status not in engine.FINAL_STATUSES:
        assert any(isinstance(a, Stop) for a in decision.actions)
        assert state.finished_at == now
    for action in decision.actions:
        if isinstance(action, SendMessage):
            assert action.due_at >= now and window.allows(action.due_at)
            assert action.visit == state.node_visit
        if isinstance(action, (ScheduleTimeout, ScheduleWait)):
            assert action.due_at >= now
    if decision.outcome == engine.STALE:
        assert state == before and decision.transitions == []


@settings(max_examples=300, deadline=None)
@given(events_strategy)
def test_any_event_sequence_keeps_the_state_consistent(steps):
    window = send_window(PLAN)
    state = enter_start(PLAN, T0).new_state
    for kind, node, visit, machine, minutes, bounce in steps:
        now = T0 + dt.timedelta(minutes=minutes)
        detail = {"bounce_type": bounce} if bounce else {}
        if kind in ("no_open", "no_click", "no_reply"):
            detail["transition_index"] = visit % 4
        decision = decide(PLAN, state, ev(kind, now, node, visit or None, is_machine=machine, detail=detail), now)
        _assert_step_consistent(state, decision, now, window)
        state = decision.new_state


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["no_open", "no_click", "no_reply", "wait_elapsed"]), st.sampled_from(NODE_IDS[1:]),
       st.integers(0, 5))
def test_a_timer_for_another_node_visit_never_changes_anything(kind, node, visit):
    state = at_node("email_bump", 2)
    if (node, visit) == ("email_bump", 2):
        visit = 1
    decision = decide(PLAN, state, ev(kind, T0 + 9 * DAY, node, visit, detail={"transition_index": 0}), T0 + 9 * DAY)
    assert decision.outcome == engine.STALE and decision.new_state == state and not decision.actions
