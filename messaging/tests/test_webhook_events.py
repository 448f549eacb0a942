"""The signed Event Webhook: verify, store raw, acknowledge; then normalise, deduplicate, feed the engine."""
from __future__ import annotations

import datetime as dt
import logging
import time
import uuid

import orjson
import pytest
from django.db.models import F

from campaigns.models import CampaignTransition, ContactCampaign
from messaging.delivery import outbound_messages_deliver
from messaging.models import (
    CommunicationSuppression,
    ContactUnsubscribe,
    MessageEvent,
    OutboundMessage,
    WebhookDelivery,
)
from messaging.tests.factories import (
    TEST_PLAN,
    WebhookDeliveryFactory,
    enrolled_message,
    sendgrid_event,
    signed_headers,
)
from messaging.webhooks.processing import webhook_deliveries_due_for_retry, webhook_deliveries_process
from simulators.sendgrid.server import start_simulator
from simulators.sendgrid.signing import generate_key_pair
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db





URL = "/webhooks/sendgrid/events"
HUMAN_UA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari/605"


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=5) as handle:
        yield handle


@pytest.fixture
def sent(sim, db):
    """A message really sent through the simulator (so it has its X-Message-Id)."""
    message = enrolled_message(email="dana@acme.example", plan=TEST_PLAN)
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    return message


def post(client, key, events, *, timestamp=None, raw: bytes | None = None):
    body = raw if raw is not None else orjson.dumps(events)
    return client.post(URL, data=body, content_type="application/json",
                       **signed_headers(key, body, timestamp=timestamp))


def process_all() -> None:
    ids = list(WebhookDelivery.objects.filter(status__in=["pending", "failed"]).values_list("id", flat=True))
    webhook_deliveries_process(delivery_ids=ids)


def transitions(message: OutboundMessage, event: str):
    return CampaignTransition.objects.filter(contact_campaign_id=message.contact_campaign_id, event=event)


def moves(message: OutboundMessage, event: str):
    """Transitions that moved the contact campaign to another node (the engine also records non-moves)."""
    return transitions(message, event).exclude(to_node_id=F("from_node_id"))


# --- the endpoint ----------------------------------------------------------------------------------

def test_full_signed_batch_is_stored_raw_then_normalised_linked_and_fed_to_the_engine(client, sim, sent):
    now = int(time.time())
    events = [sendgrid_event(sent, "processed", timestamp=now),
              sendgrid_event(sent, "delivered", timestamp=now + 2),
              sendgrid_event(sent, "open", timestamp=now + 600, useragent=HUMAN_UA, sg_machine_open=False)]
    body = orjson.dumps(events)

    response = post(client, sim.private_key, events)

    assert response.status_code == 200 and response.json() == {"status": "accepted", "events": 3}
    [delivery] = WebhookDelivery.objects.all()
    assert bytes(delivery.body) == body and delivery.signature_valid and delivery.status == "pending"
    assert MessageEvent.objects.count() == 0  # acknowledged before any processing

    webhook_deliveries_process(delivery_ids=[delivery.id])

    delivery.refresh_from_db()
    assert delivery.status == "processed"
    stored = MessageEvent.objects.filter(outbound_message=sent).order_by("occurred_at")
    assert [e.event_type for e in stored] == ["processed", "delivered", "open"]
    assert all(e.tenant_id == sent.tenant_id and e.webhook_delivery_id == delivery.id for e in stored)
    sent.refresh_from_db()
    assert sent.delivery_status == "delivered"
    assert transitions(sent, "open").count() == 1
    assert OutboundMessage.objects.filter(contact_campaign_id=sent.contact_campaign_id,
                                          node_id="email_opened").exists()


def test_byte_identical_batch_again_is_acknowledged_and_ignored(client, sim, sent):
    events = [sendgrid_event(sent, "delivered")]
    body = orjson.dumps(events)
    headers = signed_headers(sim.private_key, body)
    first = client.post(URL, data=body, content_type="application/json", **headers)
    process_all()
    second = client.post(URL, data=body, content_type="application/json", **headers)

    assert first.status_code == second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert WebhookDelivery.objects.count() == 1 and MessageEvent.objects.count() == 1


