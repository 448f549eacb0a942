"""Matching a reply to what it answers: its tenant and, when it can be told, the outbound message.

A reply is matched first by the signed token of its reply address (reply+<tenant>-<HMAC>@INBOUND_REPLY_DOMAIN,
messaging.inbound.reply_addresses), then through ``In-Reply-To`` / ``References`` (which hold the
``Message-ID`` we set on every outbound mail). Failing that, the tenant is told from the reply's
recipients (a sender identity's reply-to or from address, or our List-Unsubscribe mailto), and the reply
goes to that tenant's latest mail to the replying address. When no tenant, or more than one, can be told,
the reply is stored without a tenant for an operator and the engine hears nothing (a stop request is still
honoured: messaging.inbound.stop_requests).
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q
from django.db.models.functions import Lower

from messaging.compliance.links import unsubscribe_mailto_tenant_id
from messaging.inbound.parsing import MESSAGE_ID_RE, ParsedInbound
from messaging.inbound.reply_addresses import is_inbound_domain_address, reply_address_tenant_id
from messaging.models import EmailSenderIdentity, OutboundMessage
from outreach.tenancy.models import Tenant

_SENT_STATUSES = ("sent", "unknown")


@dataclass
class InboundMatch:
    """What a reply answers. ``tenant_id`` is set only when exactly one tenant could be told;
    ``recipient_tenant_ids`` are the tenants its recipients name (empty: none could be told)."""

    outbound: OutboundMessage | None = None
    tenant_id: int | None = None
    recipient_tenant_ids: frozenset[int] = frozenset()


def inbound_recipient_tenant_ids(*, parsed: ParsedInbound) -> frozenset[int]:
    """Tenants the reply was addressed to: To, Cc and the envelope recipients matched against sender
    identities' reply-to and from addresses, and our List-Unsubscribe mailto addresses (whose tag names
    the tenant; the tag's HMAC cannot be checked against an alias, so it is a routing hint only)."""
    recipients = {address.strip().lower() for address in [*parsed.to, *parsed.cc]
                  if address and address.strip() and not is_inbound_domain_address(address)}
    if not recipients:
        return frozenset()
    tenant_ids = set(
        EmailSenderIdentity.objects.annotate(reply_lower=Lower("reply_to"), from_lower=Lower("from_email"))
        .filter(Q(reply_lower__in=recipients) | Q(from_lower__in=recipients))
        .values_list("tenant_id", flat=True)
    )
    hinted = {unsubscribe_mailto_tenant_id(address=address) for address in recipients} - {None}
    if hinted - tenant_ids:
        tenant_ids |= set(Tenant.objects.filter(id__in=hinted - tenant_ids).values_list("id", flat=True))
    return frozenset(tenant_ids)


def latest_sent_by_tenant(*, address: str, tenant_ids: frozenset[int] | None) -> dict[int, OutboundMessage]:
    """Each tenant's latest sent mail to the address (only the given tenants; None: every tenant)."""
    if not address:
        return {}
    messages = OutboundMessage.objects.filter(to_address=address, status__in=_SENT_STATUSES)
    if tenant_ids is not None:
        if not tenant_ids:
            return {}
        messages = messages.filter(tenant_id__in=tenant_ids)
    return {m.tenant_id: m for m in messages.order_by("tenant_id", "-created_at").distinct("tenant_id")}


def reply_token_tenant_id(*, parsed: ParsedInbound) -> int | None:
    """The tenant the recipients' signed reply address names (None: no valid token, or tokens of several)."""
    named = {reply_address_tenant_id(address) for address in [*parsed.to, *parsed.cc]} - {None}
    if len(named) != 1:
        return None
    [tenant_id] = named
    return tenant_id if Tenant.objects.filter(id=tenant_id).exists() else None


def _threaded_outbound(*, parsed: ParsedInbound, tenant_id: int | None) -> OutboundMessage | None:
    """In-Reply-To first, then References from the newest; only the token's tenant's mail when it names one."""
    candidates = MESSAGE_ID_RE.findall(parsed.in_reply_to) + list(reversed(MESSAGE_ID_RE.findall(parsed.references)))
    if not candidates:
        return None
    messages = OutboundMessage.objects.filter(message_id_header__in=candidates)
    if tenant_id is not None:
        messages = messages.filter(tenant_id=tenant_id)
    found = {m.message_id_header: m for m in messages}
    return next((found[token] for token in candidates if token in found), None)


def inbound_match(*, parsed: ParsedInbound) -> InboundMatch:
    """The signed reply address's token first (it names the tenant and cannot be forged), then our
    threading headers (our Message-IDs are unguessable: they name the message, hence its tenant; with a
    token, only that tenant's messages). With a token and no thread, that tenant's latest mail to the
    sender. Else the tenant(s) the recipients name: with one, that tenant's latest sent mail to the
    sender (none: the reply still belongs to the tenant); with several, the one of them that mailed the
    sender, if only one did. Never another tenant's mail."""
    token_tenant_id = reply_token_tenant_id(parsed=parsed)
    outbound = _threaded_outbound(parsed=parsed, tenant_id=token_tenant_id)
    if outbound is not None:
        return InboundMatch(outbound=outbound, tenant_id=outbound.tenant_id)
    if token_tenant_id is not None:
        named = frozenset({token_tenant_id})
        latest = latest_sent_by_tenant(address=parsed.from_email, tenant_ids=named)
        return InboundMatch(outbound=latest.get(token_tenant_id), tenant_id=token_tenant_id,
                            recipient_tenant_ids=named)
    tenant_ids = inbound_recipient_tenant_ids(parsed=parsed)
    if not tenant_ids:
        return InboundMatch()
    latest = latest_sent_by_tenant(address=parsed.from_email, tenant_ids=tenant_ids)
    if len(tenant_ids) == 1:
        [tenant_id] = tenant_ids
        return InboundMatch(outbound=latest.get(tenant_id), tenant_id=tenant_id, recipient_tenant_ids=tenant_ids)
    if len(latest) == 1:
        [(tenant_id, outbound)] = latest.items()
        return InboundMatch(outbound=outbound, tenant_id=tenant_id, recipient_tenant_ids=tenant_ids)
    return InboundMatch(recipient_tenant_ids=tenant_ids)


def inbound_match_outbound(*, parsed: ParsedInbound) -> OutboundMessage | None:
    return inbound_match(parsed=parsed).outbound
