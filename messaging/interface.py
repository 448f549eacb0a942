"""What other apps may use of messaging (docs/internal-interfaces/messaging-delivery.md and messaging-compliance.md).

Messaging is the highest product app but analytics; the presentation modules of lower apps (their api/
and admin) read it through the names here. Everything not named here is private to messaging.
"""
from __future__ import annotations

from messaging.models import EmailSenderIdentity, InboundMessage, MessageEvent, OutboundMessage

__all__ = ["EmailSenderIdentity", "InboundMessage", "MessageEvent", "OutboundMessage"]

# --- compliance, inbound ------------------------------------------------------------------------------
# Nothing more is exported on purpose (docs/internal-interfaces/messaging-compliance.md): no other app calls
# compliance or inbound directly. contacts asks why an address is blocked through the extension point it
# declares (contacts.interface.address_block_reasons, provided by messaging/providers.py at start-up);
# campaigns' presentation reads replies as the InboundMessage model above.

# delivery, webhooks, senders ------------------------------------------------------------------------------
# (docs/internal-interfaces/messaging-delivery.md). Delivery itself is reached by task name
# (TaskName.DELIVER_MESSAGES, published by campaigns' dispatcher) and through the outbox table contract,
# not by import; webhooks by HTTP. What is named here is what code outside messaging calls (the demo's seeding).
from messaging.sendgrid.identities import (  # noqa: E402
    sender_identity_create,
    sender_identity_set_paused,
    sender_identity_sync,
)

# sender_identity_create(*, tenant, from_email, from_name, reply_to, nickname="") -> EmailSenderIdentity:
#   registers the sender with SendGrid (which mails a verification link); ApplicationError on a refusal;
#   created pending without a provider id when SendGrid cannot be reached (the sync registers it later).
# sender_identity_sync(*, identity) -> EmailSenderIdentity: its verification status read from SendGrid.
# sender_identity_set_paused(*, identity, paused, actor=None, reason="") -> EmailSenderIdentity: the operators'
#   audited pause switch (audit entry sender.pause / sender.resume with the reason); analytics' deliverability
#   breaker pauses through it.
__all__ += ["sender_identity_create", "sender_identity_set_paused", "sender_identity_sync"]

# --- stored events (for analytics) -----------------------------------------------------------------------
# Listeners fired inside the storing transaction (messaging/stored_events.py): events_stored(*, events) with
# the newly inserted message events of one ingest, reply_stored(*, inbound) with a newly created inbound
# message. analytics connects both in its ready() and counts exactly what they report.
from messaging.stored_events import events_stored, reply_stored, sms_inbound_stored  # noqa: E402

__all__ += ["events_stored", "reply_stored", "sms_inbound_stored"]
