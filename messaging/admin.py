"""Operator console: senders, the outbox, provider events, raw webhooks, replies and policy tables.

The outbox, events, raw webhook deliveries and replies belong to the pipeline: the
admin shows them and never edits them. Sender pause switches are audited.
"""
from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from contacts.models import Channel
from messaging.models import (
    CommunicationSuppression,
    ContactUnsubscribe,
    EmailSenderIdentity,
    InboundMessage,
    MessageEvent,
    OutboundMessage,
    SendRateLimit,
    WebhookDelivery,
)
from outreach.admin import BigTableAdmin, ReadOnlyAdmin, static_choices_filter
from outreach.tenancy.services import audit_record

ADMIN_REASON = "admin console"
# SendGrid event types plus the synthetic ones we derive; a fixed list avoids SELECT DISTINCT.
EVENT_TYPES = ("processed", "delivered", "deferred", "bounce", "dropped", "blocked", "open", "click",
               "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe", "reply")
SUPPRESSION_CHANNELS = (*Channel.choices, ("email_domain", "Email domain"))


def _sender_identity_set_paused(*, identity: EmailSenderIdentity, paused: bool, actor, reason: str) -> None:
    # TODO(issue 4): call messaging.sendgrid's sender_identity_set_paused (the contract) once it lands;
    # until then the same effect: the flag and an audit entry, in one transaction.
    with transaction.atomic():
        EmailSenderIdentity.objects.filter(pk=identity.pk).update(is_paused=paused)
        identity.is_paused = paused
        audit_record(tenant=identity.tenant, actor=actor, action="sender.pause" if paused else "sender.resume",
                     target=identity, detail={"reason": reason})


@admin.register(EmailSenderIdentity)
class EmailSenderIdentityAdmin(admin.ModelAdmin):
    list_display = ("from_email", "from_name", "tenant", "status", "is_paused", "ip_pool", "last_synced_at")
    list_filter = ("status", "is_paused", "tenant")
    search_fields = ("from_email", "from_name", "nickname")
    list_select_related = ("tenant",)
    readonly_fields = ("provider_sender_id", "last_synced_at", "created_at")
    actions = ("pause_sending", "resume_sending")

    def save_model(self, request: HttpRequest, obj: EmailSenderIdentity, form: ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and "is_paused" in form.changed_data:
            _sender_identity_set_paused(identity=obj, paused=obj.is_paused, actor=request.user, reason=ADMIN_REASON)

    @admin.action(description="Pause sending from the selected identities")
    def pause_sending(self, request: HttpRequest, queryset: QuerySet[EmailSenderIdentity]) -> None:
        self._set_paused(request, queryset, paused=True)

    @admin.action(description="Resume sending from the selected identities")
    def resume_sending(self, request: HttpRequest, queryset: QuerySet[EmailSenderIdentity]) -> None:
        self._set_paused(request, queryset, paused=False)

    def _set_paused(self, request: HttpRequest, queryset: QuerySet[EmailSenderIdentity], *, paused: bool) -> None:
        changed = [i for i in queryset.select_related("tenant") if i.is_paused != paused]
        for identity in changed:
            _sender_identity_set_paused(identity=identity, paused=paused, actor=request.user, reason=ADMIN_REASON)
        verb = "paused" if paused else "resumed"
        self.message_user(request, f"Sending {verb} for {len(changed)} sender identit(ies).", messages.SUCCESS)


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("id", "to_address", "subject", "status", "delivery_status", "node_id", "node_visit",
                    "attempts", "sent_at", "contact_campaign_id", "tenant")
    list_filter = ("status", "delivery_status", static_choices_filter("channel", Channel.choices), "tenant")
    search_fields = ("to_address__exact", "dedupe_key__exact", "provider_message_id__exact",
                     "message_id_header__exact")
    list_select_related = ("tenant",)
    raw_id_fields = ("contact_campaign", "contact", "sender_identity")


@admin.register(MessageEvent)
class MessageEventAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("occurred_at", "event_type", "email", "is_machine", "bounce_type", "outbound_message_id",
                    "provider", "tenant")
    list_filter = (static_choices_filter("event_type", EVENT_TYPES, "event type"), "is_machine",
                   static_choices_filter("provider", ("sendgrid", "twilio", "internal")), "tenant")
    search_fields = ("email__exact", "provider_event_id__exact", "dedupe_key__exact")
    list_select_related = ("tenant",)
    raw_id_fields = ("outbound_message", "webhook_delivery")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("received_at", "kind", "status", "signature_valid", "event_count", "attempts", "processed_at")
    list_filter = ("kind", "status", "signature_valid")
    search_fields = ("payload_hash__exact",)
    exclude = ("body",)
    readonly_fields = ("body_text",)

    # The raw bytes would render as "<memory at 0x...>"; show them decoded, capped for the page.
    @admin.display(description="body")
    def body_text(self, obj: WebhookDelivery) -> str:
        raw = bytes(obj.body or b"")
        text = raw[:100_000].decode("utf-8", errors="replace")
        return text + (f"\n... ({len(raw)} bytes in all)" if len(raw) > 100_000 else "")

    def get_readonly_fields(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> list[str]:
        return [name for name in super().get_readonly_fields(request, obj) if name != "body"]


@admin.register(InboundMessage)
class InboundMessageAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("received_at", "from_email", "subject", "classification", "is_auto_reply", "stop_request",
                    "outbound_message_id", "tenant")
    list_filter = ("classification", "is_auto_reply", "stop_request", "tenant")
    search_fields = ("from_email__exact", "message_id_header__exact")
    list_select_related = ("tenant",)
    raw_id_fields = ("outbound_message", "webhook_delivery")


@admin.register(CommunicationSuppression)
class CommunicationSuppressionAdmin(BigTableAdmin):
    list_display = ("value", "channel", "reason", "expires_at", "tenant", "created_at")
    list_filter = ("reason", static_choices_filter("channel", SUPPRESSION_CHANNELS), "tenant")
    search_fields = ("value__exact",)
    list_select_related = ("tenant",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(ContactUnsubscribe)
class ContactUnsubscribeAdmin(ReadOnlyAdmin, BigTableAdmin):
    """Opt-outs are recorded by the compliance service; undoing one is an audited resubscribe, not a delete."""

    list_display = ("channel_value", "channel", "source", "contact", "tenant", "created_at")
    list_filter = ("source", static_choices_filter("channel", Channel.choices), "tenant")
    search_fields = ("channel_value__exact",)
    list_select_related = ("tenant", "contact")
    raw_id_fields = ("contact",)


@admin.register(SendRateLimit)
class SendRateLimitAdmin(admin.ModelAdmin):
    list_display = ("scope", "key", "per_minute", "per_hour", "per_day", "tenant", "created_at")
    list_filter = ("scope", "tenant")
    search_fields = ("key", "tenant__name")
    list_select_related = ("tenant",)
    readonly_fields = ("created_at",)