def test_same_events_with_changed_event_ids_create_no_duplicates_and_no_second_transition(client, sim, sent):
    now = int(time.time())
    events = [sendgrid_event(sent, "delivered", timestamp=now),
              sendgrid_event(sent, "open", timestamp=now + 900, useragent=HUMAN_UA)]
    post(client, sim.private_key, events)
    process_all()
    assert MessageEvent.objects.count() == 2 and transitions(sent, "open").count() == 1

    retried = [{**e, "sg_event_id": uuid.uuid4().hex} for e in events]
    response = post(client, sim.private_key, retried)
    process_all()

    assert response.status_code == 200 and WebhookDelivery.objects.count() == 2
    assert WebhookDelivery.objects.filter(status="processed").count() == 2
    assert MessageEvent.objects.count() == 2
    assert transitions(sent, "open").count() == 1


def test_duplicates_inside_one_batch_are_stored_once(client, sim, sent):
    event = sendgrid_event(sent, "delivered")
    post(client, sim.private_key, [event, event, {**event, "sg_event_id": "other"}])
    process_all()
    assert MessageEvent.objects.count() == 1


@pytest.mark.parametrize("forgery", ["other_key", "tampered_body", "no_signature", "garbage_signature"])
def test_forged_or_missing_signature_is_403_and_stores_nothing(client, sim, sent, forgery):
    events = [sendgrid_event(sent, "delivered")]
    body = orjson.dumps(events)
    if forgery == "other_key":
        headers = signed_headers(generate_key_pair()[0], body)
    elif forgery == "tampered_body":
        headers = signed_headers(sim.private_key, body)
        body = orjson.dumps([sendgrid_event(sent, "click", url="https://evil.example")])
    elif forgery == "no_signature":
        headers = {}
    else:
        headers = {**signed_headers(sim.private_key, body), "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": "bm9wZQ=="}

    response = client.post(URL, data=body, content_type="application/json", **headers)

    assert response.status_code == 403
    assert WebhookDelivery.objects.count() == 0 and MessageEvent.objects.count() == 0


@pytest.mark.parametrize("age", [601, -3600])
def test_stale_or_future_timestamp_is_403(client, sim, sent, age):
    response = post(client, sim.private_key, [sendgrid_event(sent, "delivered")], timestamp=int(time.time()) - age)
    assert response.status_code == 403 and WebhookDelivery.objects.count() == 0


def test_replay_window_is_configurable(client, sim, sent, settings):
    settings.SENDGRID_WEBHOOK_MAX_AGE_SECONDS = 3600
    response = post(client, sim.private_key, [sendgrid_event(sent, "delivered")], timestamp=int(time.time()) - 1800)
    assert response.status_code == 200


def test_unconfigured_public_key_refuses_everything(client, sim, sent, settings):
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = ""
    assert post(client, sim.private_key, [sendgrid_event(sent, "delivered")]).status_code == 403


def _nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


@pytest.mark.parametrize("raw, reason", [
    (b'[{"event": "delivered", "timestamp": 1', "malformed JSON"),
    (b'{"event": "delivered"}', "JSON array"),
    (_nested(1000), "nested deeper"),
    (_nested(5000), "malformed JSON"),
    (b'[{"email": "a@b.example", "event": "open", "timestamp": 1700000000, "x": ' + _nested(1000) + b"}]",
     "nested deeper"),
])
def test_a_body_that_is_no_event_batch_or_nests_deep_is_400_with_a_reason_and_nothing_stored(
    client, sim, raw, reason,
):
    response = post(client, sim.private_key, None, raw=raw)
    assert response.status_code == 400 and reason in response.json()["detail"]
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize("bad, reason", [
    (1, "not an object"),
    ({"email": "a@acme.example", "timestamp": 1700000000}, "missing 'event'"),
    ({"email": "a@acme.example", "event": "open", "timestamp": "soon"}, "'timestamp'"),
    ({"event": "open", "timestamp": 1700000000}, "missing 'email'"),
    ({"email": 5, "event": "open", "timestamp": 1700000000}, "missing 'email'"),
    ({"email": "a@acme.example", "event": "open", "timestamp": 1700000000, "url": ["x"]}, "'url' must be a string"),
    ({"email": "a\u0000@acme.example", "event": "open", "timestamp": 1700000000}, "'email' holds a NUL"),
    ({"email": "a@acme.example", "event": "open", "timestamp": 1700000000, "plan": {"n": "x\u0000"}},
     "'plan' holds a NUL"),
])
def test_one_bad_event_is_set_aside_with_its_reason_and_the_rest_of_its_batch_is_stored(
    client, sim, sent, bad, reason,
):
    good = [sendgrid_event(sent, "delivered"), sendgrid_event(sent, "open", useragent=HUMAN_UA)]
    body = orjson.dumps([good[0], bad, good[1]])

    response = post(client, sim.private_key, None, raw=body)
    process_all()

    assert response.status_code == 200  # SendGrid must not retry (or drop) the valid events
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "processed", delivery.error
    [rejected] = delivery.rejected_events
    assert rejected["index"] == 1 and reason in rejected["reason"] and rejected["event"]
    assert sorted(MessageEvent.objects.values_list("event_type", flat=True)) == ["delivered", "open"]
    assert transitions(sent, "open").count() == 1


