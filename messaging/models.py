"""Outbox, provider events, raw webhooks, replies, and the policy tables checked before every send."""
from __future__ import annotations

from django.db import models
from django.db.models import Q

from outreach.fields import ClockDateTimeField


class EmailSenderIdentity(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        VERIFIED = "verified"
        FAILED = "failed"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="sender_identities")
    from_email = models.EmailField(max_length=254)
    from_name = models.CharField(max_length=200, blank=True)
    reply_to = models.EmailField(max_length=254, blank=True)
    nickname = models.CharField(max_length=100, blank=True)
    provider_sender_id = models.CharField(max_length=64, blank=True, help_text="SendGrid verified sender id")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    is_paused = models.BooleanField(default=False, help_text="While set, nothing is sent from this identity")
    ip_pool = models.CharField(max_length=64, blank=True)
    ip_warmup_started_on = models.DateField(
        null=True, blank=True,
        help_text="First day of the sending IP's warmup: delivery keeps this sender under SendGrid's hourly "
                  "warmup caps (20 an hour on day 1, about x1.4 a day, none after day 41). Empty: no warmup cap",
    )
    last_synced_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "email_sender_identities"
        verbose_name_plural = "email sender identities"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "from_email"], name="uniq_sender_tenant_email"),
        ]

    def __str__(self) -> str:
        return f"{self.from_name} <{self.from_email}>" if self.from_name else self.from_email


