"""Stop requests in replies: whoever asked is opted out, even when the reply cannot be tied to one tenant."""
from __future__ import annotations

import logging

from messaging.compliance.opt_outs import unsubscribe_record
from messaging.inbound.matching import InboundMatch, latest_sent_by_tenant
from messaging.models import UnsubscribeSource
from outreach.addresses import InvalidAddress, normalise_email
from outreach.channels import CHANNEL_EMAIL

logger = logging.getLogger(__name__)


def _opt_out(*, tenant_id: int, value: str, detail: str, contact=None) -> None:
    """unsubscribe_record, except that an address the validator refuses is logged, not raised: raising
    would fail the delivery on every retry and lose the reply itself."""
    try:
        unsubscribe_record(tenant=tenant_id, channel=CHANNEL_EMAIL, value=value, source=UnsubscribeSource.REPLY,
                                      detail=detail, contact=contact)
    except InvalidAddress:
        logger.warning("stop request from %r (tenant %s) not recorded: not a valid address", value, tenant_id)


def stop_request_opt_outs(*, match: InboundMatch, from_email: str, detail: str) -> None:
    """A stop request is never lost, even when the reply could not be tied to one tenant.

    - matched to a message: that message's address, in its tenant (the usual case); and, when the
      reply comes from another address (the mail was forwarded and a colleague asks to be removed),
      the sender's address too, in the same tenant: the person who asked must be opted out;
    - one tenant told from the recipients, but it never mailed the sender: the sender's address there;
    - ambiguous (several tenants, or none named by the recipients): the address is opted out in every
      candidate tenant that mailed it (the named ones; when none is named, every tenant that did). If
      several tenants are named and none of them mailed it, in each named tenant (the person wrote to
      all of them). A wrong extra opt-out costs a lead; a lost one breaks the law and the person's trust.
    """
    if match.outbound is not None:
        _opt_out(tenant_id=match.outbound.tenant_id, value=match.outbound.to_address, detail=detail,
                 contact=match.outbound.contact)
        if from_email:
            try:
                sender = normalise_email(from_email)
            except InvalidAddress:
                logger.warning("stop request from %r (tenant %s) not recorded for the sender: not a valid address",
                               from_email, match.outbound.tenant_id)
                return
            if sender != match.outbound.to_address.strip().lower():
                _opt_out(tenant_id=match.outbound.tenant_id, value=sender, detail=f"{detail} (sender)"[:300])
        return
    if not from_email:
        return
    if match.tenant_id is not None:
        _opt_out(tenant_id=match.tenant_id, value=from_email, detail=detail)
        return
    ambiguous_detail = f"{detail} (tenant ambiguous)"[:300]
    latest = latest_sent_by_tenant(address=from_email, tenant_ids=match.recipient_tenant_ids or None)
    for tenant_id, outbound in sorted(latest.items()):
        _opt_out(tenant_id=tenant_id, value=outbound.to_address, detail=ambiguous_detail, contact=outbound.contact)
    if not latest:
        for tenant_id in sorted(match.recipient_tenant_ids):
            _opt_out(tenant_id=tenant_id, value=from_email, detail=ambiguous_detail)
