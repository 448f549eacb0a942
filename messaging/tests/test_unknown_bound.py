"""An `unknown` send no provider event settles is closed as failed after SENDGRID_UNKNOWN_SETTLE_HOURS.

A worker killed after recording the request's start but before the request left leaves its row `unknown`:
SendGrid never heard of the mail, so no event comes and the enrolment would stay active forever. Past the
bound (SendGrid retries webhooks for 72 h) the row is failed, never resent, and the enrolment ends as for a
failed send; an event that proves acceptance still settles the row as sent, before or after the bound.
"""
from __future__ import annotations

import datetime as dt

import orjson
import pytest

from campaigns.models import ContactCampaign
from messaging.delivery import outbound_messages_deliver, outbound_messages_recover_stale
from messaging.delivery.claiming import claim
from messaging.models import OutboundMessage, WebhookDelivery
from messaging.tests.factories import TEST_PLAN, enrolled_message, sendgrid_event, signed_headers
from messaging.webhooks.processing import webhook_deliveries_process
from outreach import clock
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=29) as handle:
        yield handle


def _killed_before_the_request_left(*, unknown_for: dt.timedelta) -> OutboundMessage:
    """A worker recorded the request's start and died before sending; lease recovery made it `unknown`,
    `unknown_for` ago (clock time)."""
    message = enrolled_message(plan=TEST_PLAN)
    long_ago = clock.now() - dt.timedelta(hours=1)
    claim([message.id], long_ago)
    OutboundMessage.objects.filter(id=message.id).update(send_started_at=long_ago, message_id_header="<x@y.example>")
    assert outbound_messages_recover_stale()["unknown"] == [message.id]
    OutboundMessage.objects.filter(id=message.id).update(updated_at=clock.now() - unknown_for)
    return message


def _events_arrive(client, sim, message: OutboundMessage, *kinds: str) -> None:
    """SendGrid posts events for the message (linked by its custom args) and they are processed."""
    body = orjson.dumps([sendgrid_event(message, kind) for kind in kinds])
    response = client.post("/webhooks/sendgrid/events", data=body, content_type="application/json",
                           **signed_headers(sim.private_key, body))
    assert response.status_code < 300
    ids = list(WebhookDelivery.objects.filter(status="pending").values_list("id", flat=True))
    assert webhook_deliveries_process(delivery_ids=ids).processed == ids


def _bound(settings) -> dt.timedelta:
    return dt.timedelta(hours=settings.SENDGRID_UNKNOWN_SETTLE_HOURS)


def test_unknown_past_the_bound_with_no_event_is_failed_never_resent_and_its_enrolment_ends(sim, settings):
    message = _killed_before_the_request_left(unknown_for=_bound(settings) + dt.timedelta(hours=1))

    recovered = outbound_messages_recover_stale()

    assert recovered["unheard_failed"] == [message.id] and recovered["settled"] == []
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED
    assert message.status_reason == "unknown: no provider event within 73 h; never resent"
    cc = ContactCampaign.objects.get(id=message.contact_campaign_id)
    assert cc.status == ContactCampaign.Status.FAILED  # the engine heard `send_failed`
    assert outbound_messages_deliver(outbound_message_ids=[message.id]).not_claimed == [message.id]
    assert outbound_messages_recover_stale()["unheard_failed"] == []
    assert sim.messages() == []  # never resent


def test_unknown_past_the_bound_with_a_stored_event_is_settled_as_sent(client, sim, settings):
    message = _killed_before_the_request_left(unknown_for=_bound(settings) + dt.timedelta(hours=1))
    # Its event was stored while the row was still `sending`, long before the sweep's recent window.
    OutboundMessage.objects.filter(id=message.id).update(status=OutboundMessage.Status.SENDING)
    _events_arrive(client, sim, message, "delivered")
    OutboundMessage.objects.filter(id=message.id).update(status=OutboundMessage.Status.UNKNOWN,
                                                         updated_at=clock.now() - _bound(settings) * 2)

    recovered = outbound_messages_recover_stale()

    assert recovered["settled"] == [message.id] and recovered["unheard_failed"] == []
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT and message.sent_at is not None
    assert ContactCampaign.objects.get(id=message.contact_campaign_id).node_sent_at is not None


def test_unknown_within_the_bound_is_left_alone(sim, settings):
    message = _killed_before_the_request_left(unknown_for=_bound(settings) - dt.timedelta(hours=1))

    recovered = outbound_messages_recover_stale()

    assert recovered["unheard_failed"] == [] and recovered["settled"] == []
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.UNKNOWN
    assert ContactCampaign.objects.get(id=message.contact_campaign_id).status == ContactCampaign.Status.ACTIVE


def test_an_acceptance_event_after_the_bound_stores_and_settles_the_failed_row_as_sent(client, sim, settings):
    message = _killed_before_the_request_left(unknown_for=_bound(settings) + dt.timedelta(hours=1))
    assert outbound_messages_recover_stale()["unheard_failed"] == [message.id]

    _events_arrive(client, sim, message, "delivered")

    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT and message.delivery_status == "delivered"
    assert message.events.filter(event_type="delivered").count() == 1
    assert outbound_messages_recover_stale()["unheard_failed"] == []
    assert sim.messages() == []  # settling is bookkeeping, nothing is sent
