"""Listeners told of what messaging has just stored, inside the storing transaction (analytics counts).

Declared here (messaging must not import analytics) and connected by higher apps in their ready(); exported
through messaging.interface. A listener runs in the caller's transaction: what it writes commits or rolls
back with the events, and a failure in it fails the ingest (which is retried), so nothing is lost.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from outreach.extensions import Listeners

# events_stored(*, events: list[NormalisedEvent]): the events this transaction inserted into message_events
# (never a duplicate), linked (event.message, event.tenant_id) and classified (is_machine, bounce_type).
events_stored: Listeners[Callable[..., Any]] = Listeners("messaging.events_stored")
# reply_stored(*, inbound: InboundMessage): an inbound message this transaction has just created.
reply_stored: Listeners[Callable[..., Any]] = Listeners("messaging.reply_stored")
# sms_inbound_stored(*, inbound_sms): an inbound text message (a reply, or a keyword such as STOP/START/HELP)
# this transaction has just stored, deduped on its MessageSid (issue 15: the Twilio webhook fires it; the
# SMS consent rules act on the keywords, the reply pipeline on the rest).
sms_inbound_stored: Listeners[Callable[..., Any]] = Listeners("messaging.sms_inbound_stored")
