"""Reads over the opt-out and suppression tables: lists, one address's status and stats.

The CSV export is in messaging.compliance.do_not_contact, next to the import whose columns it writes."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from messaging.compliance.send_checks import BLOCK_UNSUBSCRIBED
from messaging.models import CommunicationSuppression, ContactUnsubscribe, SuppressionReason
from outreach import clock
from outreach.addresses import normalise_address
from outreach.channels import CHANNEL_EMAIL, CHANNEL_EMAIL_DOMAIN
from outreach.tenancy.models import Tenant


def active_filter(now: dt.datetime) -> Q:
    """Rows that have not expired at `now` (permanent rows have no expiry)."""
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
        qs = qs.filter(active_filter(clock.now()))
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
    rows = list(CommunicationSuppression.objects.filter(tenant=tenant).filter(active_filter(clock.now())).filter(match))
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
