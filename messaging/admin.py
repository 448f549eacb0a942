"""Operator console: senders, the outbox, provider events, raw webhooks, replies and policy tables.

The outbox, events, raw webhook deliveries and replies belong to the pipeline: the
admin shows them and never edits them. Sender pauses and suppression lifts are switches behind a
confirmation page (outreach.admin.Switch), through the owning services, audited.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from messaging import admin_replies  # noqa: F401 - registers the replies inbox (InboundMessage)
from messaging.admin_compliance import ComplianceAdminMixin
from messaging.compliance import suppression_add, suppression_remove
from messaging.delivery.outage import outage_state
from messaging.models import (
    CommunicationSuppression,
    ContactUnsubscribe,
    EmailSenderIdentity,
    MessageEvent,
    OutboundMessage,
    SendRateLimit,
    WebhookDelivery,
)
from outreach.addresses import normalise_address
from outreach.admin import (
    BigTableAdmin,
    ReadOnlyAdmin,
    Switch,
    SwitchesAdminMixin,
    operator_console_counts,
    static_choices_filter,
)
from outreach.channels import CHANNEL_EMAIL_DOMAIN, Channel
from outreach.errors import ApplicationError
from outreach.tenancy.services import audit_record

ADMIN_REASON = "admin console"
# SendGrid event types plus the synthetic ones we derive; a fixed list avoids SELECT DISTINCT.
EVENT_TYPES = ("processed", "delivered", "deferred", "bounce", "dropped", "blocked", "open", "click",
               "spamreport", "unsubscribe", "group_unsubscribe", "group_resubscribe", "reply")
SUPPRESSION_CHANNELS = (*Channel.choices, (CHANNEL_EMAIL_DOMAIN, "Email domain"))


def _sender_set_paused(identity: EmailSenderIdentity, *, paused: bool, actor: Any, reason: str) -> None:
    from messaging.sendgrid import sender_identity_set_paused

    sender_identity_set_paused(identity=identity, paused=paused, actor=actor, reason=reason or ADMIN_REASON)


def _sender_sync(identity: EmailSenderIdentity, *, actor: Any, reason: str) -> None:
    from messaging.sendgrid import sender_identity_sync
    from messaging.sendgrid.errors import SendGridError

    try:
        sender_identity_sync(identity=identity)
    except SendGridError as exc:
        raise ApplicationError(f"SendGrid could not be asked: {exc.message}") from exc


SENDER_SWITCHES = (
    Switch(name="pause_sending", label="Pause sending", done="paused", applies=lambda i: not i.is_paused,
           run=lambda i, *, actor, reason: _sender_set_paused(i, paused=True, actor=actor, reason=reason),
           skipped_note="already paused", danger=True,
           explanation="Nothing is sent from this identity until it is resumed; its campaigns' due sends are "
                       "held (kept, not dropped)."),
    Switch(name="resume_sending", label="Resume sending", done="resumed", applies=lambda i: i.is_paused,
           run=lambda i, *, actor, reason: _sender_set_paused(i, paused=False, actor=actor, reason=reason),
           skipped_note="not paused",
           explanation="Held sends from this identity are released on the dispatcher's next tick."),
    # The bulk form is `sync_with_sendgrid` below: one Verified Senders listing for all the selected rows.
    Switch(name="sync", label="Sync with SendGrid", done="synced with SendGrid", applies=lambda i: True,
           run=_sender_sync, bulk=False,
           explanation="Reads this sender's verification status from SendGrid (and registers it there if it "
                       "never was)."),
)


class SenderIdentityForm(forms.ModelForm):
    def clean_from_email(self) -> str:
        # Stored lower-cased, as sender_identity_create does: matching SendGrid's records relies on it.
        return self.cleaned_data["from_email"].strip().lower()


@admin.register(EmailSenderIdentity)
class EmailSenderIdentityAdmin(SwitchesAdminMixin, admin.ModelAdmin):
    """Status comes from SendGrid (sync), the pause flag from its confirmed switch; neither is a form field.

    An identity added here starts pending and unregistered; Sync (or the periodic sync) registers it with
    SendGrid, which mails the verification link.
    """

    form = SenderIdentityForm
    list_display = ("from_email", "from_name", "tenant", "status", "is_paused", "ip_pool", "last_synced_at")
    list_filter = ("status", "is_paused", "tenant")
    search_fields = ("from_email", "from_name", "nickname")
    list_select_related = ("tenant",)
    readonly_fields = ("status", "is_paused", "provider_sender_id", "last_synced_at", "created_at")
    switches = SENDER_SWITCHES
    actions = ("sync_with_sendgrid",)

    def get_readonly_fields(self, request: HttpRequest, obj: EmailSenderIdentity | None = None) -> Sequence[str]:
        fields = list(super().get_readonly_fields(request, obj))
        # Another address is another identity (SendGrid verifies addresses): add a new one instead.
        return [*fields, "tenant", "from_email"] if obj is not None else fields

    @admin.action(description="Sync the selected sender identities with SendGrid", permissions=("operate",))
    def sync_with_sendgrid(self, request: HttpRequest, queryset: QuerySet[EmailSenderIdentity]) -> None:
        from messaging.sendgrid import sender_identities_sync
        from messaging.sendgrid.errors import SendGridError

        identities = list(queryset[: self.max_bulk_switch])
        try:
            changed = sender_identities_sync(identities=identities)
        except SendGridError as exc:
            self.message_user(request, f"SendGrid could not be asked: {exc.message}", messages.ERROR)
            return
        self.message_user(request, f"Synced {len(identities)} sender identit{'y' if len(identities) == 1 else 'ies'} "
                                   f"with SendGrid; {changed} changed status.", messages.SUCCESS)


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


def _suppression_lift(row: CommunicationSuppression, *, actor: Any, reason: str) -> None:
    suppression_remove(tenant=row.tenant, channel=row.channel, value=row.value, actor=actor, reason=reason)


SUPPRESSION_SWITCHES = (
    Switch(name="lift_suppressions", label="Lift suppression", done="lifted", applies=lambda row: True,
           run=_suppression_lift, danger=True, reason_required=True, removes=True,
           explanation="The address (or domain) may be contacted again. The removed row is kept in the audit "
                       "trail with your reason."),
)


class SuppressionAddForm(forms.ModelForm):
    channel = forms.ChoiceField(choices=SUPPRESSION_CHANNELS)

    class Meta:
        model = CommunicationSuppression
        fields = ("tenant", "channel", "value", "reason", "detail", "expires_at")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        channel, value = cleaned.get("channel"), cleaned.get("value")
        if channel and value:
            # The send-time check looks up the normalised form: a raw "Dana@Acme.example" would never match.
            try:
                cleaned["value"] = normalise_address(channel, value)
            except ApplicationError as exc:
                self.add_error("value", exc.message)
        return cleaned


@admin.register(CommunicationSuppression)
class CommunicationSuppressionAdmin(ComplianceAdminMixin, SwitchesAdminMixin, BigTableAdmin):
    """Added through ``suppression_add`` (normalised, merged with an existing row), lifted through
    ``suppression_remove`` (reason required, audited); never edited or deleted directly."""

    list_display = ("value", "channel", "reason", "expires_at", "tenant", "created_at")
    list_filter = ("reason", static_choices_filter("channel", SUPPRESSION_CHANNELS), "tenant")
    search_fields = ("value__exact",)
    list_select_related = ("tenant",)
    readonly_fields = ("created_at", "updated_at")
    form = SuppressionAddForm
    switches = SUPPRESSION_SWITCHES

    def has_change_permission(self, request: HttpRequest, obj: CommunicationSuppression | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: CommunicationSuppression | None = None) -> bool:
        return False  # lift instead: it keeps the removed row and the reason in the audit trail

    def save_model(self, request: HttpRequest, obj: CommunicationSuppression, form: ModelForm,
                   change: bool) -> None:
        row = suppression_add(tenant=obj.tenant, channel=obj.channel, value=obj.value, reason=obj.reason,
                              detail=obj.detail, expires_at=obj.expires_at)
        audit_record(tenant=obj.tenant, actor=request.user, action="suppression.add", target=row,
                     detail={"channel": row.channel, "value": row.value, "reason": row.reason})
        # Hand the admin the row the service wrote, so it logs and redirects to it.
        obj.__dict__.update(row.__dict__)


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


@operator_console_counts.connect
def _paused_senders_count() -> dict[str, int]:
    """The admin index's "Paused sender identities" figure (templates/admin/index.html)."""
    return {"paused_senders": EmailSenderIdentity.objects.filter(is_paused=True).count()}


@operator_console_counts.connect
def _provider_outage_state() -> dict[str, Any]:
    """The admin index's "SendGrid outage breaker" line: open (sending paused, next probe) or closed."""
    return {"provider_outage": outage_state()}
