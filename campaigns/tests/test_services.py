"""The engine's services on the real PostgreSQL: plans, outbox hand-off, the example plan end to end, batches."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import F

from campaigns import engine, services
from campaigns.dispatcher import dispatch_due
from campaigns.engine import EngineEvent
from campaigns.models import CampaignPlanVersion, CampaignTransition, ContactCampaign, ScheduledAction
from campaigns.services import (
    campaign_cancel,
    campaign_enrol_contacts,
    contact_campaign_cancel,
    contact_campaign_handle_event,
    contact_campaign_replace_plan,
    contact_campaign_start,
    contact_campaign_store_plan,
    contact_campaigns_handle_events,
    contact_campaigns_stop_for_address,
    scheduled_actions_run,
    send_action_reschedule,
)
from campaigns.tests.factories import (
    CampaignFactory,
    ContactCampaignFactory,
    example_plan,
    freeze_clock,
    purge_queues,
    queued_tasks,
    started_contact_campaign,
)
from contacts.tests.factories import ContactFactory
from messaging.models import OutboundMessage
from outreach.errors import ApplicationError

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # Monday 09:00 in Los Angeles
DAY = dt.timedelta(days=1)


@pytest.fixture
def clock(monkeypatch):
    return freeze_clock(monkeypatch, T0)


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture(autouse=True)
def _clean_queues():
    purge_queues()
    yield
    purge_queues()


def event(kind: str, cc: ContactCampaign, *, at: dt.datetime | None = None, node: str | None = None, **kw
          ) -> EngineEvent:
    cc.refresh_from_db()
    return EngineEvent(type=kind, occurred_at=at or T0, node_id=node or cc.current_node_id,
                       node_visit=cc.node_visit if node is None else kw.pop("visit", None), **kw)


def fire_due_timers(clock_, capture, **advance) -> None:
    """Move time on and let the dispatcher + run_actions do what a worker would."""
    clock_.advance(**advance)
    purge_queues()
    with capture(execute=True):
        dispatch_due(now=clock_.now)
    for name, args in queued_tasks():
        if name == "campaign_execution.run_actions":
            scheduled_actions_run(action_ids=args[0])


# --- plan versions ----------------------------------------------------------------------------------------------

def test_storing_the_same_plan_twice_returns_the_existing_version():
    cc = ContactCampaignFactory()
    first = contact_campaign_store_plan(contact_campaign=cc, plan=example_plan(), source="ai")
    reordered = dict(reversed(list(example_plan().items())))  # same plan, other key order
    again = contact_campaign_store_plan(contact_campaign=cc, plan=reordered, source="manual")
    assert again.pk == first.pk and first.version == 1
    assert CampaignPlanVersion.objects.filter(contact_campaign=cc).count() == 1
    assert len(first.plan_hash) == 64
    cc.refresh_from_db()
    assert cc.current_plan_version_id == first.pk and cc.plan_json["startNodeId"] == "email_intro"


def test_an_invalid_plan_is_refused_with_every_problem():
    cc = ContactCampaignFactory()
    bad = example_plan()
    bad["startNodeId"] = "nowhere"
    bad["nodes"][1]["transitions"][0]["after"] = "P1Y"
    with pytest.raises(ApplicationError) as caught:
        contact_campaign_store_plan(contact_campaign=cc, plan=bad, source="ai")
    paths = {p["path"] for p in caught.value.extra["problems"]}
    assert {"startNodeId", "nodes[1].transitions[0].after"} <= paths
    assert not CampaignPlanVersion.objects.filter(contact_campaign=cc).exists()


def test_a_second_different_plan_gets_the_next_version_number():
    cc = ContactCampaignFactory()
    contact_campaign_store_plan(contact_campaign=cc, plan=example_plan(), source="ai")
    other = example_plan()
    other["timezone"] = "Europe/Berlin"
    second = contact_campaign_store_plan(contact_campaign=cc, plan=other, source="manual")
    assert second.version == 2


# --- start and the outbox ---------------------------------------------------------------------------------------

def test_start_queues_the_first_message_with_its_transition_and_hands_it_to_delivery(
        clock, django_capture_on_commit_callbacks):
    cc = ContactCampaignFactory()
    contact_campaign_store_plan(contact_campaign=cc, plan=example_plan(), source="manual")
    with django_capture_on_commit_callbacks(execute=True):
        cc = contact_campaign_start(contact_campaign=cc)
    assert (cc.status, cc.current_node_id, cc.node_visit) == ("active", "email_intro", 1)
    [message] = OutboundMessage.objects.filter(contact_campaign=cc)
    assert message.status == "queued" and message.node_id == "email_intro" and message.node_visit == 1
    assert message.subject == "Quick idea for Acme's onboarding" and message.body_text == "Hi Dana, ..."
    assert message.to_address == cc.contact.email
    assert message.sender_identity_id == cc.campaign.sender_identity_id
    assert message.dedupe_key == f"{cc.tenant_id}:{cc.contact_id}:{cc.campaign_id}:email_intro:email:1"
    [send] = ScheduledAction.objects.filter(contact_campaign=cc, kind="send")
    assert (send.status, send.outbound_message_id, send.due_at) == ("claimed", message.pk, T0)
    assert queued_tasks() == [("campaign_execution.deliver_messages", [[message.pk]])]
    [start] = CampaignTransition.objects.filter(contact_campaign=cc)
    assert (start.event, start.to_node_id, start.to_status) == ("start", "email_intro", "active")


def test_a_send_in_quiet_hours_waits_as_a_pending_action(clock, django_capture_on_commit_callbacks):
    clock.now = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)  # Monday 22:00 in Los Angeles
    with django_capture_on_commit_callbacks(execute=True):
        cc = started_contact_campaign()
    [send] = ScheduledAction.objects.filter(contact_campaign=cc, kind="send")
    assert send.status == "pending" and send.due_at == dt.datetime(2026, 3, 3, 15, 30, tzinfo=dt.UTC)
    assert queued_tasks() == []
    assert OutboundMessage.objects.get(contact_campaign=cc).status == "queued"


def test_start_is_idempotent_and_never_queues_a_second_message(clock):
    cc = started_contact_campaign()
    contact_campaign_start(contact_campaign=cc)
    assert OutboundMessage.objects.filter(contact_campaign=cc).count() == 1
    assert CampaignTransition.objects.filter(contact_campaign=cc).count() == 1


def test_the_outbox_dedupe_key_prevents_a_second_row_for_the_same_node_visit(clock):
    cc = started_contact_campaign()
    # Replay the engine's send for the same node visit, as a retried transaction would.
    rows = services._lock([cc.pk])
    work = services._Work(clock.now)
    send = engine.SendMessage(node_id="email_intro", visit=1, channel="email",
                              message={"subject": "x", "text": "y"}, due_at=clock.now)
    work.apply(rows[cc.pk], engine.Decision(rows[cc.pk].state, [], [send], engine.UPDATED))
    work.flush(rows)
    assert OutboundMessage.objects.filter(contact_campaign=cc).count() == 1
    assert ScheduledAction.objects.filter(contact_campaign=cc, kind="send").count() == 1


def test_the_outbox_row_and_the_transition_commit_together_or_not_at_all(clock, monkeypatch):
    cc = ContactCampaignFactory()
    contact_campaign_store_plan(contact_campaign=cc, plan=example_plan(), source="manual")

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    # The contact campaign's own update is written last, after the outbox row and the transition.
    monkeypatch.setattr(services._Work, "_flush_states", broken)
    with pytest.raises(RuntimeError):
        contact_campaign_start(contact_campaign=cc)
    cc.refresh_from_db()
    assert cc.status == "pending" and cc.node_visit == 0
    assert not OutboundMessage.objects.filter(contact_campaign=cc).exists()
    assert not ScheduledAction.objects.filter(contact_campaign=cc).exists()
    assert not CampaignTransition.objects.filter(contact_campaign=cc).exists()


# --- the example plan through the services ----------------------------------------------------------------------

def test_sent_arms_the_timeouts_as_scheduled_actions(clock):
    cc = started_contact_campaign()
    sent_at = T0 + dt.timedelta(minutes=1)
    result = contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc, at=sent_at))
    assert result.outcome == engine.UPDATED
    timers = {a.event: a for a in ScheduledAction.objects.filter(contact_campaign=cc, kind="timeout")}
    assert timers["no_open"].due_at == sent_at + 3 * DAY and timers["no_reply"].due_at == sent_at + 5 * DAY
    assert {a.status for a in timers.values()} == {"pending"}
    cc.refresh_from_db()
    assert cc.node_sent_at == sent_at


def test_no_open_walks_intro_to_bump_to_wait_to_stop_done(clock, capture):
    cc = started_contact_campaign()
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    fire_due_timers(clock, capture, days=3, minutes=1)
    cc.refresh_from_db()
    assert (cc.current_node_id, cc.node_visit) == ("email_bump", 2)
    no_reply = ScheduledAction.objects.get(contact_campaign=cc, event="no_reply", node_id="email_intro")
    assert no_reply.status == "canceled"  # leaving the node cancels its other timers
    assert ScheduledAction.objects.get(contact_campaign=cc, event="no_open").status == "done"
    bump = OutboundMessage.objects.get(contact_campaign=cc, node_id="email_bump")
    assert bump.subject.startswith("Re: ")
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc, at=clock.now))
    fire_due_timers(clock, capture, days=4, minutes=1)
    cc.refresh_from_db()
    assert cc.current_node_id == "wait_week"
    fire_due_timers(clock, capture, days=7, minutes=1)
    cc.refresh_from_db()
    assert (cc.current_node_id, cc.status, cc.stop_reason) == ("stop_done", "completed", "completed")
    assert cc.finished_at == clock.now
    path = list(CampaignTransition.objects.filter(contact_campaign=cc).exclude(from_node_id=F("to_node_id"))
                .order_by("id").values_list("event", "to_node_id"))
    assert path == [("start", "email_intro"), ("no_open", "email_bump"), ("no_reply", "wait_week"),
                    ("wait_elapsed", "stop_done")]


def test_click_within_two_days_sends_email_hot_and_no_reply_then_completes(clock, capture):
    cc = started_contact_campaign()
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    result = contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("click", cc, at=T0 + DAY))
    assert result.outcome == engine.MOVED and result.current_node_id == "email_hot"
    assert set(ScheduledAction.objects.filter(contact_campaign=cc, node_id="email_intro", kind="timeout")
               .values_list("status", flat=True)) == {"canceled"}
    assert OutboundMessage.objects.filter(contact_campaign=cc, node_id="email_hot").count() == 1
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc, at=clock.now))
    fire_due_timers(clock, capture, days=4, minutes=1)
    cc.refresh_from_db()
    assert (cc.current_node_id, cc.status) == ("stop_done", "completed")


def test_a_reply_while_waiting_stops_replied_and_cancels_the_wait(clock, capture):
    cc = started_contact_campaign()
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    fire_due_timers(clock, capture, days=3, minutes=1)
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc, at=clock.now))
    fire_due_timers(clock, capture, days=4, minutes=1)
    cc.refresh_from_db()
    assert cc.current_node_id == "wait_week"
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("reply", cc, at=clock.now, node="email_bump",
                                                                         visit=2))
    cc.refresh_from_db()
    assert (cc.current_node_id, cc.status, cc.stop_reason) == ("stop_replied", "completed", "replied")
    assert ScheduledAction.objects.get(contact_campaign=cc, kind="wait").status == "canceled"


def test_duplicate_and_late_events_change_nothing_twice(clock):
    cc = started_contact_campaign()
    sent = event("sent", cc)
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=sent)
    duplicate = contact_campaign_handle_event(contact_campaign_id=cc.pk, event=sent)
    assert duplicate.outcome == engine.RECORDED
    assert ScheduledAction.objects.filter(contact_campaign=cc, kind="timeout").count() == 2
    click = event("click", cc, at=T0 + DAY)
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=click)
    again = contact_campaign_handle_event(contact_campaign_id=cc.pk, event=click)  # names the intro: left
    assert again.outcome == engine.RECORDED and again.current_node_id == "email_hot"
    assert OutboundMessage.objects.filter(contact_campaign=cc).count() == 2
    assert CampaignTransition.objects.filter(contact_campaign=cc, reason="node_left").count() == 1


def test_a_stale_timer_run_by_a_worker_does_nothing_but_finish(clock):
    cc = started_contact_campaign()
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("click", cc, at=T0 + DAY))
    stale = ScheduledAction.objects.get(contact_campaign=cc, event="no_open")
    # A timer already claimed when the node was left (its cancel came too late).
    ScheduledAction.objects.filter(pk=stale.pk).update(status="claimed", claimed_at=clock.now)
    before = CampaignTransition.objects.filter(contact_campaign=cc).count()
    scheduled_actions_run(action_ids=[stale.pk])
    cc.refresh_from_db()
    assert cc.current_node_id == "email_hot"
    assert ScheduledAction.objects.get(pk=stale.pk).status == "done"
    assert CampaignTransition.objects.filter(contact_campaign=cc).count() == before


def test_running_the_same_timer_twice_moves_once(clock):
    cc = started_contact_campaign()
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    clock.advance(days=3, minutes=1)
    dispatch_due(now=clock.now)
    timer = ScheduledAction.objects.get(contact_campaign=cc, event="no_open")
    assert timer.status == "claimed"
    scheduled_actions_run(action_ids=[timer.pk])
    scheduled_actions_run(action_ids=[timer.pk])
    assert CampaignTransition.objects.filter(contact_campaign=cc, event="no_open").count() == 1
    assert OutboundMessage.objects.filter(contact_campaign=cc, node_id="email_bump").count() == 1


def test_a_policy_event_stops_the_campaign_and_cancels_the_unsent_message(clock):
    clock.now = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)  # quiet hours: the intro waits
    cc = started_contact_campaign()
    result = contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type="unsubscribe", occurred_at=clock.now))
    assert (result.outcome, result.status) == (engine.STOPPED_OUTCOME, "stopped")
    message = OutboundMessage.objects.get(contact_campaign=cc)
    assert message.status == "canceled" and "unsubscribe" in message.status_reason
    assert ScheduledAction.objects.get(contact_campaign=cc, kind="send").status == "canceled"


def test_a_message_already_sending_is_not_touched_by_a_stop(clock):
    cc = started_contact_campaign()
    OutboundMessage.objects.filter(contact_campaign=cc).update(status="sending")
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(type="spamreport", occurred_at=T0))
    assert OutboundMessage.objects.get(contact_campaign=cc).status == "sending"


def test_send_failed_marks_the_contact_campaign_failed(clock):
    cc = started_contact_campaign()
    result = contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type="send_failed", occurred_at=T0, node_id="email_intro", node_visit=1, detail={"reason": "400 invalid"}))
    assert (result.status, ContactCampaign.objects.get(pk=cc.pk).stop_reason) == ("failed", "send_failed:400 invalid")


def test_an_out_of_office_return_date_moves_the_unsent_message(clock):
    clock.now = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)  # the intro waits for Tuesday 07:30
    plan = example_plan()
    plan["nodes"][0]["transitions"].insert(0, {"on": "reply_ooo", "to": "email_bump"})
    cc = started_contact_campaign(plan=plan)
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type="reply_ooo", occurred_at=clock.now, detail={"return_date": "2026-03-20"}))
    cc.refresh_from_db()
    assert cc.current_node_id == "email_bump" and cc.not_before == dt.datetime(2026, 3, 20, 7, 0, tzinfo=dt.UTC)
    send = ScheduledAction.objects.get(contact_campaign=cc, kind="send", node_id="email_bump")
    assert send.due_at == dt.datetime(2026, 3, 20, 14, 30, tzinfo=dt.UTC)  # Friday 07:30 PDT
    assert OutboundMessage.objects.get(contact_campaign=cc, node_id="email_intro").status == "canceled"


# --- batches ----------------------------------------------------------------------------------------------------

def test_the_batch_form_applies_each_campaigns_events_in_order_in_few_queries(
        clock, django_assert_max_num_queries):
    ccs = [started_contact_campaign() for _ in range(30)]
    items = []
    for cc in ccs:
        items.append((cc.pk, EngineEvent(type="sent", occurred_at=T0, node_id="email_intro", node_visit=1)))
        items.append((cc.pk, EngineEvent(type="open", occurred_at=T0 + DAY, node_id="email_intro", node_visit=1)))
        items.append((cc.pk, EngineEvent(type="click", occurred_at=T0 + DAY, node_id="email_intro", node_visit=1)))
    items.append((999_999_999, EngineEvent(type="open", occurred_at=T0)))
    with django_assert_max_num_queries(14):
        results = contact_campaigns_handle_events(items=items)
    assert len(results) == len(items)
    assert results[-1].outcome == "missing"
    assert [r.outcome for r in results[:3]] == [engine.UPDATED, engine.UPDATED, engine.MOVED]
    assert set(ContactCampaign.objects.filter(pk__in=[c.pk for c in ccs])
               .values_list("current_node_id", flat=True)) == {"email_hot"}
    assert OutboundMessage.objects.filter(node_id="email_hot").count() == 30


def test_stop_for_address_stops_every_live_enrolment_of_that_address_only(clock):
    cc = started_contact_campaign()
    other_campaign = CampaignFactory(tenant=cc.tenant)
    second = started_contact_campaign(tenant=cc.tenant, campaign=other_campaign, contact=cc.contact)
    unrelated = started_contact_campaign(tenant=cc.tenant)
    foreign = started_contact_campaign()  # another tenant, another address
    stopped = contact_campaigns_stop_for_address(tenant_id=cc.tenant_id, channel="email",
                                                 value=cc.contact.email.upper(), reason="unsubscribe:link_click",
                                                 event_type="unsubscribe")
    assert stopped == 2
    for row in (cc, second):
        row.refresh_from_db()
        assert (row.status, row.stop_reason) == ("stopped", "unsubscribe:link_click")
    assert ContactCampaign.objects.get(pk=unrelated.pk).status == "active"
    assert ContactCampaign.objects.get(pk=foreign.pk).status == "active"


# --- enrolment, cancel ------------------------------------------------------------------------------------------

def test_enrolling_with_a_plan_starts_each_contact_once(clock, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    contacts = ContactFactory.create_batch(3, tenant=campaign.tenant)
    ids = [c.pk for c in contacts]
    with django_capture_on_commit_callbacks(execute=True):
        enrolled = campaign_enrol_contacts(campaign=campaign, contact_ids=ids, plan=example_plan())
    assert {e.status for e in enrolled} == {"active"}
    again = campaign_enrol_contacts(campaign=campaign, contact_ids=ids, plan=example_plan())
    assert sorted(e.pk for e in again) == sorted(e.pk for e in enrolled)
    assert OutboundMessage.objects.filter(contact_campaign__campaign=campaign).count() == 3
    [(name, args)] = queued_tasks()
    assert name == "campaign_execution.deliver_messages" and len(args[0]) == 3


def test_enrolling_without_a_plan_asks_the_planner_after_commit(clock, django_capture_on_commit_callbacks):
    campaign = CampaignFactory()
    contacts = ContactFactory.create_batch(2, tenant=campaign.tenant)
    with django_capture_on_commit_callbacks(execute=True):
        enrolled = campaign_enrol_contacts(campaign=campaign, contact_ids=[c.pk for c in contacts])
    assert {e.status for e in enrolled} == {"pending"}
    assert queued_tasks("campaign_creation") == [("campaign_creation.generate_plans",
                                                  [sorted(e.pk for e in enrolled)])]


def test_enrolling_another_tenants_contact_is_refused():
    campaign = CampaignFactory()
    with pytest.raises(ApplicationError):
        campaign_enrol_contacts(campaign=campaign, contact_ids=[ContactFactory().pk])


def test_cancelling_a_campaign_cancels_its_enrolments_and_unsent_messages(clock):
    clock.now = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)  # quiet hours: messages wait
    first = started_contact_campaign()
    second = started_contact_campaign(tenant=first.tenant, campaign=first.campaign)
    campaign_cancel(campaign=first.campaign, reason="wrong list")
    for cc in (first, second):
        cc.refresh_from_db()
        assert (cc.status, cc.stop_reason) == ("canceled", "wrong list")
    assert set(OutboundMessage.objects.filter(contact_campaign__campaign=first.campaign)
               .values_list("status", flat=True)) == {"canceled"}
    assert not ScheduledAction.objects.filter(contact_campaign__campaign=first.campaign,
                                              status__in=["pending", "claimed", "held"]).exists()


def test_cancelling_one_contact_campaign_records_it(clock):
    cc = started_contact_campaign()
    contact_campaign_cancel(contact_campaign=cc, reason="asked by phone")
    last = CampaignTransition.objects.filter(contact_campaign=cc).latest("id")
    assert (last.event, last.to_status, last.reason) == ("canceled", "canceled", "asked by phone")


# --- plan replacement -------------------------------------------------------------------------------------------

def test_replacing_the_plan_keeps_the_node_and_rearms_its_timers(clock):
    cc = started_contact_campaign()
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    new = example_plan()
    new["nodes"][0]["transitions"][2]["after"] = "P1D"
    cc = contact_campaign_replace_plan(contact_campaign=cc, plan=new, source="manual")
    assert (cc.current_node_id, cc.node_visit, cc.current_plan_version.version) == ("email_intro", 1, 2)
    live = ScheduledAction.objects.filter(contact_campaign=cc, kind="timeout", status="pending")
    assert sorted((a.event, a.due_at) for a in live) == [("no_open", T0 + DAY), ("no_reply", T0 + 5 * DAY)]
    assert ScheduledAction.objects.filter(contact_campaign=cc, kind="timeout", status="canceled").count() == 2


def _live_timers(cc: ContactCampaign) -> list[tuple[str, str]]:
    return sorted(ScheduledAction.objects.filter(contact_campaign=cc, kind__in=["timeout", "wait"],
                                                 status__in=["pending", "held", "claimed"])
                  .values_list("event", "status"))


def test_replacing_back_to_an_earlier_plan_version_rearms_its_canceled_timers(clock, capture):
    # v1 -> v2 -> v1: the stored v1 version is reused, so its timer keys are the ones v2 canceled; they must
    # come back, else the campaign sits on its node with nothing scheduled, for ever.
    v1 = example_plan()
    cc = started_contact_campaign(plan=v1)
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    v2 = example_plan()
    v2["nodes"][0]["message"]["text"] = "Hi Dana, the v2 copy"
    contact_campaign_replace_plan(contact_campaign=cc, plan=v2, source="manual")
    clock.advance(hours=1)
    cc = contact_campaign_replace_plan(contact_campaign=cc, plan=v1, source="manual")
    assert cc.current_plan_version.version == 1 and cc.current_node_id == "email_intro"
    assert _live_timers(cc) == [("no_open", "pending"), ("no_reply", "pending")]
    revived = ScheduledAction.objects.get(contact_campaign=cc, event="no_reply", status="pending")
    assert revived.dedupe_key.endswith(f":p{cc.current_plan_version_id}")
    assert (revived.due_at, revived.claimed_at, revived.finished_at) == (T0 + 5 * DAY, None, None)
    fire_due_timers(clock, capture, days=5)
    cc.refresh_from_db()
    assert cc.current_node_id == "email_bump"  # the revived no_open timer moved it on


def test_reverting_a_plan_never_revives_a_timer_that_already_fired(clock, capture):
    v1 = example_plan()
    cc = started_contact_campaign(plan=v1)
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("open", cc, at=T0 + DAY))
    fire_due_timers(clock, capture, days=3)  # no_open fires, finds the open, does nothing: done
    v1_no_open = ScheduledAction.objects.get(contact_campaign=cc, event="no_open")
    assert v1_no_open.status == "done"
    v2 = example_plan()
    v2["nodes"][0]["message"]["text"] = "Hi Dana, the v2 copy"
    contact_campaign_replace_plan(contact_campaign=cc, plan=v2, source="manual")
    contact_campaign_replace_plan(contact_campaign=cc, plan=v1, source="manual")
    v1_no_open.refresh_from_db()
    assert (v1_no_open.status, v1_no_open.finished_at) == ("done", T0 + 3 * DAY)
    assert _live_timers(cc) == [("no_reply", "pending")]  # only the canceled one came back
    # A paused campaign's re-armed timers come back held, like any timer it gets.
    services.contact_campaign_pause(contact_campaign=cc)
    contact_campaign_replace_plan(contact_campaign=cc, plan=v2, source="manual")
    assert _live_timers(cc) == [("no_open", "held"), ("no_reply", "held")]


def test_the_same_timer_asked_twice_in_one_flush_is_written_once(clock):
    # The revival needs ON CONFLICT DO UPDATE, which PostgreSQL refuses when one statement proposes a key twice.
    cc = started_contact_campaign()  # not sent yet: no timer stored, so the first proposal inserts the row
    timer = engine.ScheduleTimeout(node_id="email_intro", visit=1, event="no_reply", transition_index=3,
                                   due_at=T0 + 5 * DAY)
    rows = services._lock([cc.pk])
    work = services._Work(clock.now)
    work.apply(rows[cc.pk], engine.Decision(rows[cc.pk].state, [], [timer, timer], engine.UPDATED))
    work.flush(rows)
    assert ScheduledAction.objects.filter(contact_campaign=cc, event="no_reply").count() == 1


def test_replacing_the_plan_refreshes_a_message_not_sent_yet(clock):
    clock.now = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)
    cc = started_contact_campaign()
    new = example_plan()
    new["nodes"][0]["message"]["subject"] = "A sharper subject"
    contact_campaign_replace_plan(contact_campaign=cc, plan=new, source="manual")
    assert OutboundMessage.objects.get(contact_campaign=cc).subject == "A sharper subject"
    assert OutboundMessage.objects.filter(contact_campaign=cc).count() == 1


def test_replacing_with_a_plan_missing_the_current_node_is_refused_unless_restarted(clock):
    cc = started_contact_campaign()
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=event("sent", cc))
    new = example_plan()
    new["startNodeId"] = "opener"
    new["nodes"][0]["id"] = "opener"
    with pytest.raises(ApplicationError) as caught:
        contact_campaign_replace_plan(contact_campaign=cc, plan=new, source="manual")
    assert caught.value.status_code == 409
    cc.refresh_from_db()
    assert cc.current_node_id == "email_intro" and cc.current_plan_version.version == 1
    assert CampaignPlanVersion.objects.filter(contact_campaign=cc).count() == 1  # rolled back

    cc = contact_campaign_replace_plan(contact_campaign=cc, plan=new, source="manual", restart=True)
    assert (cc.current_node_id, cc.node_visit, cc.status) == ("opener", 2, "active")
    assert OutboundMessage.objects.filter(contact_campaign=cc).count() == 2  # the visit is part of the key
    assert set(ScheduledAction.objects.filter(contact_campaign=cc, node_id="email_intro", kind="timeout")
               .values_list("status", flat=True)) == {"canceled"}
    assert ScheduledAction.objects.get(contact_campaign=cc, node_id="email_intro", kind="send").status == "done"


# --- delivery's reschedule hook ---------------------------------------------------------------------------------

def test_send_action_reschedule_rearms_a_queued_message_out_of_quiet_hours(clock):
    cc = started_contact_campaign()
    message = OutboundMessage.objects.get(contact_campaign=cc)
    reset = dt.datetime(2026, 3, 3, 6, 30, tzinfo=dt.UTC)  # 22:30 in Los Angeles
    action = send_action_reschedule(outbound_message_id=message.pk, not_before=reset, reason="429")
    assert (action.status, action.due_at) == ("pending", dt.datetime(2026, 3, 3, 15, 30, tzinfo=dt.UTC))
    OutboundMessage.objects.filter(pk=message.pk).update(status="sent", sent_at=T0)
    assert send_action_reschedule(outbound_message_id=message.pk, not_before=reset, reason="429") is None


def test_send_action_reschedule_cancels_a_message_whose_node_visit_was_left_and_never_revives_its_action(clock):
    # Review r3: the message was `sending` (mid-batch) when a restart left its node visit, so the leave
    # canceled its send action but not the row; delivery then holds it (429, 5xx pause...) back to queued.
    cc = started_contact_campaign()
    message = OutboundMessage.objects.get(contact_campaign=cc)
    OutboundMessage.objects.filter(pk=message.pk).update(status="sending")
    contact_campaign_replace_plan(contact_campaign=cc, plan=example_plan(), source="manual", restart=True)
    old = ScheduledAction.objects.get(contact_campaign=cc, node_visit=1, kind="send")
    assert old.status == "canceled"
    OutboundMessage.objects.filter(pk=message.pk).update(status="queued")

    assert send_action_reschedule(outbound_message_id=message.pk, not_before=T0, reason="429") is None

    old.refresh_from_db()
    message.refresh_from_db()
    assert old.status == "canceled"  # not revived: the old visit's intro is never sent next to the new one
    assert (message.status, message.status_reason) == ("canceled", "node left before sending")
    assert OutboundMessage.objects.get(contact_campaign=cc, node_visit=2).status == "queued"


def test_send_action_reschedule_cancels_the_held_message_of_a_campaign_that_ended(clock):
    cc = started_contact_campaign()
    message = OutboundMessage.objects.get(contact_campaign=cc)
    OutboundMessage.objects.filter(pk=message.pk).update(status="sending")
    contact_campaign_cancel(contact_campaign=cc, reason="operator")
    OutboundMessage.objects.filter(pk=message.pk).update(status="queued")

    assert send_action_reschedule(outbound_message_id=message.pk, not_before=T0, reason="429") is None

    message.refresh_from_db()
    # Not left queued with no live send action.
    assert message.status == "canceled" and message.status_reason.startswith("campaign ended")
    assert ScheduledAction.objects.get(contact_campaign=cc, kind="send").status == "canceled"


def test_send_action_reschedule_rearms_a_send_finished_by_a_lease_sweep_while_its_node_visit_is_current(clock):
    # The lease sweep marks a send `done` when it finds its row `sending` (a long batch); a later hold of that
    # row on the same node visit must re-arm it, or the queued row would never be sent.
    cc = started_contact_campaign()
    message = OutboundMessage.objects.get(contact_campaign=cc)
    ScheduledAction.objects.filter(contact_campaign=cc, kind="send").update(status="done", finished_at=T0)

    action = send_action_reschedule(outbound_message_id=message.pk, not_before=T0, reason="429")

    assert action is not None and (action.status, action.finished_at) == ("pending", None)
    assert OutboundMessage.objects.get(pk=message.pk).status == "queued"
