"""The operator console for campaigns: the contact campaign page (plan steps, current node, timeline, bounded
queries) and pause / resume / cancel, one at a time or in bulk, always confirmed and through the services."""
from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from campaigns.admin import duration_words, transition_words
from campaigns.engine import EngineEvent
from campaigns.models import Campaign, CampaignTransition, ContactCampaign
from campaigns.services import contact_campaign_handle_event
from campaigns.tests.factories import (
    CampaignFactory,
    ContactCampaignFactory,
    freeze_clock,
    purge_queues,
    started_contact_campaign,
)
from messaging.models import OutboundMessage
from messaging.tests.factories import InboundMessageFactory, MessageEventFactory
from outreach.tenancy.models import AuditEntry
from outreach.tenancy.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 17, 0, tzinfo=dt.UTC)  # Monday 09:00 in Los Angeles: inside the plan's send hours
MINUTE, HOUR, DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
CC_CHANGELIST = "admin:campaigns_contactcampaign_changelist"
CAMPAIGN_CHANGELIST = "admin:campaigns_campaign_changelist"


@pytest.fixture
def clock(monkeypatch):
    return freeze_clock(monkeypatch, T0)


@pytest.fixture(autouse=True)
def _clean_queues():
    purge_queues()
    yield
    purge_queues()


def _page(cc: ContactCampaign) -> str:
    return reverse("admin:campaigns_contactcampaign_change", args=[cc.pk])


def _switch(cc_or_campaign, name: str) -> str:
    opts = cc_or_campaign._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_switch", args=[cc_or_campaign.pk, name])


