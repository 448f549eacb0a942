"""Concurrent delivery (issue 19): a batch's requests in flight together, every guarantee kept.

Against the SendGrid simulator over real HTTP. The pool threads make HTTP requests only, so the stand-ins
below that run in them (`_tracking`) touch no database; what must happen "meanwhile" in the database is
staged on the task's own thread, around the wave's request-start statement (`policy.start_requests`).
"""
from __future__ import annotations

import threading
from collections import Counter

import pytest

from messaging.delivery import outbound_messages_deliver, outbound_messages_recover_stale, policy, window
from messaging.models import ContactUnsubscribe, OutboundMessage
from messaging.sendgrid import client as sg
from messaging.tests.factories import enrolled_message
from simulators.sendgrid.testing import running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture
def sim(settings):
    with running_simulator(settings, seed=19) as handle:
        yield handle


def _batch(n: int, *, prefix: str = "c") -> list[OutboundMessage]:
    first = enrolled_message(email=f"{prefix}0@acme.example")
    campaign = first.contact_campaign.campaign
    return [first] + [enrolled_message(campaign=campaign, email=f"{prefix}{i}@acme.example") for i in range(1, n)]


def _mailed(sim) -> Counter:
    return Counter(address for mail in sim.messages() for address in mail["to"])


class _Tracking:
    """Wraps mail_send: counts calls in flight at once (no database here: it runs in pool threads)."""

    def __init__(self, monkeypatch, after=None):
        self.real = sg.mail_send
        self.lock = threading.Lock()
        self.now = self.peak = self.calls = 0
        self.after = after
        monkeypatch.setattr(sg, "mail_send", self)

    def __call__(self, *, body, timeout=None):
        with self.lock:
            self.now += 1
            self.calls += 1
            self.peak = max(self.peak, self.now)
            call = self.calls
        try:
            return self.real(body=body, timeout=timeout)
        finally:
            with self.lock:
                self.now -= 1
            if self.after is not None:
                self.after(call, body)


def test_a_batch_has_many_requests_in_flight_over_few_reused_connections_and_mails_each_once(
        sim, settings, monkeypatch):
    settings.DELIVERY_CONCURRENCY = 8
    sim.configure(latency_ms=40)
    messages = _batch(30)
    tracking = _Tracking(monkeypatch)
    opened_before = sim.connections_opened

    report = outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])

    assert report.sent == sorted(m.id for m in messages)
    assert set(_mailed(sim).values()) == {1} and len(_mailed(sim)) == 30
    assert 2 <= tracking.peak <= 8  # concurrent, and bounded by the window
    # Keep-alive: at most one connection per request thread (the official library opened one per request).
    assert sim.connections_opened - opened_before <= 8
    assert OutboundMessage.objects.filter(id__in=report.sent, status="sent", sent_at__isnull=False,
                                          send_started_at__isnull=False, attempts=1).count() == 30


def test_one_sender_has_at_most_its_share_of_the_window(sim, settings, monkeypatch):
    settings.DELIVERY_CONCURRENCY = 8
    settings.DELIVERY_SENDER_CONCURRENCY = 2
    sim.configure(latency_ms=30)
    messages = _batch(12)
    tracking = _Tracking(monkeypatch)

    report = outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])

    assert len(report.sent) == 12 and tracking.peak == 2


