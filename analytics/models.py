"""Rollup tables: counts per metric and bucket, kept incrementally from the events messaging stores.

The tables are narrow (one row per bucket and metric, `n` the count): a new metric needs no migration, and
one upsert statement and one recount query serve every table. Dimensions that may be absent (an event of
no campaign, a message without sender) use sentinels (0, ''), never NULL, so that ON CONFLICT finds them.
Hours are UTC; days are the tenant's day in its analytics time zone (TenantAnalyticsSettings, default
settings.ANALYTICS_DEFAULT_TIME_ZONE): changing a zone is followed by `analytics_rebuild`.
"""
from __future__ import annotations

from django.db import models


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


class ContactHourly(models.Model):
    tenant_id = models.BigIntegerField()
    contact_id = models.BigIntegerField()
    campaign_id = models.BigIntegerField(help_text="0: no campaign")
    hour = models.DateTimeField()
    metric = models.CharField(max_length=32)
    n = models.BigIntegerField(default=0)

    class Meta:
        db_table = "metrics_contact_hourly"
        constraints = [models.UniqueConstraint(fields=["contact_id", "campaign_id", "hour", "metric"],
                                               name="uniq_metrics_contact_hourly")]
        indexes = [models.Index(fields=["campaign_id", "hour"], name="mch_campaign_hour")]


class CampaignDaily(models.Model):
    tenant_id = models.BigIntegerField()
    campaign_id = models.BigIntegerField()
    day = models.DateField()
    node_id = models.CharField(max_length=64)
    plan_source = models.CharField(max_length=16)
    sender_id = models.BigIntegerField(help_text="0: no sender identity")
    metric = models.CharField(max_length=32)
    n = models.BigIntegerField(default=0)

    class Meta:
        db_table = "metrics_campaign_daily"
        constraints = [models.UniqueConstraint(
            fields=["campaign_id", "day", "node_id", "plan_source", "sender_id", "metric"],
            name="uniq_metrics_campaign_daily")]


class TenantDaily(models.Model):
    tenant_id = models.BigIntegerField()
    day = models.DateField()
    metric = models.CharField(max_length=32)
    n = models.BigIntegerField(default=0)

    class Meta:
        db_table = "metrics_tenant_daily"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "day", "metric"],
                                               name="uniq_metrics_tenant_daily")]


class SenderDaily(models.Model):
    tenant_id = models.BigIntegerField()
    day = models.DateField()
    sender_id = models.BigIntegerField()
    metric = models.CharField(max_length=32)
    n = models.BigIntegerField(default=0)

    class Meta:
        db_table = "metrics_sender_daily"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "day", "sender_id", "metric"],
                                               name="uniq_metrics_sender_daily")]


class DomainDaily(models.Model):
    tenant_id = models.BigIntegerField()
    day = models.DateField()
    domain = models.CharField(max_length=254)
    metric = models.CharField(max_length=32)
    n = models.BigIntegerField(default=0)

    class Meta:
        db_table = "metrics_domain_daily"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "day", "domain", "metric"],
                                               name="uniq_metrics_domain_daily")]
