"""Ambiguous sends whose provider events arrived while the row was still `sending` are settled, whatever the order.

The events of an accepted mail can reach us before we know it was accepted: the read timed out, the worker
died, the database dropped. They are stored against the row while it is `sending`, so the webhook path has no
`unknown` row to settle; the move into `unknown` (and the stale-send sweep after it) must look at them.
"""
from __future__ import annotations

import datetime as dt

import orjson
import pytest

from campaigns.models import ContactCampaign
from messaging.delivery import outbound_messages_deliver, outbound_messages_recover_stale
from messaging.delivery.claiming import claim
from messaging.models import OutboundMessage, WebhookDelivery
from messaging.sendgrid import client as sg
from messaging.tests.factories import TEST_PLAN, enrolled_message, sendgrid_event, signed_headers
from messaging.webhooks.processing import webhook_deliveries_process
from outreach import clock
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=23) as handle:
        yield handle


def _events_arrive(client, sim, message: OutboundMessage, *kinds: str) -> None:
    """SendGrid posts events for the mail it accepted, and they are processed (stored against the row)."""
    [mail] = sim.messages()
    events = [{**sendgrid_event(message, kind), "sg_message_id": mail["recipients"][0]["sg_message_id"]}
              for kind in kinds]
    body = orjson.dumps(events)
    response = client.post("/webhooks/sendgrid/events", data=body, content_type="application/json",
                           **signed_headers(sim.private_key, body))
    assert response.status_code < 300
    ids = list(WebhookDelivery.objects.filter(status="pending").values_list("id", flat=True))
    assert webhook_deliveries_process(delivery_ids=ids).processed == ids


def _assert_settled_once(sim, message: OutboundMessage) -> None:
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert message.sent_at is not None and message.provider_message_id == sim.messages()[0]["x_message_id"]
    cc = ContactCampaign.objects.get(id=message.contact_campaign_id)
    assert cc.node_sent_at is not None  # the engine heard `sent`: the node's timers are armed
    assert len(sim.messages()) == 1


def test_events_stored_while_sending_settle_the_row_when_the_read_then_times_out(client, sim, settings,
                                                                                 monkeypatch):
    settings.SENDGRID_REQUEST_TIMEOUT_SECONDS = 0.5
    message = enrolled_message(plan=TEST_PLAN)
    sim.set_faults("slow", count=1, delay_seconds=1.5)
    real_send = sg.mail_send

    def send(*, body, timeout=None):
        try:
            return real_send(body=body, timeout=timeout)
        finally:
            # SendGrid accepted it and reported on it before our read gave up.
            _events_arrive(client, sim, message, "processed", "delivered")

    monkeypatch.setattr(sg, "mail_send", send)
    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    assert report.sent == [message.id] and report.unknown == []
    _assert_settled_once(sim, message)


def test_events_stored_while_sending_settle_the_row_when_the_worker_died(client, sim):
    message = enrolled_message(plan=TEST_PLAN)
    long_ago = clock.now() - dt.timedelta(hours=1)
    claim([message.id], long_ago)
    OutboundMessage.objects.filter(id=message.id).update(send_started_at=long_ago, message_id_header="<x@y.example>")
    sg.mail_send(body={"personalizations": [{"to": [{"email": message.to_address}]}],
                       "from": {"email": "rep@seller.example"}, "subject": "s",
                       "content": [{"type": "text/plain", "value": "t"}]})
    _events_arrive(client, sim, message, "delivered")  # the worker is dead; the row is still `sending`

    recovered = outbound_messages_recover_stale()

    assert recovered["unknown"] == [message.id] and recovered["settled"] == [message.id]
    _assert_settled_once(sim, message)


def test_sweep_settles_an_unknown_row_whose_events_committed_alongside_the_move(client, sim):
    message = enrolled_message(plan=TEST_PLAN)
    sim.set_faults("drop", count=1)
    real = OutboundMessage.objects.filter(id=message.id)
    outbound_messages_deliver(outbound_message_ids=[message.id])
    assert real.get().status == OutboundMessage.Status.UNKNOWN
    # The events' transaction read the row while it was still `sending` and committed after the move.
    real.update(status=OutboundMessage.Status.SENDING)
    _events_arrive(client, sim, message, "delivered")
    real.update(status=OutboundMessage.Status.UNKNOWN, updated_at=clock.now())

    assert outbound_messages_recover_stale()["settled"] == [message.id]
    _assert_settled_once(sim, message)
    assert outbound_messages_recover_stale()["settled"] == []
