"""Delivery: hand queued outbox rows to their provider, exactly once, with policy checked at send time.

Life of an outbox row here (architecture rule 4, "never send twice"):

    queued --claim--> sending --202--> sent
                         |------> queued      (held by policy, over a send rate limit, 429, 5xx/refused, an
                         |                     open outage breaker: re-armed by
                         |                     campaigns.interface.send_action_reschedule)
                         |------> suppressed  (unsubscribed / suppressed / invalid address)
                         |------> canceled    (its contact campaign or campaign is over)
                         |------> failed      (400/401/403/413, or transient errors past 24 h and the attempts)
                         '------> unknown     (timeout / connection lost AFTER the request went out)
                                     |---> sent    (a provider event proves acceptance)
                                     '---> failed  (no event within SENDGRID_UNKNOWN_SETTLE_HOURS; never resent)

One idea per module:

- `claiming`: the conditional claim (queued -> sending) and the moves of a claimed row (finish, hold);
- `policy`: what policy says at send time, checked for the batch and again in the request-start statement
  (the held-send rule's two spellings sit together there);
- `rendering`: text and HTML parts, the unsubscribe footer, headers, threading, the SendGrid body;
- `transports`: the provider registry, one transport per channel (email through SendGrid);
- `sending`: the provider call for one message; `outcomes`: what its answer (or a policy verdict) makes of
  the row (ambiguous timeout -> unknown, 429 hold, 5xx retry with back-off);
- `outage`: the provider outage breaker (Redis, every worker's view): consecutive 5xx open it, sending pauses
  without counting attempts, one probe at a time, the first 202 closes it;
- `engine_feed`: telling the engine the outcomes, once per batch;
- `settling`: ambiguous (`unknown`) sends settled from provider events already stored (events that arrived
  while the row was still `sending`), at the move into `unknown` and again by the stale-send sweep;
- `unknown_bound`: `unknown` rows no event settled within SENDGRID_UNKNOWN_SETTLE_HOURS -> failed, never resent;
- `batch`: the batch entry point; `recovery`: stale claims, that settling pass and the lost-event sweep.

docs/internal-interfaces/messaging-delivery.md states what this package offers and promises.
"""
from __future__ import annotations

from messaging.delivery.batch import outbound_messages_deliver
from messaging.delivery.outcomes import DeliveryReport, backoff
from messaging.delivery.policy import send_policy
from messaging.delivery.recovery import outbound_messages_feed_lost_events, outbound_messages_recover_stale
from messaging.delivery.rendering import html_to_text, message_render, sanitise_html, text_to_html
from messaging.delivery.transports import Transport, transport_for, transport_register

__all__ = [
    "DeliveryReport",
    "Transport",
    "backoff",
    "html_to_text",
    "message_render",
    "outbound_messages_deliver",
    "outbound_messages_feed_lost_events",
    "outbound_messages_recover_stale",
    "sanitise_html",
    "send_policy",
    "text_to_html",
    "transport_for",
    "transport_register",
]
