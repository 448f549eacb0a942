"""Outgoing webhooks in the operator console: endpoints (secret hidden), events, deliveries with attempts."""
from __future__ import annotations

from django.contrib import admin

from outreach.admin import ReadOnlyAdmin
from outreach.webhooks_out.models import WebhookAttempt, WebhookDeliveryOut, WebhookEndpoint, WebhookEvent


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("url", "tenant", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "description")
    list_select_related = ("tenant",)
    exclude = ("secret",)
    readonly_fields = ("tenant", "created_at", "updated_at")


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "type", "tenant", "event_id", "occurred_at")
    list_filter = ("type",)
    search_fields = ("event_id",)
    list_select_related = ("tenant",)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("attempted_at", "status_code", "error", "duration_ms")

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDeliveryOut)
class WebhookDeliveryOutAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at")
    list_filter = ("status",)
    list_select_related = ("event", "endpoint")
    inlines = [WebhookAttemptInline]


@admin.register(WebhookAttempt)
class WebhookAttemptAdmin(ReadOnlyAdmin):
    list_display = ("attempted_at", "delivery", "status_code", "error", "duration_ms")
    list_select_related = ("delivery__event", "delivery__endpoint")
