"""Reads over the opt-out and suppression tables: lists, one address's status, stats and the CSV export."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from messaging.compliance import (
    BLOCK_UNSUBSCRIBED,
    CHANNEL_EMAIL,
    CHANNEL_EMAIL_DOMAIN,
    normalise_address,
)
from messaging.models import CommunicationSuppression, ContactUnsubscribe, SuppressionReason
from outreach import clock
from outreach.tenancy.models import Tenant


def _active(now: dt.datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


def unsubscribe_list(*, tenant: Tenant, channel: str | None = None, source: str | None = None
                     ) -> QuerySet[ContactUnsubscribe]:
    qs = ContactUnsubscribe.objects.filter(tenant=tenant)
    if channel:
        qs = qs.filter(channel=channel)
    if source:
        qs = qs.filter(source=source)
    return qs


def suppression_list(*, tenant: Tenant, channel: str | None = None, reason: str | None = None,
                     active: bool | None = None) -> QuerySet[CommunicationSuppression]:
    qs = CommunicationSuppression.objects.filter(tenant=tenant)
    if channel:
        qs = qs.filter(channel=channel)
    if reason:
        qs = qs.filter(reason=reason)
    if active is True:
        qs = qs.filter(_active(clock.now()))
    elif active is False:
        qs = qs.filter(expires_at__lte=clock.now())
    return qs


@dataclass(frozen=True)
class AddressStatus:
    channel: str
    value: str  # normalised
    unsubscribe: ContactUnsubscribe | None
    suppression: CommunicationSuppression | None  # the address's own active suppression
    domain_suppression: CommunicationSuppression | None  # an active do-not-contact entry for its domain

    @property
    def blocked_reason(self) -> str | None:
        """The same answer send_block_reason gives."""
        if self.unsubscribe is not None:
            return BLOCK_UNSUBSCRIBED
        if self.suppression is not None:
            return f"suppressed:{self.suppression.reason}"
        if self.domain_suppression is not None:
            return f"suppressed:{SuppressionReason.DOMAIN}"
        return None


def address_status(*, tenant: Tenant, channel: str, value: str) -> AddressStatus:
    """Whether an address may be contacted and, if not, why and since when (two queries)."""
    normalised = normalise_address(channel, value)
    unsubscribe = ContactUnsubscribe.objects.filter(tenant=tenant, channel=channel, channel_value=normalised).first()
    match = Q(channel=channel, value=normalised)
    domain = normalised.rsplit("@", 1)[1] if channel == CHANNEL_EMAIL else None
    if domain:
        match |= Q(channel=CHANNEL_EMAIL_DOMAIN, value=domain)
    rows = list(CommunicationSuppression.objects.filter(tenant=tenant).filter(_active(clock.now())).filter(match))
    own = next((r for r in rows if r.channel == channel), None)
    by_domain = next((r for r in rows if r.channel == CHANNEL_EMAIL_DOMAIN), None)
    return AddressStatus(channel=channel, value=normalised, unsubscribe=unsubscribe, suppression=own,
                         domain_suppression=by_domain)


@dataclass(frozen=True)
class UnsubscribeStats:
    total: int
    by_source: dict[str, int]
    by_channel: dict[str, int]
    by_day: list[dict]  # [{"day": date, "count": n, "by_source": {...}}], oldest first, days with none omitted
    since: dt.date


def unsubscribe_stats(*, tenant: Tenant, days: int = 30) -> UnsubscribeStats:
    """All-time counts by source and channel, and the last `days` days by day (two grouped queries)."""
    totals = (ContactUnsubscribe.objects.filter(tenant=tenant).values("source", "channel")
              .annotate(n=Count("id")).order_by())
    by_source: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    for row in totals:
        by_source[row["source"]] = by_source.get(row["source"], 0) + row["n"]
        by_channel[row["channel"]] = by_channel.get(row["channel"], 0) + row["n"]
    since = (clock.now() - dt.timedelta(days=days - 1)).date()
    start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.UTC)
    daily = (ContactUnsubscribe.objects.filter(tenant=tenant, created_at__gte=start)
             .annotate(day=TruncDate("created_at", tzinfo=dt.UTC)).values("day", "source")
             .annotate(n=Count("id")).order_by("day", "source"))
    by_day: dict[dt.date, dict] = {}
    for row in daily:
        entry = by_day.setdefault(row["day"], {"day": row["day"], "count": 0, "by_source": {}})
        entry["count"] += row["n"]
        entry["by_source"][row["source"]] = row["n"]
    return UnsubscribeStats(total=sum(by_source.values()), by_source=by_source, by_channel=by_channel,
                            by_day=list(by_day.values()), since=since)


EXPORT_HEADER = ("kind", "channel", "value", "reason", "detail", "expires_at", "created_at")


def do_not_contact_export_rows(*, tenant: Tenant, include_expired: bool = False) -> Iterator[tuple]:
    """Every opt-out and suppression of a tenant as CSV rows (header first), streamed in chunks.

    The columns are ones suppressions_import_csv reads (channel, value, detail), so an export re-imports.
    """
    yield EXPORT_HEADER
    unsubscribes = (ContactUnsubscribe.objects.filter(tenant=tenant).order_by("id")
                    .values_list("channel", "channel_value", "source", "detail", "created_at"))
    for channel, value, source, detail, created_at in unsubscribes.iterator(chunk_size=2000):
        yield ("unsubscribe", channel, value, source, detail, "", created_at.isoformat())
    suppressions = CommunicationSuppression.objects.filter(tenant=tenant)
    if not include_expired:
        suppressions = suppressions.filter(_active(clock.now()))
    rows = suppressions.order_by("id").values_list("channel", "value", "reason", "detail", "expires_at",
                                                   "created_at")
    for channel, value, reason, detail, expires_at, created_at in rows.iterator(chunk_size=2000):
        yield ("suppression", channel, value, reason, detail, expires_at.isoformat() if expires_at else "",
               created_at.isoformat())
