"""The outgoing webhooks messaging emits (outreach.webhooks_out): what each one carries.

Each emitting service calls one function here, in its own transaction, at the point where the thing
happens; these only shape the payloads (no HTTP, no extra query)."""
from __future__ import annotations

from outreach import clock
from outreach.webhooks_out.models import EventType
from outreach.webhooks_out.services import Emitted, emit, emit_many


def reply_received(*, inbound, outbound) -> None:
    if inbound.tenant_id is None:
        return  # matched no tenant: nobody to tell
    emit(tenant_id=inbound.tenant_id, type=EventType.REPLY_RECEIVED, occurred_at=inbound.received_at, data={
        "reply_id": inbound.pk, "message_id": getattr(outbound, "pk", None),
        "contact_id": getattr(outbound, "contact_id", None),
        "contact_campaign_id": getattr(outbound, "contact_campaign_id", None),
        "from_email": inbound.from_email, "subject": inbound.subject[:300],
        "classification": inbound.classification, "is_auto_reply": inbound.is_auto_reply,
        "stop_request": inbound.stop_request})


def opted_out(*, row) -> None:
    emit(tenant_id=row.tenant_id, type=EventType.CONTACT_OPTED_OUT, occurred_at=row.created_at, data={
        "channel": row.channel, "address": row.channel_value, "source": row.source, "contact_id": row.contact_id})


def bounced(*, events) -> None:
    """Bounces among a batch of new provider events (webhooks.processing)."""
    emit_many(Emitted(tenant_id=e.tenant_id, type=str(EventType.MESSAGE_BOUNCED), occurred_at=e.occurred_at, data={
        "message_id": (e.message or {}).get("id"), "email": e.email, "bounce_type": e.bounce_type,
        "reason": e.reason[:300]}) for e in events if e.event_type == "bounce" and e.tenant_id is not None)


def sender_paused(*, messages, probe_at, error: str) -> None:
    """The provider outage breaker opened (messaging.delivery.outage): the senders whose mail it holds now."""
    seen = {(m.tenant_id, m.sender_identity_id) for m in messages if m.tenant_id is not None}
    emit_many(Emitted(tenant_id=tenant_id, type=str(EventType.SENDER_PAUSED), occurred_at=clock.now(), data={
        "sender_identity_id": sender_id, "reason": "provider_outage", "provider": "sendgrid",
        "next_probe_at": probe_at.isoformat() if probe_at else None, "error": error[:300]})
        for tenant_id, sender_id in sorted(seen, key=lambda pair: (pair[0], pair[1] or 0)))
