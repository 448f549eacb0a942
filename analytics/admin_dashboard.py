"""The analytics dashboard in the admin: a tenant's daily chart and senders' deliverability, a campaign's
funnel by step and daily chart. Read from the rollups (analytics.selectors), like the metrics API."""
from __future__ import annotations

import datetime as dt
import zoneinfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from analytics import selectors
from analytics.charts import funnel_bars, line_chart
from analytics.models import DeliverabilityAlert
from campaigns.interface import Campaign
from outreach import clock
from outreach.tenancy.models import Tenant

DAYS = 30
CHART_COUNTS = ("sent", "delivered", "unique_human_opens", "unique_clickers", "replies", "bounced", "unsubscribes")
FUNNEL = ("sent", "delivered", "unique_human_opens", "unique_clickers", "replies")


def _span(tenant_id: int) -> selectors.MetricsRange:
    zone = selectors.tenant_time_zone(tenant_id=tenant_id)
    today = clock.now().astimezone(zoneinfo.ZoneInfo(zone)).date()
    return selectors.MetricsRange(first=today - dt.timedelta(days=DAYS - 1), last=today, granularity="day",
                                  time_zone=zone)


def _daily_chart(series: list[dict], span: selectors.MetricsRange):
    by_day = {row["period"]: row for row in series}
    days = [(span.first + dt.timedelta(days=i)).isoformat() for i in range(DAYS)]
    return line_chart(labels=days, series={name: [by_day.get(d, {}).get(name, 0) for d in days]
                                           for name in CHART_COUNTS})


def dashboard_view(request: HttpRequest, model_admin) -> HttpResponse:
    tenants = list(Tenant.objects.order_by("name").values_list("pk", "name")[:200])
    tenant_id = int(request.GET.get("tenant") or (tenants[0][0] if tenants else 0) or 0)
    context = {**model_admin.admin_site.each_context(request), "title": "Analytics dashboard", "tenants": tenants,
               "tenant_id": tenant_id}
    if tenant_id:
        span = _span(tenant_id)
        metrics = selectors.tenant_metrics(tenant_id=tenant_id, span=span)
        context.update(span=span, tenant_metrics=metrics, tenant_chart=_daily_chart(metrics["series"], span),
                       senders=selectors.sender_metrics(tenant_id=tenant_id, span=span),
                       alerts=list(DeliverabilityAlert.objects.filter(tenant_id=tenant_id, resolved_at__isnull=True)
                                   .order_by("-created_at")[:50]))
        campaign_id = request.GET.get("campaign")
        if campaign_id:
            campaign = get_object_or_404(Campaign, pk=int(campaign_id), tenant_id=tenant_id)
            found = selectors.campaign_metrics(tenant_id=tenant_id, campaign_id=campaign.pk, span=span)
            context.update(campaign=campaign, campaign_chart=_daily_chart(found["series"], span),
                           funnel=funnel_bars(rows=[(f"{row['node_id'] or '-'} ({row['plan_source'] or '-'})",
                                                     [(name, row[name]) for name in FUNNEL])
                                                    for row in found["by_step"]]))
    return TemplateResponse(request, "admin/analytics/dashboard.html", context)
