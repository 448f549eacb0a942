"""What other apps may use of messaging (docs/internal-interfaces.md#messaging).

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