def test_a_stored_delivery_that_failed_on_a_bad_event_is_processed_on_retry(client, sim, sent):
    good = orjson.dumps(sendgrid_event(sent, "delivered"))
    body = rb'[{"email": "x@acme.example", "event": "open", "timestamp": 1700000000, "ip": "1\u0000"}, ' + good + b"]"
    delivery = WebhookDeliveryFactory(body=body, status="failed", attempts=3, error="DataError: NUL")

    report = webhook_deliveries_process(delivery_ids=[delivery.id])

    delivery.refresh_from_db()
    assert report.processed == [delivery.id] and report.events.rejected == 1
    assert delivery.status == "processed" and delivery.error == ""
    assert [r["reason"] for r in delivery.rejected_events] == ["'ip' holds a NUL character"]
    assert MessageEvent.objects.get().event_type == "delivered"


def test_a_millisecond_timestamp_is_read_as_milliseconds(client, sim, sent):
    seconds = int(time.time()) - 60
    post(client, sim.private_key, [sendgrid_event(sent, "delivered", timestamp=seconds * 1000 + 250)])
    process_all()
    stored = MessageEvent.objects.get()
    assert stored.occurred_at == dt.datetime.fromtimestamp(seconds + 0.25, dt.UTC)
    assert WebhookDelivery.objects.get().rejected_events == []


# --- processing ------------------------------------------------------------------------------------

def test_machine_open_is_stored_but_does_not_move_the_contact_campaign(client, sim, sent):
    now = int(time.time())
    post(client, sim.private_key, [
        sendgrid_event(sent, "delivered", timestamp=now),
        sendgrid_event(sent, "open", timestamp=now + 30, useragent="Mozilla/5.0", sg_machine_open=True),
    ])
    process_all()

    machine_open = MessageEvent.objects.get(event_type="open")
    assert machine_open.is_machine
    assert not moves(sent, "open").exists()
    cc = ContactCampaign.objects.get(id=sent.contact_campaign_id)
    assert cc.current_node_id == "email_intro"

    post(client, sim.private_key, [sendgrid_event(sent, "open", timestamp=now + 4000, useragent=HUMAN_UA)])
    process_all()
    cc.refresh_from_db()
    assert moves(sent, "open").count() == 1 and cc.current_node_id == "email_opened"


def test_link_scanner_clicks_are_marked_machine(client, sim, sent):
    now = int(time.time())
    post(client, sim.private_key, [
        sendgrid_event(sent, "delivered", timestamp=now),
        sendgrid_event(sent, "click", timestamp=now + 3, url="https://seller.example/demo", useragent=HUMAN_UA),
        sendgrid_event(sent, "click", timestamp=now + 7200, url="https://seller.example/a",
                       useragent="Mimecast URL Protect (link scanner)"),
    ])
    process_all()
    assert list(MessageEvent.objects.filter(event_type="click").values_list("is_machine", flat=True)) == [True, True]
    assert not moves(sent, "click").exists()

    post(client, sim.private_key, [sendgrid_event(sent, "click", timestamp=now + 7300,
                                                  url="https://seller.example/demo", useragent=HUMAN_UA)])
    process_all()
    assert MessageEvent.objects.filter(event_type="click", is_machine=False).count() == 1


