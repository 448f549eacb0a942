"""Operator console: campaigns, enrolments, plan versions, timers and the transition history.

The engine owns every contact campaign's state, timers and history: the admin shows
them and never edits them (an edit here would bypass the locking and idempotency
the engine relies on). Pause, resume and cancel go through campaigns.services.
"""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from campaigns.models import Campaign, CampaignPlanVersion, CampaignTransition, ContactCampaign, ScheduledAction
from contacts.models import Channel
from outreach.admin import (
    BigTableAdmin,
    OwnerDeletesHistoryMixin,
    ReadOnlyAdmin,
    TenantConsistentForm,
    static_choices_filter,
)


class CampaignForm(TenantConsistentForm):
    tenant_scoped_fields = ("sender_identity",)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "tenant", "status", "sender_identity", "created_at")
    list_filter = ("status", "tenant")
    search_fields = ("name", "tenant__name")
    list_select_related = ("tenant", "sender_identity")
    autocomplete_fields = ("sender_identity",)
    readonly_fields = ("created_at", "updated_at")

    def has_delete_permission(self, request: HttpRequest, obj: Campaign | None = None) -> bool:
        # Cancel instead: a campaign's enrolments, outbox and history can run to millions of rows.
        return False


@admin.register(ContactCampaign)
class ContactCampaignAdmin(OwnerDeletesHistoryMixin, ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "contact", "campaign", "channel", "status", "current_node_id", "node_visit",
                    "node_entered_at", "tenant")
    list_filter = ("status", static_choices_filter("channel", Channel.choices), "tenant")
    search_fields = ("contact__email__exact",)
    list_select_related = ("contact", "campaign", "tenant")
    raw_id_fields = ("contact", "campaign", "current_plan_version")


@admin.register(CampaignPlanVersion)
class CampaignPlanVersionAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "contact_campaign_id", "version", "source", "plan_hash", "tenant", "created_at")
    list_filter = ("source", "tenant")
    search_fields = ("plan_hash__exact",)
    list_select_related = ("tenant",)
    raw_id_fields = ("contact_campaign",)


@admin.register(ScheduledAction)
class ScheduledActionAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "kind", "event", "node_id", "node_visit", "due_at", "status", "attempts",
                    "contact_campaign_id", "tenant")
    list_filter = ("status", "kind", "tenant")
    search_fields = ("dedupe_key__exact",)
    list_select_related = ("tenant",)
    raw_id_fields = ("contact_campaign",)


@admin.register(CampaignTransition)
class CampaignTransitionAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("occurred_at", "contact_campaign_id", "__str__", "node_visit", "from_status", "to_status",
                    "reason", "tenant")
    list_filter = (static_choices_filter("to_status", ContactCampaign.Status.choices, "to status"), "tenant")
    list_select_related = ("tenant",)
    raw_id_fields = ("contact_campaign",)
