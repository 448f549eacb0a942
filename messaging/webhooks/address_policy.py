"""The compliance that follows from webhook events: hard bounces and spam reports suppress, unsubscribes opt
out, at once; repeated soft bounces suppress for SUPPRESSION_SOFT_BOUNCE_HOURS. Once per (tenant, address,
action) per batch.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db.models import Count

from messaging import compliance
from messaging.models import MessageEvent
from messaging.webhooks.events import NormalisedEvent
from outreach import clock
from outreach.addresses import InvalidAddress, normalise_email
from outreach.channels import CHANNEL_EMAIL
from outreach.tenancy.models import Tenant

logger = logging.getLogger(__name__)

SOFT_BOUNCE_WINDOW = dt.timedelta(days=7)

# Policy that follows from an event about the address alone, applied in every tenant that recently
# mailed it (or, when none did within the window, that ever mailed it) when the event could not be
# tied to one tenant: a hard bounce or an invalid address is a
# fact about the mailbox, and an opt-out or a spam complaint must never be lost (the SendGrid account,
# and so its sending reputation, is shared by all tenants).
ADDRESS_LEVEL_ACTIONS = frozenset({"hard_bounce", "invalid", "spam_report", "unsubscribe"})

# Key -> the event that asked for it.
_Actions = dict[tuple[int, str, str], NormalisedEvent]
_SoftBounces = dict[tuple[int, str], NormalisedEvent]


def _dropped_action(reason: str) -> str | None:
    reason = reason.lower()
    if "unsubscribed" in reason:
        return "unsubscribe"
    if "spam reporting" in reason:
        return "spam_report"
    if "bounced address" in reason:
        return "hard_bounce"
    if reason.startswith("invalid"):
        return "invalid"
    return None


def compliance_action(event: NormalisedEvent) -> str | None:
    """The policy action an event calls for (hard_bounce, spam_report, unsubscribe, invalid), or None."""
    if event.event_type == "bounce":
        return "hard_bounce" if event.bounce_type == "hard" else None
    if event.event_type == "spamreport":
        return "spam_report"
    if event.event_type in ("unsubscribe", "group_unsubscribe"):
        return "unsubscribe"
    if event.event_type == "dropped":
        return _dropped_action(event.reason)
    return None


def _address_valid(event: NormalisedEvent, action: str | None, valid: dict[str, bool]) -> bool:
    """Whether the event's address has a canonical form (memoised per batch in `valid`); warns once if not."""
    ok = valid.get(event.email)
    if ok is not None:
        return ok
    try:
        normalise_email(event.email)  # event.email is already stripped and lower-cased
        ok = True
    except InvalidAddress:
        ok = False
    valid[event.email] = ok
    if not ok:
        logger.warning("webhook %s event %s for %r: not a valid address, %s skipped (event stored)",
                       event.event_type, event.provider_event_id or event.dedupe_key[:16], event.email,
                       action or "soft-bounce count")
    return ok


def _collect(new_events: list[NormalisedEvent]) -> tuple[_Actions, _SoftBounces]:
    """The actions the batch calls for, by (tenant, address, action), and the soft bounces by (tenant, address)."""
    actions: _Actions = {}
    soft: _SoftBounces = {}
    valid: dict[str, bool] = {}
    for event in new_events:
        if not event.email or (event.tenant_id is None and not event.address_tenant_ids):
            continue
        action = compliance_action(event)
        is_soft = event.event_type == "bounce" and event.bounce_type != "hard" and event.tenant_id is not None
        if (action is None and not is_soft) or not _address_valid(event, action, valid):
            continue
        if is_soft:
            soft[(event.tenant_id, event.email)] = event
        elif event.tenant_id is not None:
            actions.setdefault((event.tenant_id, event.email, action), event)
        elif action in ADDRESS_LEVEL_ACTIONS:
            for tenant_id in event.address_tenant_ids:
                actions.setdefault((tenant_id, event.email, action), event)
    return actions, soft


def apply_compliance(new_events: list[NormalisedEvent]) -> None:
    """Opt-outs and suppressions the new events call for.

    The endpoint accepts any non-empty ``email`` string, but compliance keys are normalised addresses
    and refuse what Django's validator refuses. Those addresses are sorted out here, in one pass before
    any write, and their policy action is skipped with a warning: raising would roll back the whole
    batch, every retry would fail the same way, and every event of it would be lost. (One check per
    distinct address that needs an action, rather than a savepoint per action on the hot path.)
    """
    actions, soft = _collect(new_events)
    if not actions and not soft:
        return
    tenant_ids = {key[0] for key in actions} | {key[0] for key in soft}
    tenants = Tenant.objects.in_bulk(tenant_ids)
    for (tenant_id, email, action), event in actions.items():
        tenant = tenants[tenant_id]
        if action == "unsubscribe":
            compliance.unsubscribe_record(tenant=tenant, channel=CHANNEL_EMAIL, value=email,
                                          source="sendgrid_webhook",
                                          detail=f"{event.event_type} event {event.provider_event_id}".strip())
        else:
            compliance.suppression_add(tenant=tenant, channel=CHANNEL_EMAIL, value=email, reason=action,
                                       detail=(event.reason or event.event_type)[:500])
    if soft:
        _suppress_repeated_soft_bounces(soft, tenants)


def _suppress_repeated_soft_bounces(soft: _SoftBounces, tenants: dict[int, Tenant]) -> None:
    since = clock.now() - SOFT_BOUNCE_WINDOW
    emails = {email for _, email in soft}
    counts = {
        (row["tenant_id"], row["email"]): row["n"]
        for row in MessageEvent.objects.filter(
            event_type="bounce", bounce_type="soft", email__in=emails, tenant_id__in={t for t, _ in soft},
            occurred_at__gte=since,
        ).values("tenant_id", "email").annotate(n=Count("id"))
    }
    lasts = dt.timedelta(hours=settings.SUPPRESSION_SOFT_BOUNCE_HOURS)
    for (tenant_id, email), event in soft.items():
        if counts.get((tenant_id, email), 0) >= settings.SENDGRID_SOFT_BOUNCE_THRESHOLD:
            compliance.suppression_add(
                tenant=tenants[tenant_id], channel=CHANNEL_EMAIL, value=email, reason="soft_bounce",
                detail=f"{counts[(tenant_id, email)]} soft bounces in {SOFT_BOUNCE_WINDOW.days} days: "
                       f"{event.reason}"[:500],
                expires_at=clock.now() + lasts,
            )
