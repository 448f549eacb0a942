"""Delivery under concurrency and crashes (review r1): policy that changes while a batch is on the wire,
and outcomes the engine never heard because the worker died or the engine call failed after the send.

Against the SendGrid simulator over real HTTP. "Meanwhile" is staged by wrapping our own
``messaging.sendgrid.client.mail_send`` (never the sendgrid library): the wrapper does what a concurrent
request would, then makes the real request.
"""
from __future__ import annotations

import copy
import datetime as dt
import logging
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign, CampaignTransition, ContactCampaign, ScheduledAction
from campaigns.services import contact_campaign_replace_plan
from messaging import compliance, delivery
from messaging.delivery import engine_feed, policy, recovery
from messaging.models import CommunicationSuppression, ContactUnsubscribe, EmailSenderIdentity, OutboundMessage
from messaging.sendgrid import client as sg
from messaging.tests.factories import TEST_PLAN
from messaging.tests.factories import enrolled_message as _enrolled_message
from outreach import clock
from outreach.tenancy.models import GlobalSendingSwitch, Tenant
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db

# TEST_PLAN with exactly these timeouts on the first node, which only `sent` arms: `no_open` after P3D and
# `no_reply` after P7D (pinned here: the tests below count and time them).
PLAN = copy.deepcopy(TEST_PLAN)
PLAN["nodes"][0]["transitions"] = [t for t in PLAN["nodes"][0]["transitions"] if t["on"] != "no_reply"] + [
    {"on": "no_reply", "after": "P7D", "to": "stop_done"}]


def enrolled_message(**kwargs) -> OutboundMessage:
    kwargs.setdefault("plan", PLAN)
    return _enrolled_message(**kwargs)


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=11) as handle:
        yield handle


def _mailed(sim) -> list[str]:
    return [address for mail in sim.messages() for address in mail["to"]]


def _meanwhile(monkeypatch, during_first_request) -> list[str]:
    """While the batch's first request is on the wire, run `during_first_request` (another process's work)."""
    real_send = sg.mail_send
    calls: list[str] = []

    def send(*, body, timeout=None):
        calls.append(body["personalizations"][0]["to"][0]["email"])
        if len(calls) == 1:
            during_first_request()
        return real_send(body=body, timeout=timeout)

    monkeypatch.setattr(sg, "mail_send", send)
    return calls


def _two_messages() -> tuple[OutboundMessage, OutboundMessage]:
    first = enrolled_message(email="first@acme.example")
    second = enrolled_message(campaign=first.contact_campaign.campaign, email="second@acme.example")
    assert first.id < second.id  # the batch goes in id order: `first` is on the wire before `second`
    return first, second


def _timers(cc_id: int) -> int:
    return ScheduledAction.objects.filter(contact_campaign_id=cc_id, kind="timeout",
                                          status__in=["pending", "claimed", "held"]).count()


# --- 1. policy re-checked by the statement that records the request start ---------------------------

def test_address_unsubscribed_while_the_batch_is_in_flight_is_not_mailed(sim, monkeypatch):
    first, second = _two_messages()
    calls = _meanwhile(monkeypatch, lambda: compliance.unsubscribe_record(
        tenant=first.tenant_id, channel="email", value="second@acme.example", source="link_click"))

    report = delivery.outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    assert calls == ["first@acme.example"] and _mailed(sim) == ["first@acme.example"]
    assert report.sent == [first.id]
    second.refresh_from_db()
    # unsubscribe_record also stopped second's contact campaign, so the row settles as the batch-start
    # check would have found it: canceled (a finished contact campaign wins over the block reason).
    assert second.status == OutboundMessage.Status.CANCELED and second.status_reason == "contact_campaign_stopped"
    assert second.send_started_at is None and second.attempts == 0 and report.canceled == [second.id]