def test_hard_bounce_spam_report_and_unsubscribe_go_to_policy_at_once(client, sim):
    bounced, spammer, leaver = (enrolled_message(email=f"{n}@acme.example", plan=TEST_PLAN) for n in ("b", "s", "u"))
    outbound_messages_deliver(outbound_message_ids=[bounced.id, spammer.id, leaver.id])
    for m in (bounced, spammer, leaver):
        m.refresh_from_db()
    post(client, sim.private_key, [
        sendgrid_event(bounced, "bounce", type="bounce", reason="550 5.1.1 no such user"),
        sendgrid_event(spammer, "spamreport"),
        sendgrid_event(leaver, "unsubscribe"),
    ])
    process_all()

    hard = CommunicationSuppression.objects.get(value="b@acme.example")
    assert hard.reason == "hard_bounce" and hard.expires_at is None
    assert CommunicationSuppression.objects.get(value="s@acme.example").reason == "spam_report"
    assert ContactUnsubscribe.objects.get(channel_value="u@acme.example").source == "sendgrid_webhook"
    bounced.refresh_from_db()
    assert bounced.delivery_status == "bounced"
    for m in (bounced, spammer, leaver):
        assert ContactCampaign.objects.get(id=m.contact_campaign_id).status == "stopped"
    assert MessageEvent.objects.get(event_type="bounce").bounce_type == "hard"


def test_repeated_soft_bounces_suppress_the_address_for_a_while(client, sim, sent):
    now = int(time.time())
    post(client, sim.private_key, [sendgrid_event(sent, "bounce", type="blocked", reason="421 try later",
                                                  timestamp=now - 3600 * k) for k in (0, 1)])
    process_all()
    assert not CommunicationSuppression.objects.exists()
    post(client, sim.private_key, [sendgrid_event(sent, "bounce", type="blocked", reason="421 try later",
                                                  timestamp=now - 7200)])
    process_all()
    row = CommunicationSuppression.objects.get(value=sent.to_address)
    assert row.reason == "soft_bounce"
    assert dt.timedelta(hours=71) < row.expires_at - row.created_at < dt.timedelta(hours=73)
    assert ContactCampaign.objects.get(id=sent.contact_campaign_id).status == "active"  # soft does not stop


def test_a_soft_bounce_suppression_lasts_suppression_soft_bounce_hours(client, sim, sent, settings):
    settings.SUPPRESSION_SOFT_BOUNCE_HOURS = 5
    now = int(time.time())
    post(client, sim.private_key, [sendgrid_event(sent, "bounce", type="blocked", reason="421 try later",
                                                  timestamp=now - 600 * k) for k in (0, 1, 2)])
    process_all()

    row = CommunicationSuppression.objects.get(value=sent.to_address)
    assert row.reason == "soft_bounce"
    assert dt.timedelta(hours=4, minutes=59) < row.expires_at - row.created_at < dt.timedelta(hours=5, minutes=1)


def test_async_bounce_without_message_id_is_linked_to_the_address_latest_message(client, sim, sent):
    event = sendgrid_event(None, "bounce", email=sent.to_address.upper(), type="bounce", reason="550 gone")
    post(client, sim.private_key, [event])
    process_all()
    stored = MessageEvent.objects.get(event_type="bounce")
    assert stored.outbound_message_id == sent.id and stored.tenant_id == sent.tenant_id
    assert CommunicationSuppression.objects.filter(value=sent.to_address, reason="hard_bounce").exists()


def test_an_event_for_an_address_the_validator_refuses_does_not_lose_the_rest_of_its_batch(client, sim, caplog):
    good = enrolled_message(email="dana@acme.example", plan=TEST_PLAN)
    other = enrolled_message(email="lee@acme.example", plan=TEST_PLAN)
    outbound_messages_deliver(outbound_message_ids=[good.id, other.id])
    good.refresh_from_db()
    # A recipient as the provider reports it, which Django's validator refuses (events link only to a message
    # whose recipient agrees, so the stored one says the same).
    OutboundMessage.objects.filter(id=other.id).update(to_address="lee..x@acme.example")
    other.refresh_from_db()
    now = int(time.time())
    post(client, sim.private_key, [
        sendgrid_event(good, "delivered", timestamp=now),
        sendgrid_event(good, "click", timestamp=now + 600, url="https://seller.example/demo", useragent=HUMAN_UA),
        # The endpoint accepts any non-empty email string; Django's validator (behind every opt-out and
        # suppression key) refuses this one. Its policy action is skipped, the batch is not.
        sendgrid_event(other, "unsubscribe", timestamp=now, email="lee..x@acme.example"),
        sendgrid_event(other, "bounce", timestamp=now + 1, email="lee..x@acme.example", type="bounce"),
    ])

    with caplog.at_level(logging.WARNING, logger="messaging.webhooks.processing"):
        process_all()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "processed", delivery.error
    assert MessageEvent.objects.filter(outbound_message=good).count() == 2
    assert MessageEvent.objects.filter(outbound_message=other).count() == 2
    assert moves(good, "click").count() == 1
    assert not ContactUnsubscribe.objects.exists() and not CommunicationSuppression.objects.exists()
    assert "lee..x@acme.example" in caplog.text and "not a valid address" in caplog.text


