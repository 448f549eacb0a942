"""An operator works the replies inbox: release or discard a held reply, correct a reply's class.

Each is audited. Releasing feeds the engine exactly as a trusted reply would have been fed on arrival;
a correction stores the new class and re-feeds the engine with the corrected event (a corrected stop
request also records the opt-out). Only the row's state moves here; the engine decides what the event
does at the contact's current node.
"""
from __future__ import annotations

from typing import Any

from django.db import transaction

from messaging.inbound.matching import InboundMatch
from messaging.inbound.processing import inbound_engine_feed
from messaging.models import InboundMessage
from outreach.errors import ApplicationError
from outreach.tenancy.services import audit_record

CORRECTABLE_LABELS = ("positive", "negative", "neutral", "ooo")


def _locked(inbound: InboundMessage) -> InboundMessage:
    rows = InboundMessage.objects.select_for_update(of=("self",))
    return rows.select_related("outbound_message", "webhook_delivery").get(pk=inbound.pk)


def _feed(row: InboundMessage) -> None:
    match = InboundMatch(outbound=row.outbound_message, tenant_id=row.tenant_id,
                         recipient_tenant_ids=frozenset({row.tenant_id}) if row.tenant_id else frozenset())
    occurred_at = row.webhook_delivery.received_at if row.webhook_delivery is not None else row.received_at
    inbound_engine_feed(inbound=row, match=match, from_email=row.from_email, occurred_at=occurred_at)


def inbound_release(*, inbound: InboundMessage, actor: Any = None, reason: str = "") -> InboundMessage:
    """A held reply the operator trusts: it now does what it would have done on arrival."""
    with transaction.atomic():
        row = _locked(inbound)
        if row.review_status != InboundMessage.ReviewStatus.HELD:
            raise ApplicationError("Only a held reply can be released.", field="review_status")
        row.review_status = InboundMessage.ReviewStatus.RELEASED
        row.save(update_fields=["review_status"])
        _feed(row)
        audit_record(tenant=row.tenant, actor=actor, action="reply.release", target=row,
                     detail={"reason": reason, "verdict": row.verdict})
    return row


def inbound_discard(*, inbound: InboundMessage, actor: Any = None, reason: str = "") -> InboundMessage:
    """A held reply the operator does not trust: it stays stored and moves nothing, ever."""
    with transaction.atomic():
        row = _locked(inbound)
        if row.review_status != InboundMessage.ReviewStatus.HELD:
            raise ApplicationError("Only a held reply can be discarded.", field="review_status")
        row.review_status = InboundMessage.ReviewStatus.DISCARDED
        row.save(update_fields=["review_status"])
        audit_record(tenant=row.tenant, actor=actor, action="reply.discard", target=row,
                     detail={"reason": reason, "verdict": row.verdict})
    return row


def inbound_reclassify(*, inbound: InboundMessage, label: str, stop_request: bool, actor: Any = None,
                       reason: str = "") -> InboundMessage:
    """Correct a trusted reply's class (and stop request); the engine hears the corrected event."""
    if label not in CORRECTABLE_LABELS:
        raise ApplicationError(f"label must be one of {', '.join(CORRECTABLE_LABELS)}", field="label")
    with transaction.atomic():
        row = _locked(inbound)
        if row.kind == InboundMessage.Kind.BOUNCE:
            raise ApplicationError("A bounce is not a reply: it has no class to correct.", field="kind")
        if row.review_status in (InboundMessage.ReviewStatus.HELD, InboundMessage.ReviewStatus.DISCARDED):
            raise ApplicationError("Release a held reply before correcting it.", field="review_status")
        before = {"label": row.classification, "stop_request": row.stop_request, "kind": row.kind}
        row.classification = label
        # Stop wins: a correction never withdraws a stop request that was already honoured.
        row.stop_request = row.stop_request or stop_request
        row.kind = InboundMessage.Kind.AUTO_REPLY if label == "ooo" else InboundMessage.Kind.REPLY
        row.is_auto_reply = label == "ooo"
        row.review_status = InboundMessage.ReviewStatus.CORRECTED
        row.save(update_fields=["classification", "stop_request", "kind", "is_auto_reply", "review_status"])
        _feed(row)
        audit_record(tenant=row.tenant, actor=actor, action="reply.reclassify", target=row,
                     detail={"reason": reason, "before": before,
                             "after": {"label": label, "stop_request": row.stop_request}})
    return row
