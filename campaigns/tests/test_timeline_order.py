"""The enrolment timeline in the order things happened: a reply at the time its mail reached us (the
processing time shown apart), a provider event never before the send it reports, no-op transitions folded
into the event that caused them, and long summaries cut."""
from __future__ import annotations

import datetime as dt

import pytest

from campaigns.api.selectors import SUMMARY_CHARS, contact_campaign_timelines
from campaigns.tests.factories import CampaignTransitionFactory, ContactCampaignFactory
from messaging.models import InboundMessage, WebhookDelivery
from messaging.tests.factories import (
    InboundMessageFactory,
    MessageEventFactory,
    OutboundMessageFactory,
    WebhookDeliveryFactory,
)

T = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def enrolment(tenant):
    return ContactCampaignFactory(tenant=tenant)


def _timeline(enrolment):
    return contact_campaign_timelines(contact_campaign_ids=[enrolment.pk])[enrolment.pk]


@pytest.mark.django_db
def test_a_delivered_event_stamped_before_the_send_still_comes_after_it(tenant, enrolment):
    message = OutboundMessageFactory(tenant=tenant, contact_campaign=enrolment, status="sent",
                                     sent_at=T + dt.timedelta(milliseconds=700))
    MessageEventFactory(tenant=tenant, outbound_message=message, event_type="delivered", occurred_at=T)
    kinds = [(i["kind"], i["event"]) for i in _timeline(enrolment)]
    assert kinds == [("message", "sent"), ("event", "delivered")]
    assert _timeline(enrolment)[1]["at"] == T  # the provider's time is still shown as it was


@pytest.mark.django_db
def test_a_reply_is_placed_when_it_arrived_and_its_processing_time_is_shown_apart(tenant, enrolment):
    message = OutboundMessageFactory(tenant=tenant, contact_campaign=enrolment, status="sent", sent_at=T)
    delivery = WebhookDeliveryFactory(kind=WebhookDelivery.Kind.SENDGRID_INBOUND)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(received_at=T + dt.timedelta(hours=1))
    reply = InboundMessageFactory(tenant=tenant, outbound_message=message, webhook_delivery=delivery)
    InboundMessage.objects.filter(pk=reply.pk).update(received_at=T + dt.timedelta(hours=1, minutes=11))
    CampaignTransitionFactory(tenant=tenant, contact_campaign=enrolment, from_node_id="email_intro",
                              to_node_id="wait_reply", event="reply", occurred_at=T + dt.timedelta(hours=1))
    items = _timeline(enrolment)
    [item] = [i for i in items if i["kind"] == "reply"]
    assert item["at"] == T + dt.timedelta(hours=1)
    assert item["received_at"] == T + dt.timedelta(hours=1, minutes=11)
    assert [i["kind"] for i in items] == ["message", "reply", "transition"]


@pytest.mark.django_db
def test_a_noop_transition_is_folded_into_the_event_that_caused_it(tenant, enrolment):
    message = OutboundMessageFactory(tenant=tenant, contact_campaign=enrolment, status="sent", sent_at=T,
                                     node_id="email_intro")
    MessageEventFactory(tenant=tenant, outbound_message=message, event_type="open",
                        occurred_at=T + dt.timedelta(minutes=5))
    CampaignTransitionFactory(tenant=tenant, contact_campaign=enrolment, from_node_id="email_intro",
                              to_node_id="email_intro", event="open", from_status="active", to_status="active",
                              occurred_at=T + dt.timedelta(minutes=5))
    items = _timeline(enrolment)
    assert [i["kind"] for i in items] == ["message", "event"]
    assert items[1]["data"]["noop_transitions"] == ["open"]


@pytest.mark.django_db
def test_a_long_subject_is_cut_in_the_summary_and_kept_whole_in_data(tenant, enrolment):
    OutboundMessageFactory(tenant=tenant, contact_campaign=enrolment, subject="x" * 290)
    [item] = _timeline(enrolment)
    assert len(item["summary"]) == SUMMARY_CHARS and item["summary"].endswith("…")
    assert item["data"]["subject"] == "x" * 290