class OutboundMessage(models.Model):
    """The outbox: one row per message we intend to send, created with the transition that asks for it."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        UNKNOWN = "unknown", "Unknown (ambiguous timeout)"
        CANCELED = "canceled"
        SUPPRESSED = "suppressed"

    class DeliveryStatus(models.TextChoices):
        NONE = ""
        PROCESSED = "processed"
        DELIVERED = "delivered"
        DEFERRED = "deferred"
        BOUNCED = "bounced"
        BLOCKED = "blocked"
        DROPPED = "dropped"

    # db_index=False where a composite index below leads with the column (one index less per insert).
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+", db_index=False)
    contact_campaign = models.ForeignKey("campaigns.ContactCampaign", null=True, blank=True,
                                         on_delete=models.SET_NULL, related_name="outbound_messages",
                                         db_index=False)
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="outbound_messages")
    sender_identity = models.ForeignKey(EmailSenderIdentity, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="outbound_messages")
    channel = models.CharField(max_length=16, default="email")
    node_id = models.CharField(max_length=64, blank=True)
    node_visit = models.PositiveIntegerField(default=0)
    # Unique through Meta.constraints, not unique=True: that would add a second (LIKE) index per insert.
    dedupe_key = models.CharField(max_length=255,
                                  help_text="tenant:contact:campaign:node:channel - never send twice")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    status_reason = models.CharField(max_length=300, blank=True)
    delivery_status = models.CharField(max_length=16, choices=DeliveryStatus.choices, blank=True, default="")
    to_address = models.CharField(max_length=254)
    subject = models.CharField(max_length=300, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    message_id_header = models.CharField(max_length=255, null=True, blank=True,
                                         help_text="Our RFC 5322 Message-ID (unique)")
    in_reply_to = models.CharField(max_length=255, blank=True)
    references = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=128, null=True, blank=True, help_text="X-Message-Id")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    undeliverable_since = models.DateTimeField(
        null=True, blank=True,
        help_text="First failed attempt (5xx / connection refused); the message fails only hours after it")
    claimed_at = models.DateTimeField(null=True, blank=True)
    send_started_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Set (and committed) just before the HTTP request of the current claim goes out; empty "
                  "means this claim never reached SendGrid, so a stale 'sending' row may safely be re-queued",
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        db_table = "outbound_messages"
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False), name="sent_message_has_sent_at"
            ),
            models.UniqueConstraint(fields=["dedupe_key"], name="uniq_outbound_dedupe_key"),
            models.UniqueConstraint(fields=["message_id_header"], name="uniq_outbound_message_id_header"),
        ]
        indexes = [
            models.Index(fields=["provider_message_id"], name="om_provider_message_id",
                         condition=Q(provider_message_id__isnull=False)),
            models.Index(fields=["tenant", "to_address", "-created_at"], name="om_tenant_to_created"),
            models.Index(fields=["status", "updated_at"], name="om_status_updated"),
            models.Index(fields=["contact_campaign", "node_id"], name="om_cc_node"),
            # Asynchronous bounces carry only the address: find its latest message.
            models.Index(fields=["to_address", "-created_at"], name="om_to_created"),
            # Lease recovery of claims whose worker died (few rows: a partial index).
            models.Index(fields=["claimed_at"], name="om_sending_claimed", condition=Q(status="sending")),
        ]

    def __str__(self) -> str:
        return f"{self.to_address} {self.node_id} [{self.status}]"


class WebhookDelivery(models.Model):
    """A raw webhook POST exactly as received, stored before any processing (nothing lost)."""

    class Kind(models.TextChoices):
        SENDGRID_EVENTS = "sendgrid_events"
        SENDGRID_INBOUND = "sendgrid_inbound"
        TWILIO_STATUS = "twilio_status"

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSED = "processed"
        FAILED = "failed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    body = models.BinaryField()
    headers = models.JSONField(default=dict, blank=True)
    payload_hash = models.CharField(max_length=64, help_text="SHA-256 of the raw body (unique)")
    signature_valid = models.BooleanField(null=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    event_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = ClockDateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "webhook_deliveries"
        verbose_name_plural = "webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["payload_hash"], name="uniq_webhook_payload_hash")]
        indexes = [
            models.Index(fields=["received_at"], name="wd_pending_received", condition=Q(status="pending")),
            models.Index(fields=["received_at"], name="wd_failed_received", condition=Q(status="failed")),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.received_at:%Y-%m-%d %H:%M:%S} [{self.status}]"


class MessageEvent(models.Model):
    """A normalised provider event (or a synthetic one we derive)."""

    # The hottest insert of the system (hundreds of millions of rows), written only by the webhook
    # processor with ids it has just read in the same transaction. So: no FK index where a composite
    # index leads with the column, no database FK constraints (their per-row checks at commit cost
    # ~30 ms per 1,000 events; Django's on_delete still applies to ORM deletes), uniqueness through
    # constraints (unique=True would add a second, LIKE, index).
    tenant = models.ForeignKey("tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+",
                               db_index=False, db_constraint=False)
    outbound_message = models.ForeignKey(OutboundMessage, null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="events", db_index=False, db_constraint=False)
    webhook_delivery = models.ForeignKey(WebhookDelivery, null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="events", db_constraint=False)
    provider = models.CharField(max_length=16, default="sendgrid")
    event_type = models.CharField(max_length=32)
    provider_event_id = models.CharField(max_length=128, blank=True)
    dedupe_key = models.CharField(max_length=255, help_text="Content key (message, event, time, url); unique")
    email = models.CharField(max_length=254, blank=True)
    url = models.TextField(blank=True)
    is_machine = models.BooleanField(default=False, help_text="Machine open or link-scanner click")
    bounce_type = models.CharField(max_length=16, blank=True)
    reason = models.TextField(blank=True)
    occurred_at = models.DateTimeField()
    raw = models.JSONField(default=dict, help_text="The event's other fields (ip, useragent, response...); "
                                                  "the whole original stays in its webhook delivery")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "message_events"
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_event_id"], name="uniq_provider_event_id",
                                    condition=~Q(provider_event_id="")),
            models.UniqueConstraint(fields=["dedupe_key"], name="uniq_message_event_dedupe_key"),
        ]
        indexes = [
            models.Index(fields=["outbound_message", "event_type"], name="me_message_event"),
            models.Index(fields=["tenant", "occurred_at"], name="me_tenant_occurred"),
            # Counting an address's recent soft bounces (repeated ones suppress it for a while).
            models.Index(fields=["tenant", "email", "occurred_at"], name="me_bounce_email",
                         condition=Q(event_type="bounce")),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.email} {self.occurred_at:%Y-%m-%d %H:%M:%S}"


class InboundMessage(models.Model):
    """A reply (or any inbound mail) received through SendGrid Inbound Parse."""

    class Classification(models.TextChoices):
        UNCLASSIFIED = ""
        POSITIVE = "positive"
        NEGATIVE = "negative"
        NEUTRAL = "neutral"
        OOO = "ooo"

    class Kind(models.TextChoices):
        REPLY = "reply"
        AUTO_REPLY = "auto_reply"
        BOUNCE = "bounce"

    class Verdict(models.TextChoices):
        PASS = "pass", "Authenticated (SPF or DKIM passed)"
        UNAUTHENTICATED = "unauthenticated", "SPF and DKIM both failed"
        SPAM = "spam", "Marked as spam by Inbound Parse"

    class ReviewStatus(models.TextChoices):
        NONE = "", "Nothing to review"
        HELD = "held", "Held for review (did not move a plan)"
        RELEASED = "released", "Released by an operator"
        DISCARDED = "discarded", "Discarded by an operator"
        CORRECTED = "corrected", "Class corrected by an operator"

    tenant = models.ForeignKey("tenancy.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    outbound_message = models.ForeignKey(OutboundMessage, null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="replies")
    webhook_delivery = models.ForeignKey(WebhookDelivery, null=True, blank=True, on_delete=models.SET_NULL,
                                         related_name="+")
    message_id_header = models.CharField(max_length=255, unique=True,
                                         help_text="The reply's own Message-ID (or a hash of its content)")
    in_reply_to = models.CharField(max_length=255, blank=True)
    references = models.TextField(blank=True)
    from_email = models.CharField(max_length=254, blank=True)
    to_email = models.TextField(blank=True)
    subject = models.CharField(max_length=998, blank=True)
    text = models.TextField(blank=True)
    html = models.TextField(blank=True)
    headers = models.TextField(blank=True)
    is_auto_reply = models.BooleanField(default=False)
    classification = models.CharField(max_length=16, choices=Classification.choices, blank=True, default="")
    classification_confidence = models.FloatField(null=True, blank=True)
    stop_request = models.BooleanField(default=False)
    return_date = models.DateField(null=True, blank=True)
    received_at = ClockDateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Issue 11: what the mail is, the words that were classified, and whether it is trusted.
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.REPLY)
    language = models.CharField(max_length=8, blank=True, help_text="ISO 639-1 of the new text")
    new_text = models.TextField(blank=True, help_text="The person's new words: quote, signature and our mail removed")
    bounce_type = models.CharField(max_length=8, blank=True, help_text="hard / soft, for a bounce notice")
    spf = models.CharField(max_length=100, blank=True)
    dkim = models.CharField(max_length=500, blank=True)
    spam_score = models.FloatField(null=True, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, default=Verdict.PASS)
    review_status = models.CharField(max_length=16, choices=ReviewStatus.choices, blank=True, default="")

    class Meta:
        db_table = "inbound_messages"
        indexes = [
            models.Index(fields=["tenant", "received_at"], name="im_tenant_received"),
            models.Index(fields=["tenant", "-received_at", "-id"], name="im_tenant_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.from_email}: {self.subject[:60]}"


class SuppressionReason(models.TextChoices):
    HARD_BOUNCE = "hard_bounce"
    SPAM_REPORT = "spam_report"
    SOFT_BOUNCE = "soft_bounce"
    INVALID = "invalid"
    DROPPED = "dropped"
    MANUAL = "manual"
    DOMAIN = "domain", "Do-not-contact domain"


class CommunicationSuppression(models.Model):
    """An address (or, with channel 'email_domain', a whole domain) we must not contact."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="suppressions")
    channel = models.CharField(max_length=16, help_text="email, sms, or email_domain")
    value = models.CharField(max_length=254, help_text="Normalised address or domain")
    reason = models.CharField(max_length=16, choices=SuppressionReason.choices)
    detail = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty: permanent")
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        db_table = "communication_suppressions"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "channel", "value"], name="uniq_suppression_tenant_value"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.value} ({self.reason})"


