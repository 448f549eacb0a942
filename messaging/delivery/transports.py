"""The provider registry: one transport per channel (the habit of healthchecks' hc/api/transports.py).

A transport turns a claimed outbox row into a provider request (`prepare`) and makes the request (`send`).
The two steps are apart on purpose: delivery prepares the request, then commits the "request started"
marker (and re-checks policy in that statement), and only then calls `send`. Preparing can fail without
consequence (the row never reached the provider, lease recovery re-queues it); once `send` is called the
message may be out.

`send` returns the provider's message id, or raises `SendGridError` whose `kind` (permanent, rate limited,
transient, ambiguous) tells delivery's outcome handling what to do; a transport for another provider maps
its failures onto the same kinds. The SMS issue registers a Twilio transport for channel "sms" here.
"""
from __future__ import annotations

from typing import Any, ClassVar

from messaging.delivery.rendering import Thread, mail_body
from messaging.models import EmailSenderIdentity, OutboundMessage
from messaging.sendgrid import client as sg
from outreach.channels import CHANNEL_EMAIL


class Transport:
    """How one channel's messages reach their provider."""

    channel: ClassVar[str]

    def prepare(self, *, message: OutboundMessage, sender: EmailSenderIdentity, message_id: str, thread: Thread,
                subject: str) -> Any:
        """The provider request for `message`: no side effect, nothing sent."""
        raise NotImplementedError

    def send(self, request: Any) -> str | None:
        """Make the request; returns the provider's message id (if it named one). Raises SendGridError."""
        raise NotImplementedError


class EmailTransport(Transport):
    """Email through SendGrid's /v3/mail/send."""

    channel = CHANNEL_EMAIL

    def prepare(self, *, message: OutboundMessage, sender: EmailSenderIdentity, message_id: str, thread: Thread,
                subject: str) -> dict[str, Any]:
        return mail_body(message=message, sender=sender, message_id=message_id, thread=thread, subject=subject)

    def send(self, request: dict[str, Any]) -> str | None:
        # Through the module attribute, so a test can stand in for the client (sg.mail_send).
        return sg.mail_send(body=request).message_id


_TRANSPORTS: dict[str, Transport] = {}


def transport_register(transport: Transport) -> Transport:
    """Make `transport` the one for its channel (a later registration for the same channel replaces it)."""
    _TRANSPORTS[transport.channel] = transport
    return transport


def transport_for(channel: str) -> Transport:
    """The transport of `channel`; KeyError when none is registered (nothing can send on it)."""
    try:
        return _TRANSPORTS[channel]
    except KeyError:
        raise KeyError(f"no transport registered for channel {channel!r}") from None


transport_register(EmailTransport())
