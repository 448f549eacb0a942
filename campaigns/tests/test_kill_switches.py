"""Kill switches (issue 3 item 8): due sends are held, never dropped, and go out re-timed on release."""
from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from campaigns.dispatcher import dispatch_due
from campaigns.engine import EngineEvent
from campaigns.models import ContactCampaign, ScheduledAction
from campaigns.services import (
    campaign_pause,
    campaign_resume,
    contact_campaign_handle_event,
    contact_campaign_pause,
    contact_campaign_resume,
)
from campaigns.tests.factories import freeze_clock, purge_queues, queued_tasks, started_contact_campaign
from messaging.models import OutboundMessage
from outreach.tenancy.models import GlobalSendingSwitch, Tenant

pytestmark = pytest.mark.django_db

MONDAY_NIGHT = dt.datetime(2026, 3, 3, 6, 0, tzinfo=dt.UTC)  # 22:00 in Los Angeles: quiet hours
TUESDAY_0730 = dt.datetime(2026, 3, 3, 15, 30, tzinfo=dt.UTC)
TUESDAY_0800 = dt.datetime(2026, 3, 3, 16, 0, tzinfo=dt.UTC)
TUESDAY_2200 = dt.datetime(2026, 3, 4, 6, 0, tzinfo=dt.UTC)
WEDNESDAY_0730 = dt.datetime(2026, 3, 4, 15, 30, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _clean_queues():
    purge_queues()
    yield
    purge_queues()


@pytest.fixture
def clock(monkeypatch):
    return freeze_clock(monkeypatch, MONDAY_NIGHT)


@pytest.fixture
def waiting_send(clock):
    """A contact campaign whose first message waits for Tuesday 07:30 (quiet hours)."""
    cc = started_contact_campaign()
    action = ScheduledAction.objects.get(contact_campaign=cc, kind="send")
    assert (action.status, action.due_at) == ("pending", TUESDAY_0730)
    return cc


def _pause_tenant(cc):
    Tenant.objects.filter(pk=cc.tenant_id).update(sending_paused=True)
    return lambda: Tenant.objects.filter(pk=cc.tenant_id).update(sending_paused=False)


def _pause_campaign(cc):
    campaign_pause(campaign=cc.campaign, reason="copy review")
    return lambda: campaign_resume(campaign=cc.campaign)


def _pause_sender(cc):
    identity = cc.campaign.sender_identity
    identity.is_paused = True
    identity.save()

    def release():
        identity.is_paused = False
        identity.save()
    return release


def _unverify_sender(cc):
    identity = cc.campaign.sender_identity
    identity.status = "pending"
    identity.save()

    def release():
        identity.status = "verified"
        identity.save()
    return release


def _global_db_switch(cc):
    GlobalSendingSwitch.objects.update_or_create(id=1, defaults={"sending_stopped": True, "reason": "incident"})
    return lambda: GlobalSendingSwitch.objects.filter(id=1).update(sending_stopped=False)


SWITCHES = [_pause_tenant, _pause_campaign, _pause_sender, _unverify_sender, _global_db_switch]


def dispatch(capture, now):
    purge_queues()
    with capture(execute=True):
        stats = dispatch_due(now=now)
    return stats, queued_tasks()


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda f: f.__name__.strip("_"))
def test_a_switch_holds_the_due_send_and_release_sends_it_retimed(
        switch, waiting_send, clock, django_capture_on_commit_callbacks):
    cc = waiting_send
    release = switch(cc)
    clock.now = TUESDAY_0800
    stats, published = dispatch(django_capture_on_commit_callbacks, TUESDAY_0800)
    assert (stats.held, published) == (1, [])
    action = ScheduledAction.objects.get(contact_campaign=cc, kind="send")
    assert action.status == "held"
    assert OutboundMessage.objects.get(contact_campaign=cc).status == "queued"  # kept, not dropped

    # Still held on later ticks; released at 22:00 (quiet hours) it is re-timed to Wednesday 07:30.
    assert dispatch(django_capture_on_commit_callbacks, TUESDAY_2200)[1] == []
    release()
    clock.now = TUESDAY_2200
    stats, published = dispatch(django_capture_on_commit_callbacks, TUESDAY_2200)
    assert stats.released == 1 and published == []
    action.refresh_from_db()
    assert (action.status, action.due_at) == ("pending", WEDNESDAY_0730)

    stats, published = dispatch(django_capture_on_commit_callbacks, WEDNESDAY_0730)
    message = OutboundMessage.objects.get(contact_campaign=cc)
    assert published == [("campaign_execution.deliver_messages", [[message.pk]])]


