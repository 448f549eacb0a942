"""Rollup tables: one row per bucket with a column per count, kept incrementally from the events messaging stores.

Wide rather than one row per metric: a dashboard reads 19 times fewer rows. The count columns are
`analytics.metrics.COUNTS`, added to every table by `Counts`. Dimensions that may be absent (an event of
no campaign, a message without sender) use sentinels (0, ''), never NULL, so that ON CONFLICT finds them.
Hours are UTC; days are the tenant's day in its analytics time zone (TenantAnalyticsSettings, default
settings.ANALYTICS_DEFAULT_TIME_ZONE): changing a zone is followed by `analytics_rebuild`.
"""
from __future__ import annotations

from django.db import models

from analytics.metrics import COUNTS


class Counts(models.Model):
    """The count columns every rollup table has (one per name of COUNTS)."""

    class Meta:
        abstract = True


for _name in COUNTS:
    Counts.add_to_class(_name, models.BigIntegerField(default=0))


class PendingFact(models.Model):
    """An event stored but not yet counted: written in the transaction that stored the event, deleted by
    the rollup pass in the transaction that counts it. That pair is what makes counting exactly once."""

    tenant_id = models.BigIntegerField()
    message_id = models.BigIntegerField(null=True)
    kind = models.CharField(max_length=32, help_text="SendGrid event type, or 'reply'")
    detail = models.CharField(max_length=32, blank=True, help_text="bounce type, 'machine', reply class")
    email = models.CharField(max_length=254, blank=True, help_text="Recipient or replier: its domain is counted")
    occurred_at = models.DateTimeField()
    stored_at = models.DateTimeField()

    class Meta:
        db_table = "metrics_pending_facts"


class MessageFirst(models.Model):
    """When a message was first opened / clicked by a human, for the unique counts (moved when an earlier
    event arrives late)."""

    message_id = models.BigIntegerField()
    kind = models.CharField(max_length=16)
    occurred_at = models.DateTimeField()

    class Meta:
        db_table = "metrics_message_firsts"
        constraints = [models.UniqueConstraint(fields=["message_id", "kind"], name="uniq_metrics_first")]


class TenantAnalyticsSettings(models.Model):
    tenant = models.OneToOneField("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    time_zone = models.CharField(max_length=64, default="UTC", help_text="IANA zone of the tenant's days")

    class Meta:
        db_table = "analytics_tenant_settings"
        verbose_name_plural = "tenant analytics settings"


class ContactHourly(Counts):
    tenant_id = models.BigIntegerField()
    contact_id = models.BigIntegerField()
    campaign_id = models.BigIntegerField(help_text="0: no campaign")
    hour = models.DateTimeField()

    class Meta:
        db_table = "metrics_contact_hourly"
        constraints = [models.UniqueConstraint(fields=["contact_id", "campaign_id", "hour"],
                                               name="uniq_metrics_contact_hourly")]
        indexes = [models.Index(fields=["campaign_id", "hour"], name="mch_campaign_hour")]


class CampaignDaily(Counts):
    tenant_id = models.BigIntegerField()
    campaign_id = models.BigIntegerField()
    day = models.DateField()
    node_id = models.CharField(max_length=64)
    plan_source = models.CharField(max_length=16)
    sender_id = models.BigIntegerField(help_text="0: no sender identity")

    class Meta:
        db_table = "metrics_campaign_daily"
        constraints = [models.UniqueConstraint(
            fields=["campaign_id", "day", "node_id", "plan_source", "sender_id"],
            name="uniq_metrics_campaign_daily")]
        # The tenant's "by campaign" view reads a tenant's days across all its campaigns.
        indexes = [models.Index(fields=["tenant_id", "day"], name="mcd_tenant_day")]


class TenantDaily(Counts):
    tenant_id = models.BigIntegerField()
    day = models.DateField()

    class Meta:
        db_table = "metrics_tenant_daily"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "day"],
                                               name="uniq_metrics_tenant_daily")]


class SenderDaily(Counts):
    tenant_id = models.BigIntegerField()
    day = models.DateField()
    sender_id = models.BigIntegerField()

    class Meta:
        db_table = "metrics_sender_daily"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "day", "sender_id"],
                                               name="uniq_metrics_sender_daily")]


class DomainDaily(Counts):
    tenant_id = models.BigIntegerField()
    day = models.DateField()
    domain = models.CharField(max_length=254)

    class Meta:
        db_table = "metrics_domain_daily"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "day", "domain"],
                                               name="uniq_metrics_domain_daily")]


class DeliverabilityAlert(models.Model):
    """A sender's (or a tenant's) bounce or spam complaint rate over a rolling window crossed a line.

    One open row per condition (scope, sender, measure, level), however many events keep it true; resolved
    when the rate falls back under the warning line. A `pause` alert paused the sender when it opened.
    """

    class Level(models.TextChoices):
        WARNING = "warning"
        PAUSE = "pause"

    tenant = models.ForeignKey("tenancy.Tenant", on_delete=models.CASCADE, related_name="+")
    sender_id = models.BigIntegerField(default=0, help_text="0: the tenant as a whole")
    measure = models.CharField(max_length=32, help_text="bounce_rate or spam_complaint_rate")
    level = models.CharField(max_length=16, choices=Level.choices)
    value = models.FloatField()
    numerator = models.BigIntegerField()
    denominator = models.BigIntegerField()
    window_days = models.PositiveIntegerField()
    threshold = models.FloatField()
    action = models.CharField(max_length=200, blank=True, help_text="What the breaker did (e.g. paused the sender)")
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "analytics_deliverability_alerts"
        constraints = [models.UniqueConstraint(fields=["tenant", "sender_id", "measure", "level"],
                                               condition=models.Q(resolved_at__isnull=True),
                                               name="uniq_open_deliverability_alert")]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="da_tenant_created")]