def test_async_bounce_for_an_address_two_tenants_mailed_is_kept_unlinked_and_suppresses_it_in_both(client, sim):
    first = enrolled_message(email="pat@acme.example", plan=TEST_PLAN)
    second = enrolled_message(email="pat@acme.example", plan=TEST_PLAN)  # another tenant, mailed later
    assert first.tenant_id != second.tenant_id
    outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    post(client, sim.private_key, [sendgrid_event(None, "bounce", email="pat@acme.example", type="bounce",
                                                  reason="550 5.1.1 no such user")])
    process_all()

    stored = MessageEvent.objects.get(event_type="bounce")
    assert stored.outbound_message_id is None and stored.tenant_id is None  # not given to one tenant by a guess
    assert not transitions(first, "bounce").exists() and not transitions(second, "bounce").exists()
    # A hard bounce is a fact about the mailbox: every tenant that mailed it stops mailing it.
    suppressed = CommunicationSuppression.objects.filter(value="pat@acme.example", reason="hard_bounce")
    assert {row.tenant_id for row in suppressed} == {first.tenant_id, second.tenant_id}


def test_async_bounce_ignores_a_tenant_that_mailed_the_address_long_ago(client, sim):
    old = enrolled_message(email="pat@acme.example", plan=TEST_PLAN)
    recent = enrolled_message(email="pat@acme.example", plan=TEST_PLAN)
    outbound_messages_deliver(outbound_message_ids=[old.id, recent.id])
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
    OutboundMessage.objects.filter(id=old.id).update(created_at=long_ago, sent_at=long_ago)

    post(client, sim.private_key, [sendgrid_event(None, "bounce", email="pat@acme.example", type="bounce")])
    process_all()

    stored = MessageEvent.objects.get(event_type="bounce")
    assert stored.outbound_message_id == recent.id and stored.tenant_id == recent.tenant_id
    assert list(CommunicationSuppression.objects.values_list("tenant_id", flat=True)) == [recent.tenant_id]


@pytest.mark.parametrize("event_type", ["spamreport", "unsubscribe"])
def test_idless_opt_out_for_an_address_last_mailed_beyond_the_window_still_blocks_it_in_that_tenant(
        client, sim, event_type):
    old = enrolled_message(email="pat@acme.example", plan=TEST_PLAN)
    other = enrolled_message(email="pat@acme.example", plan=TEST_PLAN)  # another tenant, also long ago
    never = enrolled_message(email="pat@acme.example", plan=TEST_PLAN)  # a tenant that never sent it
    assert len({old.tenant_id, other.tenant_id, never.tenant_id}) == 3
    outbound_messages_deliver(outbound_message_ids=[old.id, other.id])
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    OutboundMessage.objects.filter(id__in=[old.id, other.id]).update(created_at=long_ago, sent_at=long_ago)

    post(client, sim.private_key, [sendgrid_event(None, event_type, email="pat@acme.example")])
    process_all()

    # Too old to credit the event to a message (engine, history) ...
    stored = MessageEvent.objects.get(event_type=event_type)
    assert stored.outbound_message_id is None and stored.tenant_id is None
    # ... but an opt-out or a complaint must never be lost: every tenant that ever mailed it stops.
    if event_type == "unsubscribe":
        blocked = ContactUnsubscribe.objects.filter(channel_value="pat@acme.example")
    else:
        blocked = CommunicationSuppression.objects.filter(value="pat@acme.example", reason="spam_report")
    assert {row.tenant_id for row in blocked} == {old.tenant_id, other.tenant_id}
    assert never.tenant_id not in {row.tenant_id for row in blocked}


