"""Outgoing webhooks: a tenant's endpoints, the events we emit, one delivery per (event, endpoint) and
every HTTP attempt of it. Events are rows written in the emitting service's own transaction (nothing
lost, nothing sent for work that rolled back); delivery happens after commit, by Celery."""
from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from outreach.fields import ClockDateTimeField


class EventType(models.TextChoices):
    REPLY_RECEIVED = "reply.received", "A contact replied (with its classification)"
    MEETING_BOOKED = "meeting.booked", "A meeting was booked"
    ENROLMENT_FINISHED = "enrolment.finished", "An enrolment reached a final status (with its reason)"
    CONTACT_OPTED_OUT = "contact.opted_out", "An address opted out"
    MESSAGE_BOUNCED = "message.bounced", "A message bounced"
    SENDER_PAUSED = "sender.paused", "A sender identity was paused by the breaker"
    IMPORT_FINISHED = "import.finished", "A CSV import finished"


class WebhookEndpoint(models.Model):
    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, help_text="Signs every delivery (HMAC-SHA256); shown once")
    event_types = models.JSONField(default=list, help_text="EventType values this endpoint receives")
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        db_table = "webhook_endpoints"
        indexes = [models.Index(fields=["tenant", "created_at"], name="whe_tenant_created")]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    """One thing that happened; `event_id` is what receivers dedupe on."""

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=32, choices=EventType.choices)
    data = models.JSONField(default=dict)
    occurred_at = models.DateTimeField()
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        db_table = "webhook_events"
        indexes = [models.Index(fields=["tenant", "created_at"], name="whev_tenant_created")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class WebhookDeliveryOut(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed", "Failed (gave up after a day of retries)"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        db_table = "webhook_deliveries_out"
        verbose_name = "outgoing webhook delivery"
        verbose_name_plural = "outgoing webhook deliveries"
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="uniq_whd_event_endpoint")]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="whd_pending_due", condition=Q(status="pending")),
            models.Index(fields=["tenant", "created_at"], name="whd_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint} [{self.status}]"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDeliveryOut, on_delete=models.CASCADE, related_name="attempt_log")
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "webhook_attempts"
        indexes = [models.Index(fields=["delivery", "attempted_at"], name="wha_delivery_at")]

    def __str__(self) -> str:
        return f"{self.attempted_at:%Y-%m-%d %H:%M:%S} {self.status_code or self.error}"
