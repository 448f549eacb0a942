"""Opt-outs (`contact_unsubscribes`): a person said stop.

Keyed by (tenant, channel, normalised address), never by contact, so an opt-out outlives deleting and
re-uploading the contact. Permanent until an operator resubscribes the address with an audit entry.
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from campaigns.interface import contact_campaigns_stop_for_address
from messaging import outgoing_events
from messaging.compliance.audit import delete_audited
from messaging.compliance.validation import require_address_channel, tenant_id_of
from messaging.models import ContactUnsubscribe, UnsubscribeSource
from outreach.addresses import normalise_address
from outreach.errors import ApplicationError
from outreach.tenancy.models import Tenant

logger = logging.getLogger("messaging.compliance")


def unsubscribe_record(*, tenant: Tenant | int, channel: str, value: str, source: str, detail: str = "",
                       contact=None) -> ContactUnsubscribe:
    """Record an opt-out (idempotent: the first record stands) and stop the address's active campaigns.

    The opt-out is what must never be lost. Stopping the campaigns runs in a savepoint: if it fails, the
    opt-out still commits and the failure is logged; the send-time check blocks every later mail to the
    address anyway, and a blocked send stops its campaign through the engine's `suppressed` event.
    """
    require_address_channel(channel)
    if source not in UnsubscribeSource.values:
        raise ApplicationError(f"Unknown unsubscribe source {source!r}.", field="source")
    tenant_id = tenant_id_of(tenant)
    normalised = normalise_address(channel, value)
    with transaction.atomic():
        row, created = ContactUnsubscribe.objects.get_or_create(
            tenant_id=tenant_id, channel=channel, channel_value=normalised,
            defaults={"source": source, "detail": detail[:2000], "contact": contact},
        )
        if created:
            outgoing_events.opted_out(row=row)
        # Run even when the row already existed: a campaign enrolled since must stop too (a no-op otherwise).
        try:
            with transaction.atomic():
                contact_campaigns_stop_for_address(
                    tenant_id=tenant_id, channel=channel, value=normalised,
                    reason=f"unsubscribe:{row.source}",
                    event_type="stop_request" if source == UnsubscribeSource.REPLY else "unsubscribe",
                )
        except Exception:
            logger.exception("opt-out of %s kept, but stopping its campaigns failed (tenant %s)",
                             normalised, tenant_id)
    row.was_created = created  # lets the API answer 201 for a new opt-out and 200 for a repeat
    return row


def unsubscribe_remove(*, tenant: Tenant, channel: str, value: str, actor: Any, reason: str,
                       actor_label: str = "") -> ContactUnsubscribe:
    """Resubscribe an address: delete its opt-out and audit who, when, why and what was removed."""
    require_address_channel(channel)
    normalised = normalise_address(channel, value)
    return delete_audited(
        ContactUnsubscribe.objects.filter(tenant=tenant, channel=channel, channel_value=normalised),
        tenant=tenant, action="unsubscribe.remove", reason=reason, actor=actor, actor_label=actor_label,
        reason_needed="Say why the address is resubscribed (it is kept in the audit trail).",
        missing=f"{normalised} is not unsubscribed.",
    )
