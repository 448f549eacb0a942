"""Delivery against the SendGrid simulator over real HTTP (the sendgrid library is never patched)."""
from __future__ import annotations

import datetime as dt
import re
from urllib.parse import unquote

import pytest

from campaigns.models import Campaign, ContactCampaign, ScheduledAction
from messaging import compliance
from messaging.delivery import (
    message_render,
    outbound_messages_deliver,
    outbound_messages_recover_stale,
    policy,
    sanitise_html,
)
from messaging.delivery.claiming import claim as _claim
from messaging.inbound.reply_addresses import tenant_reply_address
from messaging.models import EmailSenderIdentity, OutboundMessage
from messaging.sendgrid import client as sg
from messaging.tests.factories import TEST_PLAN, enrolled_message
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
    # The token carries its signing second, so it is read back rather than compared with one made later.
    [token] = re.findall(r"/unsubscribe\?token=(\S+)", text)
    assert compliance.unsubscribe_token_read(unquote(token)) == compliance.UnsubscribeTarget(
        tenant_id=message.tenant_id, channel="email", value=message.to_address)
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
                                                                   "unheard_failed": [], "refed": []}
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

    assert recovered == {"unknown": [], "requeued": [message.id], "settled": [], "unheard_failed": [], "refed": []}
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

    assert recovered == {"unknown": [message.id], "requeued": [], "settled": [], "unheard_failed": [], "refed": []}
    outbound_messages_deliver(outbound_message_ids=[message.id])
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.UNKNOWN and len(sim.messages()) == 1


def test_display_names_with_commas_semicolons_or_line_breaks_are_quoted_or_cleaned_and_the_mail_goes_out(sim):
    """The simulator refuses unquoted `,`/`;` names as SendGrid does; a CR/LF must never reach a header."""
    message = enrolled_message(sender_kwargs={"from_name": "Sales; Acme\r\nBcc: evil@else.example"})
    contact = message.contact
    contact.first_name, contact.last_name = "Jo", "Smith, Jr."
    contact.save()

    outbound_messages_deliver(outbound_message_ids=[message.id])

    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.SENT, message.last_error
    [mail] = sim.messages()
    assert mail["request"]["personalizations"][0]["to"][0]["name"] == '"Jo Smith, Jr."'
    assert mail["request"]["from"]["name"] == '"Sales; Acme Bcc: evil@else.example"'


@pytest.mark.parametrize("window", ["send_days", "quiet_hours"])
def test_a_send_whose_moment_is_outside_the_plans_window_is_held_and_retimed_to_the_next_allowed_moment(
    sim, window,
):
    """Policy beats plans at send time: a send that waited into quiet hours (or off its send days) is held."""
    from campaigns.interface import send_time_allowed

    now = clock.now().astimezone(dt.UTC)
    plan = dict(TEST_PLAN)
    if window == "send_days":
        today = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[now.weekday()]
        plan["sendDays"] = [d for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun") if d != today]
    else:
        start, end = now - dt.timedelta(hours=1), now + dt.timedelta(hours=2)
        plan["quietHours"] = {"start": f"{start:%H}:00", "end": f"{end:%H}:00"}
    # Enrolled now, its send handed to delivery now: as a send that waited in a backlog into the window's close.
    message = enrolled_message(plan=plan)

    report = outbound_messages_deliver(outbound_message_ids=[message.id])

    message.refresh_from_db()
    assert report.held == [message.id] and not report.sent
    assert message.status == OutboundMessage.Status.QUEUED and message.status_reason == "outside_send_window"
    assert sim.messages() == []
    action = _send_action(message)
    assert action is not None and action.due_at > now and send_time_allowed(plan=plan, instant=action.due_at)
    assert not send_time_allowed(plan=plan, instant=action.due_at - dt.timedelta(minutes=1))


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_batch_that_runs_past_the_windows_close_holds_the_sends_not_yet_started(sim, settings, monkeypatch,
                                                                                  concurrency):
    """The window is checked at batch start and again as each request (or wave) starts: a long batch never
    sends into quiet hours (the demo saw a mail go out two minutes after 20:00 in Chicago)."""
    settings.DELIVERY_CONCURRENCY = concurrency
    first, second = enrolled_message(), enrolled_message()
    checks = {"n": 0}

    def window_closes_after_the_batch_start_checks(*, plan, instant) -> bool:
        checks["n"] += 1
        return checks["n"] <= 3  # both batch-start checks, then the first request's: open; later: closed

    monkeypatch.setattr(policy, "send_time_allowed", window_closes_after_the_batch_start_checks)

    report = outbound_messages_deliver(outbound_message_ids=[first.id, second.id])

    assert report.sent == [first.id] and report.held == [second.id]
    second.refresh_from_db()
    assert second.status == OutboundMessage.Status.QUEUED and second.status_reason == "outside_send_window"
    assert [m["request"]["personalizations"][0]["to"][0]["email"] for m in sim.messages()] == [first.to_address]


def test_once_the_inbound_reply_domain_is_set_every_mail_carries_the_tenants_issued_reply_address(sim, settings):
    """A sender migrated before INBOUND_REPLY_DOMAIN was set keeps its old reply-to in the row; the mail must
    still ask for replies at the issued address, so a reply is filed under the tenant that sent it."""
    settings.INBOUND_REPLY_DOMAIN = "in.seller.example"
    message = enrolled_message(sender_kwargs={"reply_to": "sales@old-crm.example"})

    outbound_messages_deliver(outbound_message_ids=[message.id])

    [mail] = sim.messages()
    assert mail["request"]["reply_to"]["email"] == tenant_reply_address(tenant_id=message.tenant_id)
    assert mail["request"]["reply_to"]["email"].startswith(f"reply+{message.tenant_id}-")