def test_opt_out_recorded_while_a_wave_is_in_flight_is_honoured_for_the_messages_not_started(
        sim, settings, monkeypatch):
    settings.DELIVERY_CONCURRENCY = 3
    monkeypatch.setattr(window, "MIN_WAVE", 1)
    messages = _batch(6)  # 0: probe; 1, 2, 3: first wave (3 held on the wire); 4, 5: the next wave
    on_the_wire = threading.Event()
    release = threading.Event()
    real_send = sg.mail_send

    def send(*, body, timeout=None):
        if body["personalizations"][0]["to"][0]["email"] == messages[3].to_address:
            on_the_wire.set()
            release.wait(5)  # message 3 stays in flight until the opt-out below is recorded
        return real_send(body=body, timeout=timeout)

    monkeypatch.setattr(sg, "mail_send", send)
    real_start = policy.start_requests
    waves: list[list[int]] = []

    def start_requests(rows, *, claimed_at):
        waves.append([row["id"] for row in rows])
        if len(waves) == 2:
            assert on_the_wire.wait(5) and not release.is_set()  # message 3 of the first wave is in flight
            ContactUnsubscribe.objects.create(tenant_id=messages[5].tenant_id, contact_id=messages[5].contact_id,
                                              channel="email", channel_value=messages[5].to_address,
                                              source="link_click")
            release.set()
        return real_start(rows, claimed_at=claimed_at)

    monkeypatch.setattr(policy, "start_requests", start_requests)

    report = outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])

    assert waves[0] == [m.id for m in messages[1:4]]
    assert any(messages[5].id in wave for wave in waves[1:])  # its start came after the opt-out
    assert messages[5].to_address not in _mailed(sim)
    assert report.sent == [m.id for m in messages[:5]]
    late = OutboundMessage.objects.get(id=messages[5].id)
    assert late.status == OutboundMessage.Status.SUPPRESSED and late.send_started_at is None and late.attempts == 0
    assert report.suppressed == [late.id]


def test_read_timeout_under_concurrency_leaves_unknown_and_is_never_resent(sim, settings, monkeypatch):
    settings.DELIVERY_CONCURRENCY = 4
    settings.SENDGRID_REQUEST_TIMEOUT_SECONDS = 0.5

    def after(call, body):
        if call == 1:  # the probe went out alone; the next request to reach SendGrid answers too late
            sim.set_faults("slow", count=1, delay_seconds=1.5)

    messages = _batch(5)
    _Tracking(monkeypatch, after=after)

    report = outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])

    assert len(report.unknown) == 1 and len(report.sent) == 4
    timed_out = OutboundMessage.objects.get(id=report.unknown[0])
    assert timed_out.status == OutboundMessage.Status.UNKNOWN and "timed out" in timed_out.last_error
    assert set(_mailed(sim).values()) == {1} and len(_mailed(sim)) == 5  # SendGrid took it; once
    # Neither a later task nor lease recovery sends it again.
    assert outbound_messages_deliver(outbound_message_ids=[m.id for m in messages]).not_claimed == sorted(
        m.id for m in messages)
    assert outbound_messages_recover_stale()["requeued"] == []
    assert set(_mailed(sim).values()) == {1}


def test_429_in_a_wave_lets_the_wave_finish_and_holds_what_has_not_started(sim, settings, monkeypatch):
    settings.DELIVERY_CONCURRENCY = 2

    def after(call, body):
        if call == 1:
            sim.set_faults("429", count=1, delay_seconds=30)

    messages = _batch(8)
    _Tracking(monkeypatch, after=after)

    report = outbound_messages_deliver(outbound_message_ids=[m.id for m in messages])

    assert len(report.rate_limited) == 1 and len(report.sent) == 2  # the probe and the wave's other request
    limited = OutboundMessage.objects.get(id=report.rate_limited[0])
    assert limited.status == OutboundMessage.Status.QUEUED and limited.attempts == 0
    assert limited.status_reason == "rate_limited"
    held = OutboundMessage.objects.filter(id__in=report.held)
    assert len(report.held) == 5
    assert {m.status_reason for m in held} == {"batch_paused:rate_limited"}
    assert all(m.status == "queued" and m.send_started_at is None and m.attempts == 0 for m in held)
    assert sum(_mailed(sim).values()) == 2


def test_idle_pooled_connections_are_reused_and_dropped_once_idle_too_long(sim, settings):
    body = {"personalizations": [{"to": [{"email": "x@acme.example"}]}], "from": {"email": "rep@seller.example"},
            "subject": "s", "content": [{"type": "text/plain", "value": "t"}]}
    settings.SENDGRID_POOL_IDLE_SECONDS = 60
    before = sim.connections_opened
    sg.mail_send(body=body)
    sg.mail_send(body=body)
    assert sim.connections_opened - before == 1
    settings.SENDGRID_POOL_IDLE_SECONDS = 0
    sg.mail_send(body=body)
    sg.mail_send(body=body)
    assert sim.connections_opened - before == 3
