"""The provider call for one claimed, policy-cleared message.

Before the request, the row's Message-ID and ``send_started_at`` are committed, in the statement that
re-checks policy (`policy.start_request`); that marker is what lets lease recovery tell a claim that never
reached the provider (safe to re-queue) from one that may have (``unknown``: never resent blindly).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from messaging.delivery import outcomes, policy
from messaging.delivery.engine_feed import EngineItem
from messaging.delivery.rendering import Thread, new_message_id, subject_for
from messaging.delivery.transports import Transport, transport_for
from messaging.models import EmailSenderIdentity, OutboundMessage
from messaging.rate_limits import RateLimitCandidate
from messaging.sendgrid.errors import SendGridError


def rate_limit_candidate(message: OutboundMessage) -> RateLimitCandidate:
    sender = policy.sender_for(message)
    assert sender is not None  # send_policy held the message otherwise
    return RateLimitCandidate(message_id=message.id, tenant_id=message.tenant_id, sender_email=sender.from_email,
                              to_address=message.to_address,
                              warmup_started_on=sender.ip_warmup_started_on)


@dataclass
class Prepared:
    """A claimed message ready to go: its provider request and what its request-start statement records."""
    message: OutboundMessage
    sender: EmailSenderIdentity
    transport: Transport
    request: Any
    message_id: str
    subject: str
    thread: Thread

    def start_row(self) -> dict[str, Any]:
        return policy.start_params(self.message, sender=self.sender, message_id=self.message_id,
                                   thread=self.thread, subject=self.subject)


def prepare(message: OutboundMessage, *, thread: Thread) -> Prepared:
    """Render the message and build its provider request: no side effect, nothing sent."""
    sender = policy.sender_for(message)
    assert sender is not None  # send_policy held the message otherwise
    transport = transport_for(message.channel)
    message_id = message.message_id_header or new_message_id(from_email=sender.from_email)
    subject = subject_for(message, thread)
    request = transport.prepare(message=message, sender=sender, message_id=message_id, thread=thread,
                                subject=subject)
    return Prepared(message=message, sender=sender, transport=transport, request=request, message_id=message_id,
                    subject=subject, thread=thread)


def send_one(message: OutboundMessage, *, claimed_at: dt.datetime, thread: Thread, report: outcomes.DeliveryReport,
             engine_items: list[EngineItem]) -> outcomes.Breaker | None:
    """Render, mark the request start, call the channel's transport and settle the row by its answer."""
    window_closed = policy.send_window_verdict(message)  # the batch may have run past the window's close
    if window_closed is not None:  # not sent: its reserved rate-limit room is given back after the batch
        outcomes.settle_by_policy(message, window_closed, claimed_at=claimed_at, report=report,
                                  engine_items=engine_items)
        return None
    prepared = prepare(message, thread=thread)
    # Commit the identity of the mail and the "request started" marker BEFORE the request goes out, only
    # while policy still allows the send (checked again by that same statement, see policy._START_REQUEST_SQL).
    # Through the module attribute: looked up at call time.
    if not policy.start_request(message, claimed_at=claimed_at, sender=prepared.sender,
                                message_id=prepared.message_id, thread=thread, subject=prepared.subject):
        outcomes.settle_refused_start(message, claimed_at=claimed_at, report=report, engine_items=engine_items)
        return None
    attempts = message.attempts + 1
    try:
        provider_message_id = prepared.transport.send(prepared.request)
    except SendGridError as exc:
        return outcomes.on_provider_error(message, exc, claimed_at=claimed_at, attempts=attempts, report=report,
                                          engine_items=engine_items)
    outcomes.on_sent(message, claimed_at=claimed_at, provider_message_id=provider_message_id, report=report,
                     engine_items=engine_items)
    return None
