"""The provider outage breaker, over real HTTP against the SendGrid simulator's 5xx switch.

A SendGrid outage of about 15 minutes used to fail the first message of every batch for good (5 attempts,
1-2-4-8 min) and end those enrolments `failed`. Now consecutive 5xx open a breaker every worker sees: sending
pauses (no request, no attempt, nothing failed), one probe at a time backs off, and the first 202 closes it.
"""
from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from campaigns.models import ContactCampaign
from messaging.delivery import outbound_messages_deliver
from messaging.delivery.outage import outage_state
from messaging.models import OutboundMessage
from messaging.tests.factories import enrolled_message
from outreach import clock
from outreach.webhooks_out.models import WebhookEndpoint, WebhookEvent
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    settings.SENDGRID_OUTAGE_THRESHOLD = 3
    settings.SENDGRID_OUTAGE_PROBE_SECONDS = 15
    settings.SENDGRID_OUTAGE_PROBE_MAX_SECONDS = 120
    with running_simulator(settings, seed=31) as handle:
        yield handle


class _Clock:
    """Clock time the test moves on (the breaker, like the rows, runs on `outreach.clock`)."""

    def __init__(self, monkeypatch) -> None:
        self.now = clock.now()
        monkeypatch.setattr(clock, "now", lambda: self.now)

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def _requests(sim) -> int:
    """Requests that reached the simulator's /v3/mail/send while it answered 5xx."""
    return len(sim.sim.fault_view()["hits"])


def _batch_of_one(message: OutboundMessage):
    return outbound_messages_deliver(outbound_message_ids=[message.id])


def _rows(messages: list[OutboundMessage]) -> list[OutboundMessage]:
    return list(OutboundMessage.objects.filter(id__in=[m.id for m in messages]).order_by("id"))


def test_a_fifteen_minute_outage_pauses_sending_burns_no_attempts_fails_nothing_and_resumes(sim, monkeypatch):
    now = _Clock(monkeypatch)
    messages = [enrolled_message(email=f"p{i}@acme.example") for i in range(6)]
    sim.set_faults("5xx", count=None)

    # Three batches meet the outage; the third failure opens the breaker and that message is paused.
    reports = [_batch_of_one(m) for m in messages[:3]]
    assert [r.retrying for r in reports[:2]] == [[messages[0].id], [messages[1].id]]
    assert reports[2].paused == [messages[2].id] and reports[2].failed == []
    assert outage_state()["state"] == "open"
    hits = _requests(sim)

    # While open, batches send nothing at all: no request, no attempt, nothing failed.
    report = outbound_messages_deliver(outbound_message_ids=[m.id for m in messages[3:]])
    assert report.paused == [m.id for m in messages[3:]] and _requests(sim) == hits
    # Fifteen minutes of outage, a batch every minute: only probes reach SendGrid, and they back off.
    for _ in range(15):
        now.advance(minutes=1)
        report = outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])
        assert report.failed == [] and report.sent == []
    # One probe request at minutes 1, 2, 3 (waits of 15, 30, 60 s), then every 2 minutes (the cap): 9, where
    # every batch a minute would have spent its first request (and attempt) on the outage.
    assert _requests(sim) - hits == 9
    rows = _rows(messages)
    assert {r.status for r in rows} == {OutboundMessage.Status.QUEUED}
    assert max(r.attempts for r in rows) <= 1  # attempts while the breaker was open were undone
    # Held by the breaker itself, or behind a failed probe in its batch.
    assert {r.status_reason for r in rows[2:]} <= {"provider_outage", "batch_paused:provider_outage"}

    # SendGrid answers again: the next probe closes the breaker and everything goes out, once.
    sim.set_faults("none")
    now.advance(minutes=3)
    report = outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])
    assert sorted(report.sent) == sorted(m.id for m in messages)
    assert outage_state() == {"state": "closed", "failures": 0, "opened_at": None, "probe_at": None,
                              "last_error": ""}
    assert len(sim.messages()) == len(messages)
    assert not ContactCampaign.objects.filter(status=ContactCampaign.Status.FAILED).exists()


def test_the_sequential_path_holds_the_rest_of_the_batch_behind_an_open_breaker(sim, settings, monkeypatch):
    settings.DELIVERY_CONCURRENCY = 1
    _Clock(monkeypatch)
    first = enrolled_message(email="a@acme.example")
    rest = [enrolled_message(campaign=first.contact_campaign.campaign, email=f"r{i}@acme.example") for i in range(3)]
    sim.set_faults("5xx", count=None)
    for _ in range(3):
        _batch_of_one(first)
    assert outage_state()["state"] == "open"

    report = outbound_messages_deliver(outbound_message_ids=[m.id for m in rest])

    assert report.paused == [m.id for m in rest]
    assert {r.attempts for r in _rows(rest)} == {0}


def test_a_message_fails_only_after_hours_of_being_undeliverable_not_after_its_attempts(sim, settings,
                                                                                       monkeypatch):
    settings.SENDGRID_OUTAGE_THRESHOLD = 100  # this one message's own 5xx: not an outage
    settings.SENDGRID_SEND_MAX_ATTEMPTS = 3
    settings.SENDGRID_UNDELIVERABLE_HOURS = 24
    now = _Clock(monkeypatch)
    message = enrolled_message()
    sim.set_faults("5xx", count=None)
    for _ in range(5):  # 1-2-4-8-16 minutes of back-off: past the attempts, within the hours
        assert _batch_of_one(message).retrying == [message.id]
        now.advance(minutes=20)
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.QUEUED and message.attempts == 5
    first_failure = message.undeliverable_since
    assert first_failure is not None

    now.advance(hours=24)
    assert _batch_of_one(message).failed == [message.id]
    message.refresh_from_db()
    assert message.status == OutboundMessage.Status.FAILED and message.undeliverable_since == first_failure


def test_opening_the_breaker_emits_sender_paused_to_the_tenant(sim, monkeypatch):
    _Clock(monkeypatch)
    message = enrolled_message()
    WebhookEndpoint.objects.create(tenant_id=message.tenant_id, url="https://hooks.example/in", secret="s" * 32,
                                   event_types=["sender.paused"])
    sim.set_faults("5xx", count=None)
    for _ in range(3):
        _batch_of_one(message)

    [event] = WebhookEvent.objects.filter(tenant_id=message.tenant_id, type="sender.paused")
    assert event.data["reason"] == "provider_outage" and event.data["sender_identity_id"] == message.sender_identity_id
    assert event.data["next_probe_at"]


def test_the_admin_index_shows_the_open_breaker(sim, admin_client, monkeypatch):
    _Clock(monkeypatch)
    message = enrolled_message()
    sim.set_faults("5xx", count=None)
    for _ in range(3):
        _batch_of_one(message)

    page = admin_client.get(reverse("admin:index")).content.decode()

    assert "SendGrid outage breaker: <strong>open</strong>" in page and "next probe at" in page