def _messages(response) -> list[str]:
    """The messages this response added (earlier, unread ones stay in the session)."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1:]


def _handle(cc: ContactCampaign, kind: str, at: dt.datetime, *, node: str = "email_intro", visit: int = 1) -> None:
    contact_campaign_handle_event(contact_campaign_id=cc.pk, event=EngineEvent(
        type=kind, occurred_at=at, node_id=node, node_visit=visit))


def contact_campaign_with_history(clock, *, extra_events: int = 0) -> ContactCampaign:
    """The example plan started at T0, its intro delivered and opened by a machine, then moved on by no_open to
    email_bump (3 days later), whose reply arrives an hour after: transitions, messages, events and a reply."""
    cc = started_contact_campaign()
    intro = OutboundMessage.objects.get(contact_campaign=cc, node_id="email_intro")
    OutboundMessage.objects.filter(pk=intro.pk).update(status="sent", sent_at=T0 + MINUTE,
                                                       delivery_status="delivered")
    _handle(cc, "sent", T0 + MINUTE)
    MessageEventFactory(tenant=cc.tenant, outbound_message=intro, event_type="delivered", occurred_at=T0 + 2 * MINUTE)
    MessageEventFactory(tenant=cc.tenant, outbound_message=intro, event_type="open", is_machine=True,
                        occurred_at=T0 + 3 * MINUTE)
    for i in range(extra_events):
        MessageEventFactory(tenant=cc.tenant, outbound_message=intro, event_type="open", is_machine=True,
                            occurred_at=T0 + 4 * MINUTE + i * MINUTE)
    clock.now = T0 + 3 * DAY + MINUTE
    _handle(cc, "no_open", clock.now)
    bump = OutboundMessage.objects.get(contact_campaign=cc, node_id="email_bump")
    clock.now = T0 + 3 * DAY + 61 * MINUTE
    InboundMessageFactory(tenant=cc.tenant, outbound_message=bump)  # received_at: the clock's now
    cc.refresh_from_db()
    assert (cc.current_node_id, cc.node_visit) == ("email_bump", 2)
    return cc


# --- the plan as words ------------------------------------------------------------------------------------------

def test_durations_and_transitions_read_as_words():
    assert [duration_words(d) for d in ("P3D", "P1W", "P10D", "PT30M", "P1DT12H", "PT1H")] == [
        "3 days", "1 week", "10 days", "30 minutes", "1 day 12 hours", "1 hour"]
    assert transition_words("reply", "stop_replied") == "on reply → stop_replied"
    assert transition_words("no_open", "email_bump", after="P3D") == "no open after 3 days → email_bump"
    assert transition_words("click", "email_hot", within="P2D") == "on click within 2 days → email_hot"
    assert transition_words("reply_ooo", "wait") == "on out-of-office reply → wait"


# --- the contact campaign page ----------------------------------------------------------------------------------

def test_the_contact_campaign_page_shows_the_plan_as_steps_with_the_current_node_marked(admin_client, clock):
    cc = contact_campaign_with_history(clock)

    response = admin_client.get(_page(cc))

    assert response.status_code == 200
    body = response.content.decode()
    steps = re.findall(r'<tr class="plan-step( current-node)?" id="step-([a-z_]+)">', body)
    assert [node for _, node in steps] == ["email_intro", "email_hot", "email_bump", "wait_week", "stop_replied",
                                           "stop_done"]
    assert [node for current, node in steps if current] == ["email_bump"]
    assert body.count("◀ current node") == 1
    for words in ("on reply → stop_replied", "on click within 2 days → email_hot",
                  "no open after 3 days → email_bump", "no reply after 5 days → email_bump",
                  "no reply after 4 days → wait_week", "wait 1 week, then → stop_done", "stop: replied"):
        assert words in body, words
    assert "Quick idea for Acme&#x27;s onboarding" in body and "Hi Dana, ..." in body
    assert 'name="_save"' not in body  # still read-only


def test_the_timeline_merges_transitions_messages_events_and_replies_in_time_order(admin_client, clock):
    cc = contact_campaign_with_history(clock)

    response = admin_client.get(_page(cc))

    rows = response.context["timeline"]
    assert [row["at"] for row in rows] == sorted(row["at"] for row in rows)
    kinds = [(row["kind"], row["event"]) for row in rows]
    # At one instant causes come first: the "sent" transition, then the message it concerns.
    assert kinds[:5] == [("transition", "start"), ("transition", "sent"), ("message", "sent"),
                         ("event", "delivered"), ("event", "open")]
    assert ("transition", "no_open") in kinds and ("message", "queued") in kinds and kinds[-1][0] == "reply"
    machine_open = next(row for row in rows if row["kind"] == "event" and row["event"] == "open")
    assert machine_open["details"].startswith("machine")
    intro = next(row for row in rows if row["kind"] == "message" and row["node_id"] == "email_intro")
    assert "outbox: sent" in intro["details"] and "delivery: delivered" in intro["details"]
    body = response.content.decode()
    assert re.findall(r'class="timeline-row kind-(\w+)"', body) == [row["kind"] for row in rows]
    assert reverse("admin:messaging_outboundmessage_change", args=[intro["data"]["message_id"]]) in body


def test_the_contact_campaign_page_runs_the_same_few_queries_however_long_its_history(admin_client, clock,
                                                                                       django_assert_num_queries):
    short = contact_campaign_with_history(clock)
    long = contact_campaign_with_history(clock, extra_events=30)
    admin_client.get(_page(short))  # warm the session and the plan cache

    # session, user, the row (joined with contact, campaign, tenant, plan version), transitions, messages,
    # events, replies, the pending timers, the stop banner's switch
    with django_assert_num_queries(9):
        assert admin_client.get(_page(short)).status_code == 200
    with django_assert_num_queries(9):
        assert admin_client.get(_page(long)).status_code == 200


def test_a_contact_campaign_without_a_plan_says_so(admin_client):
    cc = ContactCampaignFactory()

    body = admin_client.get(_page(cc)).content.decode()

    assert "No plan yet" in body and "Nothing has happened yet." in body


def test_a_stored_plan_that_no_longer_parses_is_shown_raw_with_the_problem(admin_client):
    cc = ContactCampaignFactory(plan_json={"version": "1.0", "nodes": []})

    body = admin_client.get(_page(cc)).content.decode()

    assert "The stored plan does not parse" in body and "startNodeId" in body


# --- one contact campaign: the buttons --------------------------------------------------------------------------

def test_the_page_offers_the_switches_of_its_state_and_a_get_changes_nothing(admin_client, clock):
    cc = started_contact_campaign()

    body = admin_client.get(_page(cc)).content.decode()
    confirm = admin_client.get(_switch(cc, "cancel_contact_campaigns"))

    assert _switch(cc, "pause_contact_campaigns") in body and _switch(cc, "cancel_contact_campaigns") in body
    assert _switch(cc, "resume_contact_campaigns") not in body
    assert confirm.status_code == 200 and "Yes, cancel" in confirm.content.decode()
    cc.refresh_from_db()
    assert cc.status == "active"
    assert not AuditEntry.objects.exists()


def test_cancelling_from_the_page_goes_through_the_service(admin_client, admin_user, clock):
    cc = started_contact_campaign()

    response = admin_client.post(_switch(cc, "cancel_contact_campaigns"), {"reason": "asked by phone"})

    assert response.status_code == 302 and response["Location"] == _page(cc)
    cc.refresh_from_db()
    assert (cc.status, cc.stop_reason) == ("canceled", "asked by phone")
    last = CampaignTransition.objects.filter(contact_campaign=cc).latest("id")
    assert (last.event, last.to_status, last.reason) == ("canceled", "canceled", "asked by phone")
    assert OutboundMessage.objects.get(contact_campaign=cc).status == "canceled"
    entry = AuditEntry.objects.get(action="contact_campaign.cancel")
    assert (entry.actor, entry.target_id) == (admin_user, str(cc.pk))


def test_a_switch_that_no_longer_applies_changes_nothing(admin_client, clock):
    cc = started_contact_campaign()

    response = admin_client.post(_switch(cc, "resume_contact_campaigns"))

    assert response.status_code == 302
    assert "not paused" in _messages(response)[0]
    assert not AuditEntry.objects.exists()


# --- many contact campaigns: bulk actions -----------------------------------------------------------------------

def test_bulk_pause_confirms_first_then_pauses_through_the_service_and_counts(admin_client, admin_user, clock):
    first = started_contact_campaign()
    second = started_contact_campaign(tenant=first.tenant, campaign=first.campaign)
    done = ContactCampaignFactory(tenant=first.tenant, campaign=first.campaign, status="completed")
    ids = [first.pk, second.pk, done.pk]

    confirm = admin_client.post(reverse(CC_CHANGELIST), {"action": "pause_contact_campaigns",
                                                         "_selected_action": ids})

    assert confirm.status_code == 200
    assert "1 of the selected row will be left as it is (not active)" in confirm.content.decode()
    assert set(ContactCampaign.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"active",
                                                                                                "completed"}

    response = admin_client.post(reverse(CC_CHANGELIST), {"action": "pause_contact_campaigns",
                                                          "_selected_action": ids, "post": "yes",
                                                          "reason": "wrong copy"})

    assert response.status_code == 302
    assert _messages(response) == ["Paused 2 contact campaigns. 1 skipped (not active)."]
    assert dict(ContactCampaign.objects.filter(pk__in=ids).values_list("id", "status")) == {
        first.pk: "paused", second.pk: "paused", done.pk: "completed"}
    paused = CampaignTransition.objects.filter(event="paused", reason="wrong copy")
    assert sorted(paused.values_list("contact_campaign_id", flat=True)) == [first.pk, second.pk]
    assert AuditEntry.objects.filter(action="contact_campaign.pause", actor=admin_user).count() == 2


def test_bulk_resume_and_cancel_go_through_the_services(admin_client, clock):
    first = started_contact_campaign()
    second = started_contact_campaign(tenant=first.tenant, campaign=first.campaign)
    ids = [first.pk, second.pk]
    admin_client.post(reverse(CC_CHANGELIST), {"action": "pause_contact_campaigns", "_selected_action": ids,
                                               "post": "yes"})

    resumed = admin_client.post(reverse(CC_CHANGELIST), {"action": "resume_contact_campaigns",
                                                         "_selected_action": [first.pk], "post": "yes"})
    canceled = admin_client.post(reverse(CC_CHANGELIST), {"action": "cancel_contact_campaigns",
                                                          "_selected_action": ids, "post": "yes"})

    assert _messages(resumed) == ["Resumed 1 contact campaign."]
    assert _messages(canceled) == ["Canceled 2 contact campaigns."]
    assert set(ContactCampaign.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"canceled"}
    events = list(CampaignTransition.objects.filter(contact_campaign=first).order_by("id")
                  .values_list("event", flat=True))
    assert events[-3:] == ["paused", "resumed", "canceled"]


def test_a_bulk_action_over_too_many_rows_is_refused_whole(admin_client, clock):
    from django.contrib import admin

    ccs = [started_contact_campaign() for _ in range(3)]
    model_admin = admin.site._registry[ContactCampaign]
    model_admin.max_bulk_switch = 2
    try:
        response = admin_client.post(reverse(CC_CHANGELIST), {"action": "pause_contact_campaigns",
                                                              "_selected_action": [cc.pk for cc in ccs],
                                                              "post": "yes"})
    finally:
        del model_admin.max_bulk_switch
    assert "Select at most 2 contact campaigns" in _messages(response)[0]
    assert set(ContactCampaign.objects.values_list("status", flat=True)) == {"active"}


# --- campaigns ---------------------------------------------------------------------------------------------------

def test_campaign_pause_resume_and_cancel_are_confirmed_bulk_actions_through_the_services(admin_client, admin_user,
                                                                                          clock):
    running = CampaignFactory(status="active")
    draft = CampaignFactory(status="draft")
    cc = started_contact_campaign(tenant=running.tenant, campaign=running)

    confirm = admin_client.post(reverse(CAMPAIGN_CHANGELIST), {"action": "pause_campaigns",
                                                               "_selected_action": [running.pk, draft.pk]})
    assert confirm.status_code == 200 and Campaign.objects.get(pk=running.pk).status == "active"

    paused = admin_client.post(reverse(CAMPAIGN_CHANGELIST), {"action": "pause_campaigns", "post": "yes",
                                                              "_selected_action": [running.pk, draft.pk]})
    assert _messages(paused) == ["Paused 1 campaign. 1 skipped (not active)."]
    resumed = admin_client.post(reverse(CAMPAIGN_CHANGELIST), {"action": "resume_campaigns", "post": "yes",
                                                               "_selected_action": [running.pk, draft.pk]})
    assert _messages(resumed) == ["Resumed 2 campaigns."]
    assert set(Campaign.objects.values_list("status", flat=True)) == {"active"}

    canceled = admin_client.post(reverse(CAMPAIGN_CHANGELIST), {"action": "cancel_campaigns", "post": "yes",
                                                                "_selected_action": [running.pk],
                                                                "reason": "wrong list"})
    assert _messages(canceled) == ["Canceled 1 campaign."]
    cc.refresh_from_db()
    assert (Campaign.objects.get(pk=running.pk).status, cc.status, cc.stop_reason) == ("canceled", "canceled",
                                                                                      "wrong list")
    assert list(AuditEntry.objects.filter(target_id=str(running.pk), target_type="Campaign")
                .order_by("id").values_list("action", flat=True)) == [
        "campaign.pause", "campaign.resume", "campaign.cancel"]


def test_the_campaign_page_has_the_buttons_and_its_status_is_not_a_form_field(admin_client, clock):
    campaign = CampaignFactory(status="active")

    body = admin_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk])).content.decode()

    assert _switch(campaign, "pause_campaigns") in body and _switch(campaign, "cancel_campaigns") in body
    assert 'name="status"' not in body
    response = admin_client.post(_switch(campaign, "pause_campaigns"), {"reason": "holiday"})
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "paused"
    assert AuditEntry.objects.get(action="campaign.pause").detail["reason"] == "holiday"


# --- who may --------------------------------------------------------------------------------------------------------

def test_non_staff_users_reach_neither_the_page_nor_the_switches(client, clock):
    cc = started_contact_campaign()
    client.force_login(UserFactory(is_staff=False))

    for response in (client.get(_page(cc)), client.get(_switch(cc, "pause_contact_campaigns")),
                     client.post(_switch(cc, "pause_contact_campaigns")),
                     client.post(reverse(CC_CHANGELIST), {"action": "pause_contact_campaigns",
                                                          "_selected_action": [cc.pk], "post": "yes"}),
                     client.post(reverse(CAMPAIGN_CHANGELIST), {"action": "cancel_campaigns",
                                                                "_selected_action": [cc.campaign_id], "post": "yes"})):
        assert response.status_code == 302 and "/login/" in response["Location"]
    cc.refresh_from_db()
    assert (cc.status, cc.campaign.status) == ("active", "active")


def test_staff_who_may_only_view_cannot_pause(client, clock):
    cc = started_contact_campaign()
    user = UserFactory(is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_contactcampaign"))
    client.force_login(user)

    page = client.get(_page(cc))
    bulk = client.post(reverse(CC_CHANGELIST), {"action": "pause_contact_campaigns", "_selected_action": [cc.pk],
                                                "post": "yes"})

    assert page.status_code == 200 and _switch(cc, "pause_contact_campaigns") not in page.content.decode()
    assert client.post(_switch(cc, "pause_contact_campaigns")).status_code == 403
    assert bulk.status_code in (200, 302)  # the action is not offered to this user
    cc.refresh_from_db()
    assert cc.status == "active"
