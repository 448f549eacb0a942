"""Messaging writes: the entry points other apps (and the admin) call.

The implementations live next to what they drive: delivery (``messaging.delivery``), webhook
processing (``messaging.webhooks.processing``), replies (``messaging.inbound``), sender
identities (``messaging.sendgrid.identities``), opt-outs and suppressions (``messaging.compliance``).
"""
from __future__ import annotations

from messaging.delivery import outbound_messages_deliver, outbound_messages_recover_stale
from messaging.inbound import inbound_delivery_process
from messaging.sendgrid.identities import (
    sender_identities_sync,
    sender_identity_create,
    sender_identity_resend_verification,
    sender_identity_set_paused,
    sender_identity_sync,
)
from messaging.webhooks.processing import webhook_deliveries_process, webhook_delivery_store

__all__ = [
    "inbound_delivery_process",
    "outbound_messages_deliver",
    "outbound_messages_recover_stale",
    "sender_identities_sync",
    "sender_identity_create",
    "sender_identity_resend_verification",
    "sender_identity_set_paused",
    "sender_identity_sync",
    "webhook_deliveries_process",
    "webhook_delivery_store",
]
