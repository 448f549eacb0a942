"""Processing a stored Inbound Parse delivery: the engine feed for replies.

Parse (messaging.inbound.parsing), recognise a mail to our List-Unsubscribe mailto (an opt-out, not a reply),
deduplicate on the Message-ID, match the reply to its tenant and message (messaging.inbound.matching),
read it (messaging.inbound.analysis: bounce, auto-reply or reply; new text; stop; return date), judge
its authenticity (messaging.inbound.verdicts), store it, and then: a bounce goes the webhook bounce's way
(messaging.inbound.bounce_feed); a held reply moves nothing (its stop request opts out its From address
only); a trusted reply tells the campaign engine and honours a stop request
(messaging.inbound.stop_requests). A failure raises and leaves nothing half-stored; the delivery stays
pending or failed and is retried from the bytes that were received.
"""
from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from campaigns.interface import EngineEvent, contact_campaign_handle_event
from messaging import outgoing_events, stored_events
from messaging.compliance.links import unsubscribe_target_from_mail
from messaging.compliance.opt_outs import unsubscribe_record
from messaging.inbound.analysis import InboundReading, MailToRead, inbound_read
from messaging.inbound.bounce_feed import inbound_bounce_ingest
from messaging.inbound.labels import ReplyClassification
from messaging.inbound.matching import InboundMatch, inbound_match
from messaging.inbound.parsing import ParsedInbound, inbound_parse
from messaging.inbound.stop_requests import stop_request_opt_outs
from messaging.inbound.verdicts import inbound_verdict
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


def _mail_to_read(parsed: ParsedInbound, outbound: OutboundMessage | None) -> MailToRead:
    return MailToRead(subject=parsed.subject, text=parsed.text, html=parsed.html, headers=parsed.headers,
                      from_email=parsed.from_email, message=parsed.message,
                      our_outbound_text=outbound.body_text if outbound is not None else "")


def _inbound_create(*, parsed: ParsedInbound, match: InboundMatch, tenant: Tenant | None, delivery_id: int,
                    reading: InboundReading, verdict: str, received_at: dt.datetime) -> InboundMessage:
    classification = reading.classification
    return InboundMessage.objects.create(
        tenant=tenant, outbound_message=match.outbound, webhook_delivery_id=delivery_id,
        message_id_header=parsed.message_id, in_reply_to=parsed.in_reply_to,
        references=parsed.references, from_email=parsed.from_email, to_email=", ".join(parsed.to),
        subject=parsed.subject, text=parsed.text, html=parsed.html, headers=parsed.headers_text,
        kind=reading.kind, is_auto_reply=reading.kind == InboundMessage.Kind.AUTO_REPLY,
        classification=reading.label, new_text=reading.new_text[:20000],
        classification_confidence=classification.confidence if classification else None,
        stop_request=reading.stop_request, language=classification.language if classification else "",
        return_date=classification.return_date if classification else None,
        bounce_type=reading.bounce.bounce_type if reading.bounce else "",
        review_reason=classification.review_reason if classification else "",
        spf=parsed.spf, dkim=parsed.dkim, spam_score=parsed.spam_score, verdict=verdict,
        review_status=InboundMessage.ReviewStatus.HELD if verdict != "pass" else "",
        processed_at=clock.now(),
    )


def inbound_engine_feed(*, inbound: InboundMessage, match: InboundMatch, from_email: str,
                        occurred_at: dt.datetime) -> None:
    """What a trusted reply does: the engine event for the thread, then the stop request's opt-outs.
    Also used when an operator releases a held reply or corrects a class (messaging.inbound.review)."""
    outbound = match.outbound
    classification = ReplyClassification(label=inbound.classification or "neutral",
                                         confidence=inbound.classification_confidence or 0.0,
                                         stop_request=inbound.stop_request, return_date=inbound.return_date)
    automatic_not_absent = inbound.kind == InboundMessage.Kind.AUTO_REPLY and inbound.classification != "ooo"
    if outbound is not None and outbound.contact_campaign_id and (inbound.stop_request or not automatic_not_absent):
        event = _engine_event_for(classification=classification, auto_reply=inbound.classification == "ooo",
                                  stop_request=inbound.stop_request, outbound=outbound,
                                  occurred_at=occurred_at, inbound_id=inbound.id)
        contact_campaign_handle_event(contact_campaign_id=outbound.contact_campaign_id, event=event)
    if inbound.stop_request:
        # After the engine event (which records the transition at the node the reply answers):
        # this stops every other active campaign of the address too.
        stop_request_opt_outs(match=match, from_email=from_email, detail=f"reply {inbound.message_id_header}"[:300])


def _held_stop_opt_out(*, inbound: InboundMessage, match: InboundMatch, from_email: str) -> None:
    """A held (unauthenticated) reply's stop request: the From address only, never the thread's address."""
    if inbound.stop_request:
        sender_only = InboundMatch(tenant_id=match.tenant_id, recipient_tenant_ids=match.recipient_tenant_ids)
        stop_request_opt_outs(match=sender_only, from_email=from_email,
                              detail=f"held reply {inbound.message_id_header}"[:300])


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
    # When the reply reached us, not when this (maybe retried) processing runs: a `within` window the
    # reply really met must still count, and relative dates ("back Monday") are read from that day.
    received_at = delivery.received_at
    # The classifier may call the AI over the network: do it before opening the transaction.
    reading = inbound_read(mail=_mail_to_read(parsed, outbound), tenant=tenant, received_at=received_at)
    verdict = inbound_verdict(parsed=parsed)
    with transaction.atomic():
        try:
            with transaction.atomic():
                inbound = _inbound_create(parsed=parsed, match=match, tenant=tenant, delivery_id=delivery_id,
                                          reading=reading, verdict=verdict, received_at=received_at)
        except IntegrityError:
            # The same reply arrived twice at once; the other copy is the one that counts.
            _mark_processed(delivery_id)
            return None
        if reading.bounce is not None:
            # A bounce notice is a bounce, never a reply: the outbox row and suppressions move exactly as
            # for a webhook bounce, and the engine hears a bounce, not a reply.
            inbound_bounce_ingest(bounce=reading.bounce, match=match, from_email=parsed.from_email,
                                  received_at=received_at, delivery_id=delivery_id, reference=parsed.message_id)
        elif verdict != "pass":
            _held_stop_opt_out(inbound=inbound, match=match, from_email=parsed.from_email)
        else:
            inbound_engine_feed(inbound=inbound, match=match, from_email=parsed.from_email, occurred_at=received_at)
        if reading.bounce is None:
            outgoing_events.reply_received(inbound=inbound, outbound=match.outbound)
        stored_events.reply_stored.send(inbound=inbound)
        _mark_processed(delivery_id)
    return inbound
