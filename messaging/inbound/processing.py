"""Processing a stored Inbound Parse delivery: the engine feed for replies.

Parse (messaging.inbound.parsing), recognise a mail to our List-Unsubscribe mailto (an opt-out, not a reply),
deduplicate on the Message-ID, match the reply to its tenant and message (messaging.inbound.matching),
classify it (messaging.inbound.classification), store it, tell the campaign engine, and honour a stop
request (messaging.inbound.stop_requests). A failure raises and leaves nothing half-stored; the delivery
stays pending or failed and is retried from the bytes that were received.
"""
from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from campaigns.interface import EngineEvent, contact_campaign_handle_event
from messaging import outgoing_events
from messaging.compliance.links import unsubscribe_target_from_mail
from messaging.compliance.opt_outs import unsubscribe_record
from messaging.inbound.classification import classify_reply
from messaging.inbound.labels import ReplyClassification
from messaging.inbound.matching import InboundMatch, inbound_match
from messaging.inbound.parsing import ParsedInbound, inbound_parse
from messaging.inbound.reply_text import is_auto_reply, reply_text_without_quote
from messaging.inbound.stop_requests import stop_request_opt_outs
from messaging.models import InboundMessage, OutboundMessage, UnsubscribeSource, WebhookDelivery
from outreach import clock
from outreach.tenancy.models import Tenant


def _engine_event_for(*, classification: ReplyClassification | None, auto_reply: bool, stop_request: bool,
                      outbound: OutboundMessage, occurred_at: dt.datetime, inbound_id: int) -> EngineEvent:
    detail: dict = {"inbound_message_id": inbound_id}
    if classification is not None:
        detail["confidence"] = round(float(classification.confidence), 3)
    if stop_request:
        event_type = "stop_request"
    elif auto_reply or (classification is not None and classification.label == "ooo"):
        return_date = getattr(classification, "return_date", None)
        detail["return_date"] = return_date.isoformat() if hasattr(return_date, "isoformat") else return_date
        event_type = "reply_ooo"
    elif classification is not None and classification.label in ("positive", "negative", "neutral"):
        event_type = f"reply_{classification.label}"
    else:
        event_type = "reply"
    return EngineEvent(type=event_type, occurred_at=occurred_at, node_id=outbound.node_id or None,
                       node_visit=outbound.node_visit, outbound_message_id=outbound.id, detail=detail)


def _mark_processed(delivery_id: int) -> None:
    WebhookDelivery.objects.filter(id=delivery_id).update(status=WebhookDelivery.Status.PROCESSED,
                                                          processed_at=clock.now(), error="")


def _pending_delivery(delivery_id: int) -> WebhookDelivery | None:
    return WebhookDelivery.objects.filter(
        id=delivery_id, kind=WebhookDelivery.Kind.SENDGRID_INBOUND,
        status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED],
    ).first()


def _mailto_unsubscribe_recorded(*, parsed: ParsedInbound, delivery_id: int) -> bool:
    """A mail to our List-Unsubscribe mailto is an opt-out, not a reply: record it and say so."""
    target = unsubscribe_target_from_mail(to_addresses=[*parsed.to, *parsed.cc],
                                          from_address=parsed.from_email, subject=parsed.subject)
    if target is None:
        return False
    with transaction.atomic():
        unsubscribe_record(tenant=target.tenant_id, channel=target.channel, value=target.value,
                           source=UnsubscribeSource.ONE_CLICK, detail="List-Unsubscribe mailto")
        _mark_processed(delivery_id)
    return True


def _reply_tenant(match: InboundMatch) -> Tenant | None:
    if match.tenant_id is None:
        return None
    if match.outbound is not None:
        return match.outbound.tenant
    return Tenant.objects.filter(id=match.tenant_id).first()


def _inbound_create(*, parsed: ParsedInbound, match: InboundMatch, tenant: Tenant | None, delivery_id: int,
                    auto_reply: bool, classification: ReplyClassification) -> InboundMessage:
    return InboundMessage.objects.create(
        tenant=tenant, outbound_message=match.outbound, webhook_delivery_id=delivery_id,
        message_id_header=parsed.message_id, in_reply_to=parsed.in_reply_to,
        references=parsed.references, from_email=parsed.from_email, to_email=", ".join(parsed.to),
        subject=parsed.subject, text=parsed.text, html=parsed.html, headers=parsed.headers_text,
        is_auto_reply=auto_reply, classification="ooo" if auto_reply else classification.label,
        classification_confidence=classification.confidence,
        stop_request=bool(classification.stop_request) and not auto_reply,
        return_date=classification.return_date, processed_at=clock.now(),
    )


def inbound_delivery_process(*, delivery_id: int) -> InboundMessage | None:
    """Parse, deduplicate, match, classify, store, tell the engine. Returns the new InboundMessage
    (None for a duplicate or a mailto unsubscribe). Raises on failure, leaving nothing half-stored."""
    delivery = _pending_delivery(delivery_id)
    if delivery is None:
        return None
    parsed = inbound_parse(body=bytes(delivery.body), content_type=str(delivery.headers.get("content_type", "")))
    if _mailto_unsubscribe_recorded(parsed=parsed, delivery_id=delivery_id):
        return None
    if InboundMessage.objects.filter(message_id_header=parsed.message_id).exists():
        _mark_processed(delivery_id)
        return None
    match = inbound_match(parsed=parsed)
    outbound = match.outbound
    tenant = _reply_tenant(match)
    auto_reply = is_auto_reply(headers=parsed.headers, subject=parsed.subject, text=parsed.text)
    # When the reply reached us, not when this (maybe retried) processing runs: a `within` window the
    # reply really met must still count, and relative dates ("back Monday") are read from that day.
    received_at = delivery.received_at
    # The classifier may call the AI over the network: do it before opening the transaction.
    classification = classify_reply(tenant=tenant, subject=parsed.subject,
                                    text=reply_text_without_quote(parsed.text), headers=parsed.headers,
                                    received_at=received_at)
    with transaction.atomic():
        try:
            with transaction.atomic():
                inbound = _inbound_create(parsed=parsed, match=match, tenant=tenant, delivery_id=delivery_id,
                                          auto_reply=auto_reply, classification=classification)
        except IntegrityError:
            # The same reply arrived twice at once; the other copy is the one that counts.
            _mark_processed(delivery_id)
            return None
        if outbound is not None and outbound.contact_campaign_id:
            event = _engine_event_for(classification=classification, auto_reply=auto_reply,
                                      stop_request=inbound.stop_request, outbound=outbound, occurred_at=received_at,
                                      inbound_id=inbound.id)
            contact_campaign_handle_event(contact_campaign_id=outbound.contact_campaign_id, event=event)
        outgoing_events.reply_received(inbound=inbound, outbound=outbound)
        if inbound.stop_request:
            # After the engine event (which records the transition at the node the reply answers):
            # this stops every other active campaign of the address too.
            stop_request_opt_outs(match=match, from_email=parsed.from_email,
                                  detail=f"reply {parsed.message_id}"[:300])
        _mark_processed(delivery_id)
    return inbound