class UnsubscribeSource(models.TextChoices):
    LINK_CLICK = "link_click"
    ONE_CLICK = "one_click"
    SENDGRID_WEBHOOK = "sendgrid_webhook"
    MANUAL = "manual"
    REPLY = "reply"
    SMS_KEYWORD = "sms_keyword"
    IMPORT = "import"


class ContactUnsubscribe(models.Model):
    """An opt-out keyed by address, not by contact: it outlives deleting and re-uploading the contact."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="unsubscribes")
    channel = models.CharField(max_length=16)
    channel_value = models.CharField(max_length=254, help_text="Lower-cased email or E.164 phone")
    source = models.CharField(max_length=32, choices=UnsubscribeSource.choices)
    detail = models.TextField(blank=True)
    contact = models.ForeignKey("contacts.Contact", null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+", help_text="The contact at the time, if known")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "contact_unsubscribes"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "channel", "channel_value"],
                                    name="uniq_unsubscribe_tenant_channel_value"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.channel_value} ({self.source})"


class SendRateLimit(models.Model):
    """A sending cap for a tenant, a sender identity or a recipient domain."""

    class Scope(models.TextChoices):
        TENANT = "tenant"
        SENDER = "sender"
        RECIPIENT_DOMAIN = "recipient_domain"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="rate_limits")
    scope = models.CharField(max_length=20, choices=Scope.choices)
    key = models.CharField(max_length=254, blank=True, help_text="Sender email or domain; empty for tenant")
    per_minute = models.PositiveIntegerField(null=True, blank=True)
    per_hour = models.PositiveIntegerField(null=True, blank=True)
    per_day = models.PositiveIntegerField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "send_rate_limits"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "scope", "key"], name="uniq_rate_limit_scope_key"),
            models.CheckConstraint(
                condition=Q(per_minute__isnull=False) | Q(per_hour__isnull=False) | Q(per_day__isnull=False),
                name="rate_limit_has_a_cap",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key or '*'}"