def test_opt_out_landing_mid_batch_without_the_campaign_stop_is_suppressed_and_the_engine_hears_it(sim, monkeypatch):
    # The opt-out row alone (unsubscribe_record commits it even when stopping the campaigns fails).
    first, second = _two_messages()
    _meanwhile(monkeypatch, lambda: ContactUnsubscribe.objects.create(
        tenant_id=first.tenant_id, channel="email", channel_value="second@acme.example", source="link_click"))

    report = delivery.outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    assert _mailed(sim) == ["first@acme.example"] and report.suppressed == [second.id]
    second.refresh_from_db()
    assert second.status == OutboundMessage.Status.SUPPRESSED and second.status_reason == "unsubscribed"
    cc = ContactCampaign.objects.get(id=second.contact_campaign_id)
    assert cc.status == ContactCampaign.Status.STOPPED and cc.stop_reason == "suppressed:unsubscribed"


@pytest.mark.parametrize(("channel", "value", "expires_in", "blocked_as"), [
    ("email", "second@acme.example", None, "suppressed:hard_bounce"),
    ("email", "second@acme.example", dt.timedelta(hours=72), "suppressed:hard_bounce"),
    ("email_domain", "acme.example", None, "suppressed:domain"),
    ("email", "second@acme.example", -dt.timedelta(minutes=1), None),  # expired: no longer blocks
])
def test_suppression_landing_mid_batch_is_enforced_unless_expired(sim, monkeypatch, channel, value, expires_in,
                                                                 blocked_as):
    first, second = _two_messages()
    expires_at = clock.now() + expires_in if expires_in is not None else None
    _meanwhile(monkeypatch, lambda: CommunicationSuppression.objects.create(
        tenant_id=first.tenant_id, channel=channel, value=value, reason="hard_bounce", expires_at=expires_at))

    delivery.outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    second.refresh_from_db()
    if blocked_as is None:
        assert second.status == OutboundMessage.Status.SENT and len(sim.messages()) == 2
    else:
        assert _mailed(sim) == ["first@acme.example"]
        assert second.status == OutboundMessage.Status.SUPPRESSED and second.status_reason == blocked_as


@pytest.mark.parametrize("switch", ["global_row", "global_setting", "tenant", "sender_paused", "sender_unverified",
                                    "campaign_paused", "contact_campaign_paused"])
def test_pause_landing_mid_batch_holds_the_rest_queued_and_rearmed(sim, monkeypatch, settings, switch):
    first, second = _two_messages()
    sender = first.contact_campaign.campaign.sender_identity

    def flip() -> None:
        if switch == "global_row":
            GlobalSendingSwitch.objects.update_or_create(id=1, defaults={"sending_stopped": True})
        elif switch == "global_setting":
            settings.OUTREACH_SENDING_STOPPED = True
        elif switch == "tenant":
            Tenant.objects.filter(id=first.tenant_id).update(sending_paused=True)
        elif switch == "sender_paused":
            EmailSenderIdentity.objects.filter(id=sender.id).update(is_paused=True)
        elif switch == "sender_unverified":
            EmailSenderIdentity.objects.filter(id=sender.id).update(status="pending")
        elif switch == "campaign_paused":
            Campaign.objects.filter(id=first.contact_campaign.campaign_id).update(status="paused")
        else:
            ContactCampaign.objects.filter(id=second.contact_campaign_id).update(status="paused")

    _meanwhile(monkeypatch, flip)
    before = clock.now()

    report = delivery.outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    assert _mailed(sim) == ["first@acme.example"] and report.held == [second.id]
    second.refresh_from_db()
    assert second.status == OutboundMessage.Status.QUEUED and second.claimed_at is None
    assert second.attempts == 0 and second.send_started_at is None
    assert second.next_attempt_at >= before + dt.timedelta(minutes=14)  # SENDING_HOLD_RECHECK, not dropped
    action = ScheduledAction.objects.get(outbound_message_id=second.id, kind="send")
    assert action.status in ("pending", "held")  # held while its contact campaign is paused


def test_contact_campaign_finished_mid_batch_cancels_the_rest(sim, monkeypatch):
    first, second = _two_messages()
    _meanwhile(monkeypatch, lambda: ContactCampaign.objects.filter(id=second.contact_campaign_id)
               .update(status="completed"))

    report = delivery.outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    second.refresh_from_db()
    assert _mailed(sim) == ["first@acme.example"] and report.canceled == [second.id]
    assert second.status == OutboundMessage.Status.CANCELED


