"""Writes for the AI app: one AICall row per HTTP attempt to the model, and the tenant's spend of its month."""
from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction

from outreach.ai.budget import month_start
from outreach.ai.models import AICall


def ai_call_record(
    *,
    tenant_id: int | None,
    purpose: str,
    model: str,
    status: str,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cost_usd: Decimal = Decimal("0"),
    duration_ms: int = 0,
    error: str = "",
) -> AICall:
    with transaction.atomic():
        call = AICall.objects.create(
            tenant_id=tenant_id, purpose=purpose[:50], model=model[:100], status=status,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost_usd,
            duration_ms=duration_ms, error=error,
        )
        if tenant_id is not None:
            _month_spend_add(tenant_id=tenant_id, call=call)
    return call


def _month_spend_add(*, tenant_id: int, call: AICall) -> None:
    """Add the call to its tenant's month in one upsert (concurrent calls add up; none is lost)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ai_tenant_month_spend (tenant_id, month, spend_usd, calls) VALUES (%s, %s, %s, 1) "
            "ON CONFLICT (tenant_id, month) DO UPDATE SET spend_usd = ai_tenant_month_spend.spend_usd "
            "+ EXCLUDED.spend_usd, calls = ai_tenant_month_spend.calls + 1",
            [tenant_id, month_start(call.created_at).date(), call.cost_usd],
        )
