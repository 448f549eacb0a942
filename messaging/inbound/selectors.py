"""Reads of the replies inbox, shared by the admin and the API (`GET /api/v1/replies`).

`replies_list` takes the filters as keyword arguments so another caller (another API filter, a report) can
add its own without copying the query. Ordering is (received_at desc, id desc): stable for cursor pages.
"""
from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from messaging.models import InboundMessage

# A reply an operator should look at: held for its verdict, one the rules could not read, or one the reading
# flagged (review_reason, e.g. a weekday that contradicts its date) that nobody has worked yet.
LOW_CONFIDENCE = 0.5
NEEDS_REVIEW = Q(review_status=InboundMessage.ReviewStatus.HELD) | Q(
    kind=InboundMessage.Kind.REPLY, classification_confidence__lt=LOW_CONFIDENCE,
    review_status=InboundMessage.ReviewStatus.NONE) | (
    Q(review_status=InboundMessage.ReviewStatus.NONE) & ~Q(review_reason=""))
# The "class" an operator filters on: the label for replies and auto-replies, "bounce" for bounces.
REPLY_CLASSES = ("positive", "negative", "neutral", "ooo", "auto_reply", "bounce", "stop")


def reply_class_filter(reply_class: str) -> Q:
    if reply_class == "bounce":
        return Q(kind=InboundMessage.Kind.BOUNCE)
    if reply_class == "auto_reply":
        return Q(kind=InboundMessage.Kind.AUTO_REPLY) & ~Q(classification="ooo")
    if reply_class == "stop":
        return Q(stop_request=True)
    return Q(classification=reply_class) & ~Q(kind=InboundMessage.Kind.BOUNCE)


def replies_list(*, tenant_id: int | None, reply_class: str | None = None, needs_review: bool | None = None,
                 held: bool | None = None, contact_id: int | None = None, campaign_id: int | None = None,
                 received_since: dt.datetime | None = None) -> QuerySet[InboundMessage]:
    """Replies (newest first), of one tenant (None: every tenant, for operators)."""
    qs = InboundMessage.objects.select_related(
        "outbound_message", "outbound_message__contact_campaign")
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if reply_class:
        qs = qs.filter(reply_class_filter(reply_class))
    if needs_review is not None:
        qs = qs.filter(NEEDS_REVIEW) if needs_review else qs.exclude(NEEDS_REVIEW)
    if held is not None:
        held_q = Q(review_status=InboundMessage.ReviewStatus.HELD)
        qs = qs.filter(held_q) if held else qs.exclude(held_q)
    if contact_id is not None:
        qs = qs.filter(outbound_message__contact_id=contact_id)
    if campaign_id is not None:
        qs = qs.filter(outbound_message__contact_campaign__campaign_id=campaign_id)
    if received_since is not None:
        qs = qs.filter(received_at__gte=received_since)
    return qs.order_by("-received_at", "-id")