def _restart_plan_of(message: OutboundMessage):
    """What an operator's plan restart does: a new visit of the start node (same node id, visit + 1)."""
    return lambda: contact_campaign_replace_plan(
        contact_campaign=ContactCampaign.objects.get(id=message.contact_campaign_id), plan=PLAN, source="manual",
        restart=True)


def test_node_visit_left_while_the_batch_is_in_flight_cancels_the_old_visits_message_at_request_start(
        sim, monkeypatch):
    # Leaving a node cancels only `queued` rows; `second` is `sending` in this batch when its plan restarts.
    first, second = _two_messages()
    _meanwhile(monkeypatch, _restart_plan_of(second))

    report = delivery.outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    assert _mailed(sim) == ["first@acme.example"] and report.canceled == [second.id]
    second.refresh_from_db()
    assert (second.status, second.status_reason) == ("canceled", "node left before sending")
    assert second.send_started_at is None and second.attempts == 0


def test_message_held_after_its_node_visit_was_left_is_canceled_not_rearmed_and_mailed_once(sim, monkeypatch):
    # Review r3: `first` gets a 503, which pauses the batch: `second` (its node visit left meanwhile) is held.
    # Re-arming it revived the visit's canceled send action, and the contact got the intro twice.
    first, second = _two_messages()
    sim.set_faults("5xx", count=1)
    _meanwhile(monkeypatch, _restart_plan_of(second))

    report = delivery.outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    assert report.retrying == [first.id] and report.held == [second.id]
    second.refresh_from_db()
    assert (second.status, second.status_reason) == ("canceled", "node left before sending")
    assert ScheduledAction.objects.get(outbound_message_id=second.id, kind="send").status == "canceled"
    new = OutboundMessage.objects.get(contact_campaign_id=second.contact_campaign_id, node_visit=2)
    # Whatever the dispatcher hands over next, the contact is mailed the intro once.
    delivery.outbound_messages_deliver(outbound_message_ids=[second.id, new.id])
    assert _mailed(sim).count("second@acme.example") == 1


def test_policy_is_checked_by_the_statement_that_records_the_request_start(sim):
    # One statement per message, no read-then-write gap: the UPDATE that sets send_started_at carries
    # every policy condition itself.
    message = enrolled_message()

    with CaptureQueriesContext(connection) as queries:
        delivery.outbound_messages_deliver(outbound_message_ids=[message.id])

    [start] = [q["sql"] for q in queries.captured_queries
               if re.search(r"send_started_at = '", q["sql"].split("WHERE")[0])]
    for table in ("global_sending_switch", "tenants", "email_sender_identities", "contact_campaigns", "campaigns",
                  "contact_unsubscribes", "communication_suppressions"):
        assert re.search(rf"\bFROM {table}\b", start), table


# --- 2. outcomes the engine never heard --------------------------------------------------------------

def test_sent_event_is_not_lost_when_the_worker_dies_after_the_send(sim, monkeypatch,
                                                                     django_capture_on_commit_callbacks):
    from campaigns.dispatcher import dispatch_due
    from messaging.tasks import recover_stale_sends

    message = enrolled_message(email="dana@acme.example")

    def killed(items):
        raise SystemExit("worker killed (OOM / SIGKILL) after marking sent, before feeding the engine")

    monkeypatch.setattr(engine_feed, "feed_engine", killed)
    with pytest.raises(SystemExit):
        delivery.outbound_messages_deliver(outbound_message_ids=[message.id])
    monkeypatch.undo()
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    # acks_late: the task is redelivered and finds nothing to claim.
    assert delivery.outbound_messages_deliver(outbound_message_ids=[message.id]).not_claimed == [message.id]
    # The beat tasks run later: the dispatcher's lease recovery closes the send action, and the
    # stale-send sweep must feed the engine the `sent` it never heard.
    later = clock.now() + dt.timedelta(hours=1)
    monkeypatch.setattr(clock, "now", lambda: later)
    with django_capture_on_commit_callbacks(execute=True):
        dispatch_due(now=later)
    recover_stale_sends()

    cc = ContactCampaign.objects.get(id=message.contact_campaign_id)
    assert cc.node_sent_at == message.sent_at  # anchored at the send, not at the sweep
    [no_open, no_reply] = ScheduledAction.objects.filter(contact_campaign=cc, kind="timeout").order_by("due_at")
    assert no_open.status == "pending" and no_open.due_at == message.sent_at + dt.timedelta(days=3)
    assert no_reply.due_at == message.sent_at + dt.timedelta(days=7)
    assert len(sim.messages()) == 1


