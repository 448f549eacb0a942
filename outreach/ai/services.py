"""Writes for the AI app: one AICall row per HTTP attempt to the model."""
from __future__ import annotations

from decimal import Decimal

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
    return AICall.objects.create(
        tenant_id=tenant_id, purpose=purpose[:50], model=model[:100], status=status,
        prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, cost_usd=cost_usd,
        duration_ms=duration_ms, error=error,
    )
