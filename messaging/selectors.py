"""Messaging reads."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from messaging.models import OutboundMessage


def outbound_thread_messages(*, contact_campaign_ids: Iterable[int]) -> dict[int, list[dict]]:
    """The mails already out (or possibly out) per contact campaign, oldest first: what a follow-up
    threads onto through In-Reply-To / References."""
    threads: dict[int, list[dict]] = {}
    rows = (
        OutboundMessage.objects.filter(
            contact_campaign_id__in=list(contact_campaign_ids),
            message_id_header__isnull=False,
            status__in=[OutboundMessage.Status.SENT, OutboundMessage.Status.UNKNOWN],
        )
        .order_by("contact_campaign_id", "id")
        .values("id", "contact_campaign_id", "message_id_header", "subject")
    )
    for row in rows:
        threads.setdefault(row["contact_campaign_id"], []).append(row)
    return threads


def outbound_messages_unknown(*, tenant_id: int | None = None) -> QuerySet[OutboundMessage]:
    """Ambiguous sends still waiting for a provider event (what an operator reviews)."""
    qs = OutboundMessage.objects.filter(status=OutboundMessage.Status.UNKNOWN)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return qs.order_by("updated_at")