def test_engine_failure_after_the_batch_is_not_lost_but_fed_again_by_the_sweep(sim, monkeypatch, caplog):
    import campaigns.interface

    message = enrolled_message()

    def engine_down(**kwargs):
        raise RuntimeError("engine unavailable")

    monkeypatch.setattr(campaigns.interface, "contact_campaigns_handle_events", engine_down)
    monkeypatch.setattr(campaigns.interface, "contact_campaign_handle_event", engine_down)
    with caplog.at_level(logging.ERROR, logger="messaging.delivery"):
        assert delivery.outbound_messages_deliver(outbound_message_ids=[message.id]).sent == [message.id]
    assert not any("lost" in record.getMessage() for record in caplog.records)
    monkeypatch.undo()
    message.refresh_from_db()
    cc_id = message.contact_campaign_id
    assert ContactCampaign.objects.get(id=cc_id).node_sent_at is None

    # Within the grace the batch may still be about to feed it: the sweep leaves it alone.
    assert delivery.outbound_messages_feed_lost_events()["sent"] == []
    sent_at = message.sent_at
    monkeypatch.setattr(clock, "now", lambda: sent_at + dt.timedelta(seconds=61))
    assert delivery.outbound_messages_feed_lost_events()["sent"] == [message.id]

    assert ContactCampaign.objects.get(id=cc_id).node_sent_at == sent_at and _timers(cc_id) == 2
    assert delivery.outbound_messages_feed_lost_events()["sent"] == []  # heard: no longer a candidate


def test_sent_fed_twice_is_recorded_as_a_duplicate_and_arms_nothing_more(sim, monkeypatch):
    # The sweep may feed `sent` while the batch is still running (a batch can outlast the grace); the
    # batch's own call then brings the same `sent` again.
    message = enrolled_message()
    held_back: list[tuple] = []
    monkeypatch.setattr(engine_feed, "feed_engine", held_back.extend)
    delivery.outbound_messages_deliver(outbound_message_ids=[message.id])
    monkeypatch.undo()
    message.refresh_from_db()
    monkeypatch.setattr(clock, "now", lambda: message.sent_at + dt.timedelta(minutes=5))
    assert delivery.outbound_messages_feed_lost_events()["sent"] == [message.id]
    cc_id = message.contact_campaign_id
    assert _timers(cc_id) == 2

    engine_feed.feed_engine(held_back)  # the batch's late call

    cc = ContactCampaign.objects.get(id=cc_id)
    assert cc.node_sent_at == message.sent_at and cc.current_node_id == "email_intro" and _timers(cc_id) == 2
    reasons = list(CampaignTransition.objects.filter(contact_campaign_id=cc_id, event="sent")
                   .order_by("id").values_list("reason", flat=True))
    assert reasons == ["sent", "duplicate"]


