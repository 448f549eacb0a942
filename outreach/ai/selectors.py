"""Reads for the AI app: token and cost totals per tenant."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TypedDict

from django.db.models import Count, Sum
from django.db.models.functions import Coalesce

from outreach.ai.models import AICall


class AIUsage(TypedDict):
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal


def ai_usage_for_tenant(*, tenant_id: int, since: dt.datetime | None = None, purpose: str | None = None) -> AIUsage:
    """Totals of a tenant's model calls (every attempt, failed ones included: they count against quotas)."""
    qs = AICall.objects.filter(tenant_id=tenant_id)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if purpose is not None:
        qs = qs.filter(purpose=purpose)
    totals = qs.aggregate(
        calls=Count("id"),
        prompt_tokens=Coalesce(Sum("prompt_tokens"), 0),
        completion_tokens=Coalesce(Sum("completion_tokens"), 0),
        cost_usd=Coalesce(Sum("cost_usd"), Decimal("0")),
    )
    return AIUsage(
        calls=totals["calls"], prompt_tokens=totals["prompt_tokens"], completion_tokens=totals["completion_tokens"],
        cost_usd=totals["cost_usd"],
    )


def ai_usage_by_tenant(*, since: dt.datetime | None = None) -> dict[int | None, AIUsage]:
    """Totals for every tenant at once (one GROUP BY), e.g. for an operator dashboard."""
    qs = AICall.objects.all()
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    rows = qs.values("tenant_id").annotate(
        calls=Count("id"),
        prompt=Coalesce(Sum("prompt_tokens"), 0),
        completion=Coalesce(Sum("completion_tokens"), 0),
        cost=Coalesce(Sum("cost_usd"), Decimal("0")),
    )
    return {
        row["tenant_id"]: AIUsage(calls=row["calls"], prompt_tokens=row["prompt"],
                                  completion_tokens=row["completion"], cost_usd=row["cost"])
        for row in rows
    }
