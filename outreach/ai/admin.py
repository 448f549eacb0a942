"""Operator console: the language-model call log (cost and failures per tenant)."""
from __future__ import annotations

from django.contrib import admin

from outreach.admin import BigTableAdmin, ReadOnlyAdmin, static_choices_filter
from outreach.ai.models import AIBudgetAlert, AICall, AITenantMonthSpend

AI_PURPOSES = ("lead_analysis", "plan", "plan_repair", "reply_classification")


@admin.register(AICall)
class AICallAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("created_at", "purpose", "model", "status", "tenant", "prompt_tokens", "completion_tokens",
                    "cost_usd", "duration_ms")
    list_filter = ("status", static_choices_filter("purpose", AI_PURPOSES), "tenant")
    search_fields = ("error",)
    list_select_related = ("tenant",)


@admin.register(AIBudgetAlert)
class AIBudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ("month", "tenant", "spend_usd", "budget_usd", "created_at")
    list_filter = ("tenant",)
    list_select_related = ("tenant",)


@admin.register(AITenantMonthSpend)
class AITenantMonthSpendAdmin(ReadOnlyAdmin):
    list_display = ("month", "tenant", "spend_usd", "calls")
    list_filter = ("tenant",)
    list_select_related = ("tenant",)
    ordering = ("-month", "tenant")
