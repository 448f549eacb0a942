"""Linking events to the outbound messages (and tenants) they are about.

custom_args outbound_message_id, else the sg_message_id prefix, else (async bounces) the address's latest
sent message: in the tenant the custom args name, when they do; without a tenant, only when exactly one
tenant mailed the address recently (else the event stays unlinked). A message found by id or prefix is
taken only when the event's tenant, recipient and sg_message_id agree with it; else the event is stored
unmatched, `raw.link_refused` saying why. Also what a message's delivery time
says about its clicks (a click within seconds of delivery is a link scanner's).
"""
from __future__ import annotations

import datetime as dt

import orjson
from django.conf import settings
from django.db.models import Q

from messaging.models import MessageEvent, OutboundMessage
from messaging.webhooks.address_policy import ADDRESS_LEVEL_ACTIONS, compliance_action
from messaging.webhooks.events import NormalisedEvent
from outreach import clock
from outreach.tenancy.models import Tenant

_MESSAGE_FIELDS = ("id", "tenant_id", "contact_campaign_id", "node_id", "node_visit", "status", "to_address",
                   "sent_at", "provider_message_id", "status_reason")
# Fallback to "the address's latest message" only for events that may lack sg_message_id.
ADDRESS_FALLBACK_EVENTS = frozenset({"bounce", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"})
_SENT_STATUSES = ("sent", "unknown")


def _messages_by_id(events: list[NormalisedEvent]) -> dict[int, dict]:
    ids = {e.custom_message_id for e in events if e.custom_message_id}
    if not ids:
        return {}
    return {row["id"]: row for row in OutboundMessage.objects.filter(id__in=ids).values(*_MESSAGE_FIELDS)}


def _messages_by_prefix(events: list[NormalisedEvent], by_id: dict[int, dict]) -> dict[str, dict]:
    """Messages by provider message id, for the events their custom args did not already link."""
    prefixes = {e.message_prefix for e in events
                if e.message_prefix and not (e.custom_message_id and e.custom_message_id in by_id)}
    if not prefixes:
        return {}
    return {row["provider_message_id"]: row
            for row in OutboundMessage.objects.filter(provider_message_id__in=prefixes).values(*_MESSAGE_FIELDS)}


def _link_by_address(unmatched: list[NormalisedEvent]) -> None:
    latest, ambiguous = _latest_messages_by_address({(e.custom_tenant_id, e.email) for e in unmatched})
    for event in unmatched:
        event.message = latest.get((event.custom_tenant_id, event.email))
        if event.message is None and not event.custom_tenant_id:
            event.address_tenant_ids = ambiguous.get(event.email, ())
    _address_tenants_beyond_window(unmatched)


def _assign_tenants(events: list[NormalisedEvent]) -> None:
    """The message's tenant, else the tenant the custom args name if it exists."""
    tenant_hints = {e.custom_tenant_id for e in events if e.message is None and e.custom_tenant_id}
    known_tenants: set[int] = set()
    if tenant_hints:
        known_tenants = set(Tenant.objects.filter(id__in=tenant_hints).values_list("id", flat=True))
    for event in events:
        if event.message is not None:
            event.tenant_id = event.message["tenant_id"]
        elif event.custom_tenant_id in known_tenants:
            event.tenant_id = event.custom_tenant_id


def _disagreement(event: NormalisedEvent, message: dict) -> str | None:
    """Why ``message`` is not the one ``event`` is about, or None when tenant, recipient and (once both are
    known) SendGrid's message id agree. Custom args alone prove nothing: another installation sharing the
    SendGrid account, or reaching the same simulator, numbers its messages and tenants from 1 too."""
    if event.custom_tenant_id is not None and event.custom_tenant_id != message["tenant_id"]:
        return f"tenant {event.custom_tenant_id} named, message {message['id']} is tenant {message['tenant_id']}'s"
    if event.custom_message_id and event.custom_tenant_id is None:
        return f"message {event.custom_message_id} named without its tenant"
    if event.email and event.email != (message["to_address"] or "").lower():
        return f"recipient {event.email} is not message {message['id']}'s"
    known = message["provider_message_id"]
    if known and event.message_prefix and event.message_prefix != known:
        return f"sg_message_id {event.message_prefix} is not message {message['id']}'s {known}"
    return None


def _refuse_link(event: NormalisedEvent, reason: str) -> None:
    """Stored unmatched, with the reason in its raw fields (the admin shows it), and trusted for nothing else:
    no tenant, no address fallback, so no enrolment moves and no tenant's policy changes."""
    event.message = None
    event.link_refused = reason
    event.custom_tenant_id = None
    raw = orjson.loads(event.raw_json)
    raw["link_refused"] = reason
    event.raw_json = orjson.dumps(raw).decode("utf-8")


def link_messages(events: list[NormalisedEvent]) -> None:
    """Set each event's message (a dict of _MESSAGE_FIELDS) and tenant, where they can be told."""
    by_id = _messages_by_id(events)
    by_prefix = _messages_by_prefix(events, by_id)
    unmatched = []
    for event in events:
        message = by_id.get(event.custom_message_id) if event.custom_message_id else None
        if message is None and event.message_prefix:
            message = by_prefix.get(event.message_prefix)
        reason = _disagreement(event, message) if message is not None else None
        if reason is not None:
            _refuse_link(event, reason)
            continue
        event.message = message
        if message is None and event.email and event.event_type in ADDRESS_FALLBACK_EVENTS:
            unmatched.append(event)
    if unmatched:
        _link_by_address(unmatched)
    _assign_tenants(events)


def _latest_scoped(scoped: set[tuple[int, str]]) -> dict[tuple[int | None, str], dict]:
    """With a tenant (from the custom args): that tenant's latest message to the address."""
    found: dict[tuple[int | None, str], dict] = {}
    rows = (OutboundMessage.objects
            .filter(to_address__in={e for _, e in scoped}, tenant_id__in={t for t, _ in scoped},
                    status__in=_SENT_STATUSES)
            .order_by("to_address", "tenant_id", "-created_at").distinct("to_address", "tenant_id")
            .values(*_MESSAGE_FIELDS))
    for row in rows:
        key = (row["tenant_id"], row["to_address"])
        if key in scoped:
            found[key] = row
    return found


def _latest_blind(blind: set[str]) -> tuple[dict[tuple[int | None, str], dict], dict[str, tuple[int, ...]]]:
    """Without a tenant: the latest message when exactly one tenant mailed the address within the window;
    the tenants, when several did."""
    found: dict[tuple[int | None, str], dict] = {}
    ambiguous: dict[str, tuple[int, ...]] = {}
    since = clock.now() - dt.timedelta(days=settings.SENDGRID_ADDRESS_FALLBACK_DAYS)
    by_address: dict[str, list[dict]] = {}
    for row in (OutboundMessage.objects
                .filter(Q(sent_at__gte=since) | Q(created_at__gte=since), to_address__in=blind,
                        status__in=_SENT_STATUSES)
                .order_by("to_address", "tenant_id", "-created_at").distinct("to_address", "tenant_id")
                .values(*_MESSAGE_FIELDS)):
        by_address.setdefault(row["to_address"], []).append(row)
    for email, rows in by_address.items():
        if len(rows) == 1:
            found[(None, email)] = rows[0]
        else:
            ambiguous[email] = tuple(sorted(row["tenant_id"] for row in rows))
    return found, ambiguous


def _latest_messages_by_address(
    keys: set[tuple[int | None, str]],
) -> tuple[dict[tuple[int | None, str], dict], dict[str, tuple[int, ...]]]:
    """The latest sent message for each (tenant hint, address), two queries at most.

    With a tenant (from the custom args): that tenant's latest message to the address. Without one,
    the address alone cannot say whose mail bounced: the latest message is taken only when exactly
    one tenant mailed the address in the last SENDGRID_ADDRESS_FALLBACK_DAYS; when several did, the event
    stays unlinked (never given to one tenant's engine or history by a guess) and those tenants are
    returned as the second value, for address-level policy.
    """
    found: dict[tuple[int | None, str], dict] = {}
    ambiguous: dict[str, tuple[int, ...]] = {}
    scoped = {(tenant_id, email) for tenant_id, email in keys if tenant_id}
    if scoped:
        found.update(_latest_scoped(scoped))
    blind = {email for tenant_id, email in keys if not tenant_id}
    if blind:
        blind_found, ambiguous = _latest_blind(blind)
        found.update(blind_found)
    return found, ambiguous


def _address_tenants_beyond_window(unmatched: list[NormalisedEvent]) -> None:
    """Tenant-less address-level events (hard bounce, invalid, spam report, opt-out) that no tenant's
    mail within the fallback window explains: every tenant that ever mailed the address.

    The window keeps a stale message from being credited with the event (engine, history), but an
    opt-out or complaint for an address mailed 31 days ago is just as binding: without this it would
    record nothing and the address would stay mailable. One DISTINCT query for the whole batch; the
    event itself stays unlinked (tenant_id None).
    """
    orphans = [e for e in unmatched
               if e.message is None and not e.custom_tenant_id and not e.address_tenant_ids
               and compliance_action(e) in ADDRESS_LEVEL_ACTIONS]
    if not orphans:
        return
    tenants_by_address: dict[str, list[int]] = {}
    for email, tenant_id in (OutboundMessage.objects
                             .filter(to_address__in={e.email for e in orphans}, status__in=_SENT_STATUSES)
                             .order_by().values_list("to_address", "tenant_id").distinct()):
        tenants_by_address.setdefault(email, []).append(tenant_id)
    for event in orphans:
        event.address_tenant_ids = tuple(sorted(tenants_by_address.get(event.email, ())))


def _delivered_at(events: list[NormalisedEvent], message_ids: set[int]) -> dict[int, float]:
    """The earliest delivery time of each message, from this batch and from the events already stored."""
    delivered_at: dict[int, float] = {}
    for event in events:
        if event.event_type == "delivered" and event.message is not None and event.message["id"] in message_ids:
            mid = event.message["id"]
            delivered_at[mid] = min(delivered_at.get(mid, event.timestamp), event.timestamp)
    for mid, occurred in MessageEvent.objects.filter(
        outbound_message_id__in=message_ids, event_type="delivered"
    ).values_list("outbound_message_id", "occurred_at"):
        delivered_at[mid] = min(delivered_at.get(mid, occurred.timestamp()), occurred.timestamp())
    return delivered_at


def mark_scanner_clicks(events: list[NormalisedEvent]) -> None:
    """A click within seconds of delivery is a security gateway's link scanner, not a person."""
    clicks = [e for e in events if e.event_type == "click" and not e.is_machine and e.message is not None]
    if not clicks:
        return
    delivered_at = _delivered_at(events, {e.message["id"] for e in clicks})
    window = settings.SENDGRID_SCANNER_CLICK_WINDOW_SECONDS
    for event in clicks:
        reference = delivered_at.get(event.message["id"])
        if reference is None and event.message.get("sent_at") is not None:
            reference = event.message["sent_at"].timestamp()
        if reference is not None and event.timestamp - reference <= window:
            event.is_machine = True