@pytest.mark.parametrize("change, refused", [
    ({"tenant_id": "999999"}, "tenant 999999 named"),
    ({"tenant_id": None}, "without its tenant"),
    ({"email": "someone-else@acme.example"}, "recipient someone-else@acme.example"),
    ({"sg_message_id": "another-installations-id.filter0001.1.0"}, "sg_message_id another-installations-id"),
])
def test_custom_args_that_tenant_recipient_or_message_id_contradict_link_nothing_and_move_nothing(
    client, sim, sent, change, refused,
):
    """A second installation sharing the account (or the demo's simulator) numbers messages from 1 too."""
    event = {k: v for k, v in {**sendgrid_event(sent, "open", useragent=HUMAN_UA), **change}.items() if v is not None}

    post(client, sim.private_key, [event])
    process_all()

    stored = MessageEvent.objects.get()
    assert stored.outbound_message_id is None and stored.tenant_id is None
    assert refused in stored.raw["link_refused"]
    assert not transitions(sent, "open").exists()
    assert WebhookDelivery.objects.get().status == "processed"


def test_an_unsubscribe_whose_custom_args_are_contradicted_opts_no_one_out(client, sim, sent):
    post(client, sim.private_key, [sendgrid_event(sent, "unsubscribe", sg_message_id="other.filter0001.1.0")])
    process_all()
    assert not ContactUnsubscribe.objects.exists()
    assert ContactCampaign.objects.get(id=sent.contact_campaign_id).status != "stopped"


def test_event_for_no_known_message_is_kept_with_no_tenant(client, sim, db):
    post(client, sim.private_key, [sendgrid_event(None, "delivered", email="stranger@else.example",
                                                  sg_message_id="nope.filter.1")])
    process_all()
    stored = MessageEvent.objects.get()
    assert stored.outbound_message_id is None and stored.tenant_id is None
    assert WebhookDelivery.objects.get().status == "processed"


def test_unknown_send_is_settled_as_sent_by_a_later_event_exactly_once(client, sim, db):
    message = enrolled_message(plan=TEST_PLAN)
    sim.set_faults("drop", count=1)
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == "unknown" and message.provider_message_id is None
    [mail] = sim.messages()
    ts = int(time.time())
    delivered = {**sendgrid_event(message, "delivered", timestamp=ts),
                 "sg_message_id": mail["recipients"][0]["sg_message_id"]}

    post(client, sim.private_key, [delivered])
    process_all()

    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT
    assert message.sent_at == dt.datetime.fromtimestamp(ts, dt.UTC)
    assert message.provider_message_id == mail["x_message_id"]
    assert transitions(message, "sent").count() <= 1
    cc = ContactCampaign.objects.get(id=message.contact_campaign_id)
    assert cc.node_sent_at is not None
    sent_transitions = CampaignTransition.objects.filter(contact_campaign=cc).count()
    post(client, sim.private_key, [{**delivered, "sg_event_id": "again"}, sendgrid_event(message, "processed")])
    process_all()
    assert CampaignTransition.objects.filter(contact_campaign=cc).count() == sent_transitions


def test_failed_processing_leaves_the_delivery_failed_and_a_retry_stores_everything(client, sim, sent,
                                                                                    monkeypatch):
    import campaigns.interface

    real = campaigns.interface.contact_campaigns_handle_events

    def broken(**kwargs):
        raise RuntimeError("engine down")

    monkeypatch.setattr(campaigns.interface, "contact_campaigns_handle_events", broken)
    post(client, sim.private_key, [sendgrid_event(sent, "delivered"),
                                   sendgrid_event(sent, "open", useragent=HUMAN_UA)])
    process_all()

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed" and "engine down" in delivery.error and delivery.attempts == 1
    assert MessageEvent.objects.count() == 0  # nothing half-stored

    monkeypatch.setattr(campaigns.interface, "contact_campaigns_handle_events", real)
    WebhookDelivery.objects.update(received_at=delivery.received_at - dt.timedelta(minutes=5))
    assert webhook_deliveries_due_for_retry() == [delivery.id]
    webhook_deliveries_process(delivery_ids=webhook_deliveries_due_for_retry())

    delivery.refresh_from_db()
    assert delivery.status == "processed" and MessageEvent.objects.count() == 2
    assert transitions(sent, "open").count() == 1


