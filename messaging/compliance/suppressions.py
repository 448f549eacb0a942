"""Suppressions (`communication_suppressions`): the system or an operator decided not to contact an address.

Reasons: hard bounce, spam report, repeated soft bounces, invalid address, dropped, manual; or a whole
domain (channel "email_domain", reason "domain"). Rows may expire (soft bounces); a permanent row is never
downgraded to an expiring one.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from messaging.compliance.audit import delete_audited
from messaging.compliance.validation import tenant_id_of
from messaging.models import CommunicationSuppression, SuppressionReason
from outreach import clock
from outreach.addresses import normalise_address
from outreach.channels import CHANNEL_EMAIL_DOMAIN, SUPPRESSION_CHANNELS
from outreach.errors import ApplicationError
from outreach.tenancy.models import Tenant

# Reasons that are permanent unless the caller passes an explicit expiry.
PERMANENT_REASONS = frozenset({
    SuppressionReason.HARD_BOUNCE, SuppressionReason.SPAM_REPORT, SuppressionReason.INVALID,
    SuppressionReason.MANUAL, SuppressionReason.DOMAIN, SuppressionReason.DROPPED,
})

_SUPPRESSION_UPSERT_SQL = """
INSERT INTO communication_suppressions AS s
    (tenant_id, channel, value, reason, detail, expires_at, created_at, updated_at)
SELECT %s, i.channel, i.value, i.reason, i.detail, i.expires_at, %s, %s
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])
    AS i(channel, value, reason, detail, expires_at)
ON CONFLICT (tenant_id, channel, value) DO UPDATE SET
    -- A permanent row wins: its reason, detail and (absent) expiry stand whatever arrives later.
    reason = CASE WHEN s.expires_at IS NULL THEN s.reason ELSE EXCLUDED.reason END,
    detail = CASE WHEN s.expires_at IS NULL THEN s.detail ELSE EXCLUDED.detail END,
    expires_at = CASE
        WHEN s.expires_at IS NULL OR EXCLUDED.expires_at IS NULL THEN NULL
        ELSE GREATEST(s.expires_at, EXCLUDED.expires_at)
    END,
    updated_at = EXCLUDED.updated_at
RETURNING {columns}
"""

UPSERT_BATCH_SIZE = 1000


@dataclass(frozen=True)
class SuppressionInput:
    channel: str
    value: str  # normalised
    reason: str
    detail: str
    expires_at: dt.datetime | None


def suppression_input(*, channel: str, value: str, reason: str, detail: str,
                      expires_at: dt.datetime | None, now: dt.datetime) -> SuppressionInput:
    """Validate and normalise one suppression (raises ApplicationError naming the field)."""
    if channel not in SUPPRESSION_CHANNELS:
        raise ApplicationError(
            f"Unknown channel {channel!r}; choose one of {', '.join(SUPPRESSION_CHANNELS)}.", field="channel"
        )
    if reason not in SuppressionReason.values:
        raise ApplicationError(
            f"Unknown reason {reason!r}; choose one of {', '.join(SuppressionReason.values)}.", field="reason"
        )
    if channel == CHANNEL_EMAIL_DOMAIN:
        if reason not in (SuppressionReason.DOMAIN, SuppressionReason.MANUAL):
            raise ApplicationError("A domain entry takes the reason 'domain'.", field="reason")
        reason = SuppressionReason.DOMAIN
    elif reason == SuppressionReason.DOMAIN:
        raise ApplicationError("The reason 'domain' is for channel email_domain.", field="reason")
    normalised = normalise_address(channel, value)
    if expires_at is None and reason == SuppressionReason.SOFT_BOUNCE:
        expires_at = now + dt.timedelta(hours=settings.SUPPRESSION_SOFT_BOUNCE_HOURS)
    if expires_at is not None and expires_at <= now:
        raise ApplicationError("The expiry must be in the future.", field="expires_at")
    return SuppressionInput(channel=channel, value=normalised, reason=reason, detail=(detail or "")[:2000],
                            expires_at=expires_at)


def suppressions_upsert(*, tenant_id: int, items: list[SuppressionInput],
                        now: dt.datetime) -> list[CommunicationSuppression]:
    """One INSERT ... ON CONFLICT per batch; the same (channel, value) twice in a batch keeps the last."""
    unique = list({(i.channel, i.value): i for i in items}.values())
    fields = CommunicationSuppression._meta.concrete_fields
    columns = ", ".join(f"s.{connection.ops.quote_name(f.column)}" for f in fields)
    sql = _SUPPRESSION_UPSERT_SQL.format(columns=columns)
    rows: list[CommunicationSuppression] = []
    with connection.cursor() as cursor:
        for start in range(0, len(unique), UPSERT_BATCH_SIZE):
            batch = unique[start:start + UPSERT_BATCH_SIZE]
            cursor.execute(sql, [
                tenant_id, now, now,
                [i.channel for i in batch], [i.value for i in batch], [i.reason for i in batch],
                [i.detail for i in batch], [i.expires_at for i in batch],
            ])
            rows.extend(CommunicationSuppression.from_db(connection.alias, [f.attname for f in fields], values)
                        for values in cursor.fetchall())
    return rows


def suppression_add(*, tenant: Tenant | int, channel: str, value: str, reason: str, detail: str = "",
                    expires_at: dt.datetime | None = None) -> CommunicationSuppression:
    """Upsert a suppression in one statement (safe under concurrent webhook workers).

    A soft bounce without an expiry expires after SUPPRESSION_SOFT_BOUNCE_HOURS. Merging rules: a permanent
    row never becomes expiring (nor changes reason: the first permanent cause stands); an expiring row
    becomes permanent when a permanent reason arrives; two expiring entries keep the later expiry.
    """
    now = clock.now()
    item = suppression_input(channel=channel, value=value, reason=reason, detail=detail,
                             expires_at=expires_at, now=now)
    return suppressions_upsert(tenant_id=tenant_id_of(tenant), items=[item], now=now)[0]


def domain_suppression_add(*, tenant: Tenant | int, domain: str, detail: str = "") -> CommunicationSuppression:
    """Tenant-wide do-not-contact domain: blocks every address at that domain (not its subdomains)."""
    return suppression_add(tenant=tenant, channel=CHANNEL_EMAIL_DOMAIN, value=domain,
                           reason=SuppressionReason.DOMAIN, detail=detail)


def suppression_remove(*, tenant: Tenant, channel: str, value: str, actor: Any, reason: str,
                       actor_label: str = "") -> CommunicationSuppression:
    """Lift a suppression (or a do-not-contact domain) with an audit entry holding the removed row."""
    normalised = normalise_address(channel, value)
    return delete_audited(
        CommunicationSuppression.objects.filter(tenant=tenant, channel=channel, value=normalised),
        tenant=tenant, action="suppression.remove", reason=reason, actor=actor, actor_label=actor_label,
        reason_needed="Say why the suppression is lifted (it is kept in the audit trail).",
        missing=f"{channel}:{normalised} is not suppressed.",
    )


