"""Delivery against the SendGrid simulator over real HTTP (the sendgrid library is never patched)."""
from __future__ import annotations

import datetime as dt

import pytest

from campaigns.models import Campaign, ContactCampaign, ScheduledAction
from messaging import compliance
from messaging.delivery import (
    message_render,
    outbound_messages_deliver,
    outbound_messages_recover_stale,
    sanitise_html,
)
from messaging.delivery.claiming import claim as _claim
from messaging.models import EmailSenderIdentity, OutboundMessage
from messaging.sendgrid import client as sg
from messaging.tests.factories import enrolled_message
from outreach import clock
from outreach.tenancy.models import GlobalSendingSwitch
from simulators.sendgrid.testing import free_port, running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=11) as handle:
        yield handle


def _send_action(message: OutboundMessage) -> ScheduledAction | None:
    return ScheduledAction.objects.filter(outbound_message_id=message.id, kind="send").first()




# --- success path ----------------------------------------------------------------------------------

def test_queued_message_is_sent_once_with_our_headers_custom_args_and_footer(sim):
    message = enrolled_message(email="dana@acme.example")
    assert message.status == OutboundMessage.Status.QUEUED

    report = outbound_messages_deliver(outbound_message_ids=[message.id, message.id])

    assert report.sent == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT and message.sent_at is not None
    [mail] = sim.messages()
    assert message.provider_message_id == mail["x_message_id"]
    headers = mail["headers"]
    assert headers["Message-ID"] == message.message_id_header
    assert message.message_id_header.endswith("@seller.example>")
    assert headers["List-Unsubscribe"].startswith("<https://") or headers["List-Unsubscribe"].startswith("<http")
    assert "mailto:" in headers["List-Unsubscribe"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "In-Reply-To" not in headers
    cc = message.contact_campaign
    assert mail["custom_args"] == {
        "tenant_id": str(message.tenant_id), "campaign_id": str(cc.campaign_id),
        "contact_campaign_id": str(cc.id), "node_id": "email_intro", "outbound_message_id": str(message.id),
    }
    assert mail["categories"] == [f"campaign-{cc.campaign_id}", "node-email_intro"]
    text, html = (block["value"] for block in mail["request"]["content"])
    unsubscribe = compliance.unsubscribe_url(tenant=message.tenant_id, channel="email", value=message.to_address)
    assert unsubscribe in text
    assert '<a href="https://seller.example/demo">' in html and 'clicktracking="off"' in html
    # The engine heard "sent": the node's send time is recorded.
    cc.refresh_from_db()
    assert cc.node_sent_at is not None
    # A second task with the same id (redelivery) finds nothing to claim: never sent twice.
    again = outbound_messages_deliver(outbound_message_ids=[message.id])
    assert again.not_claimed == [message.id] and len(sim.messages()) == 1


def test_follow_up_threads_onto_the_earlier_message_of_the_contact_campaign(sim):
    from campaigns.engine import EngineEvent
    from campaigns.services import contact_campaign_handle_event

    first = enrolled_message(email="dana@acme.example")
    outbound_messages_deliver(outbound_message_ids=[first.id])
    first.refresh_from_db()
    contact_campaign_handle_event(contact_campaign_id=first.contact_campaign_id, event=EngineEvent(
        type="click", occurred_at=clock.now(), node_id="email_intro", node_visit=first.node_visit,
        outbound_message_id=first.id))
    follow_up = OutboundMessage.objects.get(contact_campaign_id=first.contact_campaign_id, node_id="email_hot")

    outbound_messages_deliver(outbound_message_ids=[follow_up.id])

    follow_up.refresh_from_db()
    assert follow_up.status == OutboundMessage.Status.SENT
    mail = sim.messages()[-1]
    assert mail["headers"]["In-Reply-To"] == first.message_id_header
    assert mail["headers"]["References"] == first.message_id_header
    assert follow_up.in_reply_to == first.message_id_header
    assert mail["headers"]["Message-ID"] == follow_up.message_id_header != first.message_id_header


def test_plan_text_is_escaped_and_plan_html_is_sanitised():
    text, html = message_render(body_text="5 < 6 & <script>x</script>", body_html="",
                                unsubscribe_url="https://u.example/unsubscribe?token=a&b=c")
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "https://u.example/unsubscribe?token=a&amp;b=c" in html
    assert text.startswith("5 < 6 & <script>x</script>") and "https://u.example/unsubscribe?token=a&b=c" in text
    cleaned = sanitise_html('<p onclick="x()">Hi <a href="javascript:alert(1)">x</a><script>bad()</script>'
                            '<a href="https://ok.example">ok</a></p>')
    assert "onclick" not in cleaned and "javascript:" not in cleaned and "bad()" not in cleaned
    assert '<a href="https://ok.example" rel="noopener noreferrer">ok</a>' in cleaned


# --- policy at send time ---------------------------------------------------------------------------

def test_unsubscribed_address_is_never_mailed_and_the_engine_hears_suppressed(sim):
    message = enrolled_message(email="optout@acme.example")
    compliance.unsubscribe_record(tenant=message.tenant, channel="email", value="OptOut@acme.example",
                                  source="manual")
    # The unsubscribe stopped the contact campaign (and so completed its one-contact campaign); force both
    # back to a send to prove the send-time check alone refuses it.
    ContactCampaign.objects.filter(id=message.contact_campaign_id).update(status="active")
    Campaign.objects.filter(contact_campaigns__id=message.contact_campaign_id).update(status="active")
    OutboundMessage.objects.filter(id=message.id).update(status="queued")

    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    assert report.suppressed == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SUPPRESSED and message.status_reason == "unsubscribed"
    assert sim.messages() == []
    assert message.contact_campaign.transitions.filter(event="suppressed").exists()


def test_suppressed_address_is_marked_suppressed_with_its_reason(sim):
    message = enrolled_message(email="gone@acme.example")
    compliance.suppression_add(tenant=message.tenant, channel="email", value="gone@acme.example",
                               reason="hard_bounce")
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status_reason == "suppressed:hard_bounce" and sim.messages() == []


@pytest.mark.parametrize("switch", ["tenant", "global", "campaign", "sender_paused", "sender_unverified"])
def test_pauses_hold_the_message_queued_and_rearmed_not_dropped(sim, switch):
    message = enrolled_message()
    sender = message.sender_identity or message.contact_campaign.campaign.sender_identity
    if switch == "tenant":
        type(message.tenant).objects.filter(id=message.tenant_id).update(sending_paused=True)
    elif switch == "global":
        GlobalSendingSwitch.objects.update_or_create(id=1, defaults={"sending_stopped": True})
    elif switch == "campaign":
        Campaign.objects.filter(id=message.contact_campaign.campaign_id).update(status="paused")
    elif switch == "sender_paused":
        EmailSenderIdentity.objects.filter(id=sender.id).update(is_paused=True)
    else:
        EmailSenderIdentity.objects.filter(id=sender.id).update(status="pending")
    before = clock.now()

    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    assert report.held == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.QUEUED and message.status_reason
    assert message.next_attempt_at > before
    action = _send_action(message)
    assert action is not None and action.due_at >= message.next_attempt_at - dt.timedelta(seconds=1)
    assert sim.messages() == []


def test_message_of_a_stopped_contact_campaign_is_canceled(sim):
    message = enrolled_message()
    ContactCampaign.objects.filter(id=message.contact_campaign_id).update(status="stopped")
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.CANCELED and sim.messages() == []


# --- provider errors -------------------------------------------------------------------------------

def test_400_fails_permanently_keeping_sendgrids_message(sim):
    message = enrolled_message()
    OutboundMessage.objects.filter(id=message.id).update(subject="")

    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    assert report.failed == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED and message.status_reason == "http_400"
    assert "The subject is required" in message.last_error
    assert message.contact_campaign.transitions.filter(event="send_failed").exists()


def test_401_bad_key_fails_permanently(sim, settings):
    settings.SENDGRID_API_KEY = "SG.wrong-key"
    message = enrolled_message()
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED and message.status_reason == "http_401"
    assert "invalid, expired, or revoked" in message.last_error


def test_403_unverified_sender_at_sendgrid_fails_permanently(sim):
    sim.configure(any_sender=False)
    message = enrolled_message()
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED and message.status_reason == "http_403"
    assert message.last_error.startswith("from: The from address does not match a verified Sender Identity")


def test_413_too_large_fails_permanently(sim):
    message = enrolled_message()
    OutboundMessage.objects.filter(id=message.id).update(body_text="word " * (16 * 1024 * 1024 // 5))
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED and message.status_reason == "http_413"
    assert "too large" in message.last_error


def test_429_puts_the_message_back_and_rearms_it_at_the_reset_time(sim):
    first, second = enrolled_message(), enrolled_message()
    sim.set_faults("429", count=1, delay_seconds=120)

    report = outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    # The first hit the 429; the second was not even tried (the batch waits for the reset).
    assert report.rate_limited == [first.id] and report.held == [second.id]
    assert sim.messages() == []
    for message in (first, second):
        message.refresh_from_db()
        assert message.status == OutboundMessage.Status.QUEUED
        assert message.next_attempt_at >= clock.now() + dt.timedelta(seconds=100)
        assert _send_action(message).due_at >= message.next_attempt_at
    assert first.attempts == 0  # a rate limit is not the message's fault


def test_5xx_retries_with_backoff_then_fails_at_the_bound(sim, settings):
    # One message's own 5xx (not an outage: the breaker stays closed), past both bounds.
    settings.SENDGRID_OUTAGE_THRESHOLD = 100
    settings.SENDGRID_UNDELIVERABLE_HOURS = 0
    settings.SENDGRID_SEND_MAX_ATTEMPTS = 3
    message = enrolled_message()
    sim.set_faults("5xx", count=None)
    delays = []
    for attempt in (1, 2):
        before = clock.now()
        report = outbound_messages_deliver(outbound_message_ids=[message.id])
        assert report.retrying == [message.id]
        message.refresh_from_db()
        assert message.status == OutboundMessage.Status.QUEUED and message.attempts == attempt
        assert "Internal Server Error" in message.last_error or "Service Unavailable" in message.last_error
        delays.append((message.next_attempt_at - before).total_seconds())
        assert _send_action(message).due_at >= message.next_attempt_at - dt.timedelta(seconds=1)
    assert delays[1] > delays[0] >= 59

    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    assert report.failed == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED and message.status_reason == "transient_errors_exhausted"
    assert message.contact_campaign.transitions.filter(event="send_failed").exists()
    assert sim.messages() == []


def test_5xx_then_recovery_sends_once(sim):
    message = enrolled_message()
    sim.set_faults("5xx", count=1)
    outbound_messages_deliver(outbound_message_ids=[message.id])
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT and message.attempts == 2
    assert len(sim.messages()) == 1


def test_connection_refused_is_retried_not_failed(sim, settings):
    settings.SENDGRID_API_HOST = f"http://127.0.0.1:{free_port()}"
    message = enrolled_message()
    report = outbound_messages_deliver(outbound_message_ids=[message.id])
    assert report.retrying == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.QUEUED and message.attempts == 1
    assert "request not sent" in message.last_error


def test_connection_dropped_after_the_request_marks_unknown_and_never_resends(sim):
    message = enrolled_message()
    sim.set_faults("drop", count=1)

    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    assert report.unknown == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.UNKNOWN and message.sent_at is None
    assert message.message_id_header  # stored before the request went out
    assert len(sim.messages()) == 1  # SendGrid did accept it
    # Any later task for it, and lease recovery, leave it alone.
    assert outbound_messages_deliver(outbound_message_ids=[message.id]).not_claimed == [message.id]
    assert outbound_messages_recover_stale(lease=dt.timedelta(0)) == {"unknown": [], "requeued": [], "settled": [],
                                                                   "refed": []}
    assert len(sim.messages()) == 1


def test_timeout_after_the_request_marks_unknown(sim, settings):
    settings.SENDGRID_REQUEST_TIMEOUT_SECONDS = 0.5
    message = enrolled_message()
    sim.set_faults("slow", count=1, delay_seconds=1.5)
    report = outbound_messages_deliver(outbound_message_ids=[message.id])
    assert report.unknown == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.UNKNOWN and "timed out" in message.last_error


# --- a worker killed between claim and send --------------------------------------------------------

def test_worker_killed_after_claim_before_the_request_is_requeued_and_sent_once(sim):
    message = enrolled_message()
    _claim([message.id], clock.now() - dt.timedelta(hours=1))  # a claim whose worker then died
    assert outbound_messages_deliver(outbound_message_ids=[message.id]).not_claimed == [message.id]

    recovered = outbound_messages_recover_stale()

    assert recovered == {"unknown": [], "requeued": [message.id], "settled": [], "refed": []}
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.QUEUED and _send_action(message).status == "pending"
    outbound_messages_deliver(outbound_message_ids=[message.id])
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT and len(sim.messages()) == 1


def test_worker_killed_after_the_request_went_out_is_unknown_and_never_resent(sim):
    message = enrolled_message()
    long_ago = clock.now() - dt.timedelta(hours=1)
    _claim([message.id], long_ago)
    # What _send does before the request, then the request itself; the worker dies before recording.
    OutboundMessage.objects.filter(id=message.id).update(send_started_at=long_ago, message_id_header="<x@y.example>")
    sg.mail_send(body={"personalizations": [{"to": [{"email": message.to_address}]}],
                       "from": {"email": "rep@seller.example"}, "subject": "s",
                       "content": [{"type": "text/plain", "value": "t"}]})

    recovered = outbound_messages_recover_stale()

    assert recovered == {"unknown": [message.id], "requeued": [], "settled": [], "refed": []}
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.UNKNOWN and len(sim.messages()) == 1