def test_a_poison_delivery_does_not_hold_back_the_rest_of_the_batch(client, sim, sent):
    post(client, sim.private_key, [sendgrid_event(sent, "delivered")])
    poison = WebhookDeliveryFactory(body=b"[not json")
    good = WebhookDelivery.objects.exclude(id=poison.id).get()

    report = webhook_deliveries_process(delivery_ids=[poison.id, good.id])

    assert report.processed == [good.id] and report.failed == [poison.id]
    assert MessageEvent.objects.count() == 1
    poison.refresh_from_db()
    assert poison.status == "failed" and poison.error


def test_pending_delivery_whose_task_was_lost_is_picked_up_by_the_sweep(client, sim, sent):
    post(client, sim.private_key, [sendgrid_event(sent, "delivered")])
    delivery = WebhookDelivery.objects.get()
    assert webhook_deliveries_due_for_retry() == []  # still fresh: its task is on the way
    WebhookDelivery.objects.update(received_at=delivery.received_at - dt.timedelta(minutes=5))
    assert webhook_deliveries_due_for_retry() == [delivery.id]


# --- end to end: the simulator posts signed batches to a live server -------------------------------

@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_simulator_batches_with_duplicates_and_changed_ids_land_once(live_server, settings):
    handle = start_simulator(port=0, seed=3, auto_emit=False,
                             webhook_url=f"{live_server.url}{URL}", duplicate_rate=1.0,
                             changed_id_duplicate_rate=1.0, out_of_order_rate=1.0)
    settings.SENDGRID_API_HOST = handle.base_url
    settings.SENDGRID_WEBHOOK_PUBLIC_KEY = handle.public_key_b64
    try:
        messages = [enrolled_message(email=f"{kind}@acme.example", plan=TEST_PLAN)
                    for kind in ("open", "machine", "click", "bounce")]
        outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])
        result = handle.flush(timeout=20)
        assert result["not_delivered"] == 0, handle.deliveries()
        posted = handle.events()
        originals = [e for e in posted if e["copy"] == "original"]
        assert len(posted) > len(originals)  # the simulator did send duplicates

        process_all()

        assert WebhookDelivery.objects.filter(status="processed").count() == WebhookDelivery.objects.count() > 0
        assert MessageEvent.objects.count() == len(originals)
        assert MessageEvent.objects.filter(outbound_message__isnull=True).count() == 0
        machine = OutboundMessage.objects.get(to_address="machine@acme.example", node_id="email_intro")
        assert MessageEvent.objects.get(outbound_message=machine, event_type="open").is_machine
        assert not moves(machine, "open").exists()
        opener = OutboundMessage.objects.get(to_address="open@acme.example", node_id="email_intro")
        assert moves(opener, "open").count() == 1
        assert CommunicationSuppression.objects.filter(value="bounce@acme.example", reason="hard_bounce").exists()
    finally:
        handle.stop()


def test_the_task_folds_other_waiting_deliveries_into_one_transaction(client, sim, sent):
    from messaging.tasks import process_deliveries

    post(client, sim.private_key, [sendgrid_event(sent, "delivered")])
    post(client, sim.private_key, [sendgrid_event(sent, "open", useragent=HUMAN_UA)])
    first, second = WebhookDelivery.objects.order_by("id")

    process_deliveries([first.id])  # the Celery task, run inline

    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"processed"}
    assert MessageEvent.objects.count() == 2
    # The second delivery's own task comes later and finds nothing to do.
    assert webhook_deliveries_process(delivery_ids=[second.id]).processed == []


def test_a_failing_absorbed_delivery_does_not_fail_the_requested_one(client, sim, sent):
    post(client, sim.private_key, [sendgrid_event(sent, "delivered")])
    requested = WebhookDelivery.objects.get()
    poison = WebhookDeliveryFactory(body=b"[not json", status="pending")

    report = webhook_deliveries_process(delivery_ids=[requested.id], absorb_pending=4)

    assert report.processed == [requested.id] and report.failed == []
    poison.refresh_from_db()
    assert poison.status == "pending"  # left for its own task, which will mark it failed
