"""Reads of the rollups for the metrics API and the dashboards: a handful of grouped queries each.

Every read filters by tenant and by the bucket range (the leading columns of the tables' unique indexes,
or the campaign's), so its cost follows the rows of the range asked for, never the size of message_events.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from analytics.metrics import COUNTS, metrics_block
from analytics.models import TenantAnalyticsSettings
from campaigns.interface import Campaign
from messaging.interface import EmailSenderIdentity
from outreach import clock

PERIOD_SQL = {"hour": "hour", "day": "day", "week": "date_trunc('week', day)::date"}
_IN_RANGE = "tenant_id = %s AND day >= %s AND day <= %s"


@dataclass(frozen=True)
class MetricsRange:
    first: dt.date
    last: dt.date
    granularity: str  # hour | day | week
    time_zone: str

    def hours(self) -> tuple[dt.datetime, dt.datetime]:
        """The UTC hours of the range's local days (hourly rows are UTC)."""
        zone = zoneinfo.ZoneInfo(self.time_zone)
        start = dt.datetime.combine(self.first, dt.time(), zone)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), zone)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    def day_params(self, tenant_id: int) -> list[Any]:
        return [tenant_id, self.first, self.last]


def tenant_time_zone(*, tenant_id: int) -> str:
    """The zone of the tenant's rollup days."""
    found = TenantAnalyticsSettings.objects.filter(tenant_id=tenant_id).values_list("time_zone", flat=True).first()
    return found or settings.ANALYTICS_DEFAULT_TIME_ZONE


def _grouped(table: str, group: tuple[str, ...], where: str, params: list[Any], tail: str = ""
             ) -> dict[tuple, dict[str, int]]:
    """{group values: {count: n}} of one table, in one query (`tail`: ORDER BY / LIMIT after the grouping)."""
    columns = "".join(f"{g}, " for g in group)
    sums = ", ".join(f"sum({c})" for c in COUNTS)
    grouping = f" GROUP BY {', '.join(str(i + 1) for i in range(len(group)))}" if group else ""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}{sums}, count(*) FROM {table} WHERE {where}{grouping} {tail}", params)
        return {tuple(row[:len(group)]): dict(zip(COUNTS, (int(v or 0) for v in row[len(group):-1]), strict=True))
                for row in cursor.fetchall() if row[-1]}


def _rows(grouped: dict[tuple, dict[str, int]], names: tuple[str, ...]) -> list[dict]:
    return [{**dict(zip(names, key, strict=True)), **metrics_block(counts)}
            for key, counts in sorted(grouped.items(), key=lambda kv: tuple(str(k) for k in kv[0]))]


def _totals(table: str, where: str, params: list[Any]) -> dict:
    return metrics_block(_grouped(table, (), where, params).get((), {}))


def _series(table: str, where: str, params: list[Any], granularity: str) -> list[dict]:
    rows = _rows(_grouped(table, (PERIOD_SQL[granularity],), where, params), ("period",))
    for row in rows:
        row["period"] = row["period"].isoformat()
    return rows


def _named_senders(rows: list[dict], tenant_id: int) -> list[dict]:
    emails = dict(EmailSenderIdentity.objects.filter(tenant_id=tenant_id, pk__in=[r["sender_id"] for r in rows])
                  .values_list("id", "from_email"))
    return [{"sender_id": r["sender_id"], "from_email": emails.get(r["sender_id"], ""), **r} for r in rows]


def campaign_metrics(*, tenant_id: int, campaign_id: int, span: MetricsRange) -> dict[str, Any]:
    """Totals, by step (node and plan source), by period and by sender of one campaign."""
    table, where = "metrics_campaign_daily", f"campaign_id = %s AND {_IN_RANGE}"
    params = [campaign_id, *span.day_params(tenant_id)]
    if span.granularity == "hour":
        lo, hi = span.hours()
        series = _series("metrics_contact_hourly", "campaign_id = %s AND tenant_id = %s AND hour >= %s AND hour < %s",
                         [campaign_id, tenant_id, lo, hi], "hour")
    else:
        series = _series(table, where, params, span.granularity)
    by_sender = _rows(_grouped(table, ("sender_id",), where, params), ("sender_id",))
    return {"totals": _totals(table, where, params),
            "by_step": _rows(_grouped(table, ("node_id", "plan_source"), where, params), ("node_id", "plan_source")),
            "series": series, "by_sender": _named_senders(by_sender, tenant_id)}


def tenant_metrics(*, tenant_id: int, span: MetricsRange) -> dict[str, Any]:
    """Totals and by period of a tenant (metrics_tenant_daily), and by campaign (metrics_campaign_daily)."""
    params = span.day_params(tenant_id)
    by_campaign = _rows(_grouped("metrics_campaign_daily", ("campaign_id",), _IN_RANGE, params), ("campaign_id",))
    names = dict(Campaign.objects.filter(tenant_id=tenant_id, pk__in=[r["campaign_id"] for r in by_campaign])
                 .values_list("id", "name"))
    return {"totals": _totals("metrics_tenant_daily", _IN_RANGE, params),
            "series": _series("metrics_tenant_daily", _IN_RANGE, params, span.granularity),
            "by_campaign": [{"campaign_id": r["campaign_id"], "name": names.get(r["campaign_id"], ""), **r}
                            for r in by_campaign]}


def sender_metrics(*, tenant_id: int, span: MetricsRange) -> list[dict]:
    """Per sender identity of the tenant, over the range."""
    rows = _rows(_grouped("metrics_sender_daily", ("sender_id",), _IN_RANGE, span.day_params(tenant_id)),
                 ("sender_id",))
    return _named_senders(rows, tenant_id)


def domain_metrics(*, tenant_id: int, span: MetricsRange, limit: int) -> list[dict]:
    """The `limit` recipient domains the tenant sent most to in the range, most first."""
    grouped = _grouped("metrics_domain_daily", ("domain",), _IN_RANGE, [*span.day_params(tenant_id), limit],
                       tail="ORDER BY sum(sent) DESC, 1 LIMIT %s")
    return [{"domain": key[0], **metrics_block(counts)} for key, counts in grouped.items()]


def rollup_lag_seconds() -> float:
    """How long the oldest event not yet counted has waited (0 when everything is counted): freshness."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(stored_at) FROM metrics_pending_facts")
        oldest = cursor.fetchone()[0]
    return 0.0 if oldest is None else max(0.0, (clock.now() - oldest).total_seconds())
