"""Analytics in the operator console: the pipeline's health on the admin index, tenants' analytics zones."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import path

from analytics.admin_dashboard import dashboard_view
from analytics.health import pipeline_health
from analytics.models import (
    CampaignDaily,
    ContactHourly,
    DeliverabilityAlert,
    DomainDaily,
    MessageFirst,
    PendingFact,
    SenderDaily,
    TenantAnalyticsSettings,
    TenantDaily,
)
from outreach.admin import BigTableAdmin, ReadOnlyAdmin, operator_console_counts


class RollupAdmin(ReadOnlyAdmin, BigTableAdmin):
    """Counts kept by the rollup pass (analytics/rollups.py): read here, mended by analytics_rebuild."""

    list_display = ("__str__",)


for _model, _columns in ((ContactHourly, ("hour", "tenant_id", "contact_id", "campaign_id", "sent", "delivered")),
                         (CampaignDaily, ("day", "campaign_id", "node_id", "plan_source", "sender_id", "sent",
                                          "delivered")),
                         (TenantDaily, ("day", "tenant_id", "sent", "delivered", "bounced_hard", "spam_reports")),
                         (SenderDaily, ("day", "tenant_id", "sender_id", "sent", "delivered", "bounced_hard")),
                         (DomainDaily, ("day", "tenant_id", "domain", "sent", "delivered", "bounced_hard")),
                         (PendingFact, ("stored_at", "tenant_id", "message_id", "kind", "detail", "occurred_at")),
                         (MessageFirst, ("message_id", "kind", "occurred_at"))):
    admin.site.register(_model, type(f"{_model.__name__}Admin", (RollupAdmin,), {"list_display": _columns}))


@admin.register(DeliverabilityAlert)
class DeliverabilityAlertAdmin(ReadOnlyAdmin):
    """What the deliverability breaker found (analytics/breaker.py): written by the breaker only."""

    list_display = ("created_at", "tenant", "sender_id", "measure", "level", "value", "numerator", "denominator",
                    "action", "resolved_at")
    list_filter = ("level", "measure", "tenant")
    list_select_related = ("tenant",)


@admin.register(TenantAnalyticsSettings)
class TenantAnalyticsSettingsAdmin(admin.ModelAdmin):
    list_display = ("tenant", "time_zone")
    list_select_related = ("tenant",)
    search_fields = ("tenant__name",)

    def get_urls(self) -> list:
        # The dashboard hangs off this model's admin: /admin/analytics/tenantanalyticssettings/dashboard/.
        own = [path("dashboard/", self.admin_site.admin_view(self.dashboard), name="analytics_dashboard")]
        return own + super().get_urls()

    def dashboard(self, request: HttpRequest) -> HttpResponse:
        return dashboard_view(request, self)


@operator_console_counts.connect
def _pipeline_counts() -> dict[str, int]:
    """The admin index's "Pipeline" figures (templates/admin/index.html)."""
    health = pipeline_health()
    return {
        "due_actions_unclaimed": health.due_actions_unclaimed,
        "due_actions_oldest_age": int(health.due_actions_oldest_age_seconds),
        "webhook_deliveries_pending": health.webhook_deliveries_pending,
        "webhook_deliveries_failed": health.webhook_deliveries_failed,
        "outbox_unknown": health.outbox_unknown,
        "outbox_sending": health.outbox_sending,
        "rollup_lag": int(health.rollup_lag_seconds),
        "celery_queued": sum(n for n in health.celery_queue_lengths.values() if n > 0),
    }