@override_settings(OUTREACH_SENDING_STOPPED=True)
def test_the_global_stop_setting_holds_sends(waiting_send, clock, django_capture_on_commit_callbacks):
    stats, published = dispatch(django_capture_on_commit_callbacks, TUESDAY_0800)
    assert (stats.held, published) == (1, [])


def test_switches_hold_sends_but_not_timers(waiting_send, clock, django_capture_on_commit_callbacks):
    cc = waiting_send
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type="sent", occurred_at=TUESDAY_0730, node_id="email_intro", node_visit=1))
    Tenant.objects.filter(pk=cc.tenant_id).update(sending_paused=True)
    clock.now = TUESDAY_0730 + dt.timedelta(days=3, minutes=1)
    stats, published = dispatch(django_capture_on_commit_callbacks, clock.now)
    timer = ScheduledAction.objects.get(contact_campaign=cc, event="no_open")
    assert published == [("campaign_execution.run_actions", [[timer.pk]])]


def test_a_message_due_now_for_a_paused_tenant_is_held_at_once(clock, django_capture_on_commit_callbacks):
    clock.now = TUESDAY_0800
    from campaigns.tests.factories import ContactCampaignFactory

    cc = ContactCampaignFactory(tenant__sending_paused=True)
    from campaigns.services import contact_campaign_start, contact_campaign_store_plan
    from campaigns.tests.factories import example_plan

    contact_campaign_store_plan(contact_campaign=cc, plan=example_plan(), source="manual")
    with django_capture_on_commit_callbacks(execute=True):
        contact_campaign_start(contact_campaign=cc)
    assert queued_tasks() == []
    assert ScheduledAction.objects.get(contact_campaign=cc, kind="send").status == "held"


def test_a_paused_contact_campaign_holds_timers_and_sends_and_resume_retimes_them(
        clock, django_capture_on_commit_callbacks):
    clock.now = TUESDAY_0800
    cc = started_contact_campaign()
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type="sent", occurred_at=TUESDAY_0800, node_id="email_intro", node_visit=1))
    cc = contact_campaign_pause(contact_campaign=cc, reason="talking on the phone")
    assert cc.status == "paused"
    timers = ScheduledAction.objects.filter(contact_campaign=cc, kind="timeout")
    assert set(timers.values_list("status", flat=True)) == {"held"}
    due_before = dict(timers.values_list("event", "due_at"))

    clock.now = TUESDAY_0800 + dt.timedelta(days=6)
    stats, published = dispatch(django_capture_on_commit_callbacks, clock.now)
    assert published == [] and ContactCampaign.objects.get(pk=cc.pk).current_node_id == "email_intro"

    clock.now = dt.datetime(2026, 3, 10, 6, 0, tzinfo=dt.UTC)  # Monday 23:00 PDT, quiet hours
    contact_campaign_resume(contact_campaign=cc)
    assert dict(timers.values_list("event", "due_at")) == due_before  # timers keep their due time
    assert set(timers.values_list("status", flat=True)) == {"pending"}
    stats, published = dispatch(django_capture_on_commit_callbacks, clock.now)
    assert {name for name, _ in published} == {"campaign_execution.run_actions"}
    from campaigns.services import scheduled_actions_run

    for _, args in published:
        scheduled_actions_run(action_ids=args[0])
    cc.refresh_from_db()
    assert cc.current_node_id == "email_bump"  # the overdue no_open fired on resume


def test_a_send_held_by_a_contact_pause_is_retimed_on_resume(waiting_send, clock):
    cc = contact_campaign_pause(contact_campaign=waiting_send)
    send = ScheduledAction.objects.get(contact_campaign=cc, kind="send")
    assert send.status == "held"
    clock.now = TUESDAY_2200
    contact_campaign_resume(contact_campaign=cc)
    send.refresh_from_db()
    assert (send.status, send.due_at) == ("pending", WEDNESDAY_0730)


def test_a_paused_contact_campaign_still_hears_a_reply(waiting_send, clock):
    cc = contact_campaign_pause(contact_campaign=waiting_send)
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type="reply", occurred_at=clock.now, node_id="email_intro", node_visit=1))
    cc.refresh_from_db()
    assert (cc.status, cc.current_node_id) == ("completed", "stop_replied")
    assert OutboundMessage.objects.get(contact_campaign=cc).status == "canceled"