def test_lost_suppressed_and_send_failed_are_fed_again_too(sim, monkeypatch):
    suppressed = enrolled_message(email="gone@acme.example")
    refused = enrolled_message(email="dana@acme.example")
    ContactUnsubscribe.objects.create(tenant_id=suppressed.tenant_id, channel="email",
                                      channel_value="gone@acme.example", source="manual")
    OutboundMessage.objects.filter(id=refused.id).update(subject="")  # SendGrid answers 400
    monkeypatch.setattr(engine_feed, "feed_engine", lambda items: None)  # the engine never hears
    report = delivery.outbound_messages_deliver(outbound_message_ids=[suppressed.id, refused.id])
    assert report.suppressed == [suppressed.id] and report.failed == [refused.id]
    monkeypatch.undo()
    monkeypatch.setattr(clock, "now", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))

    fed = delivery.outbound_messages_feed_lost_events()

    assert fed == {"sent": [], "suppressed": [suppressed.id], "send_failed": [refused.id]}
    gone = ContactCampaign.objects.get(id=suppressed.contact_campaign_id)
    assert gone.status == ContactCampaign.Status.STOPPED and gone.stop_reason == "suppressed:unsubscribed"
    failed = ContactCampaign.objects.get(id=refused.contact_campaign_id)
    assert failed.status == ContactCampaign.Status.FAILED and failed.stop_reason == "send_failed:http_400"


def test_sweep_skips_messages_whose_node_visit_is_over_or_older_than_the_lookback(sim, monkeypatch):
    moved_on = enrolled_message()
    too_old = enrolled_message(campaign=moved_on.contact_campaign.campaign)
    monkeypatch.setattr(engine_feed, "feed_engine", lambda items: None)
    delivery.outbound_messages_deliver(outbound_message_ids=[moved_on.id, too_old.id])
    monkeypatch.undo()
    # moved_on's contact campaign has entered another node visit since (its row is no longer this node's).
    ContactCampaign.objects.filter(id=moved_on.contact_campaign_id).update(node_visit=99)
    OutboundMessage.objects.filter(id=too_old.id).update(updated_at=clock.now() - dt.timedelta(hours=7))
    monkeypatch.setattr(clock, "now", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))

    assert delivery.outbound_messages_feed_lost_events()["sent"] == []
    assert delivery.outbound_messages_feed_lost_events(lookback=dt.timedelta(hours=8))["sent"] == [too_old.id]


def test_sweep_pages_through_more_lost_events_than_one_page(sim, monkeypatch):
    messages = [enrolled_message(email=f"lead{i}@acme.example") for i in range(5)]
    monkeypatch.setattr(engine_feed, "feed_engine", lambda items: None)
    delivery.outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])
    monkeypatch.undo()
    monkeypatch.setattr(clock, "now", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))

    fed = delivery.outbound_messages_feed_lost_events(page_size=2)

    assert sorted(fed["sent"]) == sorted(m.id for m in messages)
    assert all(cc.node_sent_at is not None for cc in ContactCampaign.objects.filter(
        id__in=[m.contact_campaign_id for m in messages]))


def test_a_start_refused_for_a_reason_already_undone_is_held_for_now_not_sent(sim, monkeypatch):
    # E.g. a tenant pause lifted between the refusing statement and the re-read: the message goes back to
    # the queue for the dispatcher's next tick, never out on a check the guarded statement did not make.
    message = enrolled_message()
    monkeypatch.setattr(policy, "start_request", lambda *args, **kwargs: False)
    before = clock.now()

    report = delivery.outbound_messages_deliver(outbound_message_ids=[message.id])

    message.refresh_from_db()
    assert report.held == [message.id] and sim.messages() == []
    assert message.status == OutboundMessage.Status.QUEUED
    assert message.status_reason == "policy_changed_during_batch"
    assert before <= message.next_attempt_at <= clock.now()
    action = ScheduledAction.objects.get(outbound_message_id=message.id, kind="send")
    assert action.status == "pending"


def test_the_beat_task_feeds_unheard_outcomes_even_when_stale_claim_recovery_fails(sim, monkeypatch):
    from messaging.tasks import recover_stale_sends

    message = enrolled_message()
    monkeypatch.setattr(engine_feed, "feed_engine", lambda items: None)
    delivery.outbound_messages_deliver(outbound_message_ids=[message.id])
    monkeypatch.undo()

    def broken(**kwargs):
        raise RuntimeError("stale claim recovery failed")

    monkeypatch.setattr(recovery, "_recover_stale_claims", broken)
    monkeypatch.setattr(clock, "now", lambda: dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2))
    with pytest.raises(RuntimeError):
        recover_stale_sends()

    assert ContactCampaign.objects.get(id=message.contact_campaign_id).node_sent_at is not None
